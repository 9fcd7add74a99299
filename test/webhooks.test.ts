// Outbound webhooks end to end: endpoints through the admin API, events from a write, signed per
// Standard Webhooks and verified with the standardwebhooks library, retried after receiver failures,
// dead-lettered, replayed; a disabled endpoint receives nothing.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { RESEND_AFTER_MS, resendUnsent } from "../src/events/emit";
import { retryDelaySeconds, retrySchedule } from "../src/events/retry";
import { customerWith, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { auditOf } from "./helpers/d1";
import { HOUR_MS } from "./helpers/time";
import {
  createEndpoint,
  DEAD_LETTERS,
  deliverPending,
  deliveryLog,
  receiver,
  runQueue,
  verify,
} from "./helpers/webhooks";
import { BOOTSTRAP, expectProblem, testWorker } from "./helpers/worker";

const rx = receiver();
const w = testWorker({ fetch: rx.fetch });

beforeAll(async () => {
  await loadTestCatalog(w);
});

/** A free customer and an endpoint that only receives its events. */
async function listened(eventTypes: string[] = [], extra: Record<string, unknown> = {}) {
  const { customerId, subId } = await customerWith(w, { planId: "free" });
  const endpoint = await createEndpoint(w, { url: "https://app.example/hooks", customerId, eventTypes, ...extra });
  return { customerId, subId, endpoint };
}
const upgrade = (subId: string) => subscriptionAction(w, subId, "change-plan", { planId: "pro", when: "immediately" });
const receivedBy = (customerId: string) => rx.received.filter((r) => r.json.customerId === customerId);

describe("webhook endpoints", () => {
  it("are created with a whsec_ secret shown once, listed and read without it, audited", async () => {
    const { endpoint } = await listened(["entitlements.changed"]);
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(atob(endpoint.secret.slice(6)).length).toBe(24);
    const got = await w.call("GET", `/admin/v1/webhook-endpoints/${endpoint.id}`, { key: BOOTSTRAP });
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id: endpoint.id, enabled: true, eventTypes: ["entitlements.changed"] });
    expect(got.text).not.toContain(endpoint.secret.slice(6));
    const list = await w.call("GET", "/admin/v1/webhook-endpoints?limit=200", { key: BOOTSTRAP });
    expect(list.json.items.map((e: any) => e.id)).toContain(endpoint.id);
    expect(list.text).not.toContain("whsec_");
    const audit = await auditOf("webhook_endpoint", endpoint.id);
    expect(audit.map((a) => a.action)).toEqual(["webhook_endpoint.create"]);
    expect(JSON.stringify(audit)).not.toContain(endpoint.secret.slice(6));
  });

  it("refuse bad input with problem+json, never a 500", async () => {
    for (const body of [
      { url: "not a url" },
      { url: "ftp://x.example/" },
      { url: "https://x.example/", eventTypes: ["no.such"] },
      { url: "https://x.example/", customerId: "nobody-here" },
      { url: "https://x.example/", ratePerSecond: 0 },
      { url: "https://x.example/", surprise: 1 },
    ]) {
      expectProblem(await w.call("POST", "/admin/v1/webhook-endpoints", { key: BOOTSTRAP, body }), 400, "validation");
    }
    expectProblem(await w.call("GET", "/admin/v1/webhook-endpoints/we_missing", { key: BOOTSTRAP }), 404, "not-found");
  });

  it("must use https in staging and production", async () => {
    const staging = { ...env, ENVIRONMENT: "staging" } as Cloudflare.Env;
    const body = { url: "http://app.example/hooks" };
    const res = await w.call("POST", "/admin/v1/webhook-endpoints", { key: BOOTSTRAP, body, env: staging });
    expect(expectProblem(res, 400, "validation").errors?.[0]?.path).toBe("json.url");
    expect((await w.call("POST", "/admin/v1/webhook-endpoints", { key: BOOTSTRAP, body })).status).toBe(201);
  });

  it("never points at a local or private address in staging and production (SSRF), on create and on update", async () => {
    const staging = { ...env, ENVIRONMENT: "staging" } as Cloudflare.Env;
    for (const url of [
      "https://localhost/h",
      "https://api.localhost/h",
      "https://127.0.0.1/h",
      "https://2130706433/h", // 127.0.0.1 as one number
      "https://0x7f.1/h",
      "https://10.1.2.3/h",
      "https://172.20.0.1/h",
      "https://192.168.1.1/h",
      "https://169.254.169.254/latest/meta-data",
      "https://100.64.0.1/h",
      "https://[::1]/h",
      "https://[fd00::1]/h",
      "https://[fe80::1]/h",
      "https://[::ffff:127.0.0.1]/h",
      "https://user:pass@app.example/h",
    ]) {
      const res = await w.call("POST", "/admin/v1/webhook-endpoints", { key: BOOTSTRAP, body: { url }, env: staging });
      expect(expectProblem(res, 400, "validation").errors?.[0]?.path, url).toBe("json.url");
    }
    const ok = await w.call("POST", "/admin/v1/webhook-endpoints", {
      key: BOOTSTRAP,
      body: { url: "https://hooks.app.example/h" },
      env: staging,
    });
    expect(ok.status).toBe(201);
    const patch = await w.call("PATCH", `/admin/v1/webhook-endpoints/${ok.json.id}`, {
      key: BOOTSTRAP,
      body: { url: "https://192.168.0.10/h" },
      env: staging,
    });
    expectProblem(patch, 400, "validation");
    const kept = await w.call("GET", `/admin/v1/webhook-endpoints/${ok.json.id}`, { key: BOOTSTRAP });
    expect(kept.json.url).toBe("https://hooks.app.example/h");
    // Locally, a receiver on this machine is the point (npm run webhooks:listen).
    const local = await w.call("POST", "/admin/v1/webhook-endpoints", {
      key: BOOTSTRAP,
      body: { url: "http://127.0.0.1:8788/" },
    });
    expect(local.status).toBe(201);
  });

  it("can be patched and deleted (audited)", async () => {
    const { endpoint } = await listened();
    const path = `/admin/v1/webhook-endpoints/${endpoint.id}`;
    const patched = await w.call("PATCH", path, {
      key: BOOTSTRAP,
      body: { enabled: false, eventTypes: ["trial.ended"] },
    });
    expect(patched.json).toMatchObject({ enabled: false, eventTypes: ["trial.ended"] });
    expect((await w.call("DELETE", path, { key: BOOTSTRAP })).status).toBe(200);
    expectProblem(await w.call("GET", path, { key: BOOTSTRAP }), 404);
    const actions = (await auditOf("webhook_endpoint", endpoint.id)).map((a) => a.action);
    expect(actions).toEqual(["webhook_endpoint.create", "webhook_endpoint.update", "webhook_endpoint.delete"]);
  });
});

describe("entitlements.changed", () => {
  it("a delivery whose message the queue refused is sent again by the cron once an hour overdue, and only once", async () => {
    const { subId, endpoint } = await listened(["entitlements.changed"]);
    const refusing = testWorker({
      fetch: rx.fetch,
      env: {
        ...env,
        WEBHOOK_QUEUE: {
          send: async () => {
            throw new Error("injected: Queues unavailable");
          },
          sendBatch: async () => {
            throw new Error("injected: Queues unavailable");
          },
        } as unknown as Queue,
      },
    });
    const res = await subscriptionAction(refusing, subId, "change-plan", { planId: "pro", when: "immediately" });
    expect(res.status).toBe(200); // the write is committed; the event is recorded, its message is not sent
    const [pending] = await deliveryLog(w, endpoint.id, "pending");
    expect(pending).toMatchObject({ attempts: 0 });
    const sent: unknown[] = [];
    const recording = {
      ...env,
      WEBHOOK_QUEUE: { sendBatch: async (m: { body: unknown }[]) => void sent.push(...m.map((x) => x.body)) },
    } as unknown as Cloudflare.Env;
    const now = w.clock.now();
    expect(await resendUnsent(recording, now + RESEND_AFTER_MS - 1_000)).toBe(0);
    expect(sent).toEqual([]);
    expect(await resendUnsent(recording, now + RESEND_AFTER_MS + 1_000)).toBeGreaterThanOrEqual(1);
    expect(sent).toContainEqual({ delivery: pending.id });
    // Sent again: the next run leaves it alone for another hour.
    sent.length = 0;
    await resendUnsent(recording, now + RESEND_AFTER_MS + 60_000);
    expect(sent).not.toContainEqual({ delivery: pending.id });
    await runQueue(w, [{ delivery: pending.id }]);
    expect((await deliveryLog(w, endpoint.id))[0]).toMatchObject({ status: "delivered", attempts: 1 });
  });

  it("a plan change emits one event, signed per Standard Webhooks (verified by standardwebhooks)", async () => {
    const { customerId, subId, endpoint } = await listened(["entitlements.changed"]);
    expect((await upgrade(subId)).status).toBe(200);
    const log = await deliveryLog(w, endpoint.id);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ status: "pending", eventType: "entitlements.changed", attempts: 0 });
    const { result } = await deliverPending(w, endpoint.id);
    expect(result.explicitAcks).toHaveLength(1);
    const [got] = receivedBy(customerId);
    const payload = verify(endpoint.secret, got!, w.clock.now()) as any;
    expect(payload).toMatchObject({ type: "entitlements.changed", customerId, id: got!.headers["webhook-id"] });
    expect(payload.data.gained.map((g: any) => g.feature)).toEqual(
      expect.arrayContaining(["sso", "audit_export", "storage_gb"]),
    );
    expect(payload.data.changed).toContainEqual({
      feature: "api_calls",
      before: { feature: "api_calls", limit: 100 },
      after: { feature: "api_calls", limit: 1000 },
    });
    expect(payload.data.version).toMatch(/^\d+\.\d+$/);
    expect(got!.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/=]+$/);
    expect((await deliveryLog(w, endpoint.id))[0]).toMatchObject({
      status: "delivered",
      attempts: 1,
      responseCode: 200,
    });
    // Delivered: the same message again sends nothing.
    await runQueue(w, [{ delivery: log[0].id }]);
    expect(receivedBy(customerId)).toHaveLength(1);
  });

  it("a write that changes nothing a customer may do emits no entitlements.changed", async () => {
    const { customerId, endpoint } = await listened(["entitlements.changed"]);
    const res = await w.call("PATCH", `/admin/v1/customers/${customerId}`, {
      key: BOOTSTRAP,
      body: { name: "Renamed" },
    });
    expect(res.status).toBe(200);
    expect(await deliveryLog(w, endpoint.id)).toEqual([]);
  });

  it("events of one customer carry increasing sequence numbers; subscription.changed comes with them", async () => {
    const { customerId, subId, endpoint } = await listened();
    await upgrade(subId);
    await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "immediately" });
    const log = (await deliveryLog(w, endpoint.id)).sort((a, b) => a.sequence - b.sequence);
    // The customer's creation came first (recorded, as other endpoints listen, but not for this one).
    const first = log[0].sequence;
    expect(first).toBeGreaterThan(1);
    expect(log.map((d) => `${d.sequence - first}:${d.eventType}`)).toEqual([
      "0:entitlements.changed",
      "1:subscription.changed",
      "2:entitlements.changed",
      "3:subscription.changed",
    ]);
    await deliverPending(w, endpoint.id);
    // The first subscription.changed by sequence (delivery order is not emission order: receivers sort).
    const sub = receivedBy(customerId)
      .filter((r) => r.json.type === "subscription.changed")
      .sort((a, b) => a.json.sequence - b.json.sequence)[0]!;
    expect(sub.json.data).toMatchObject({
      subscriptionId: subId,
      before: { planId: "free" },
      after: { planId: "pro" },
    });
  });
});

describe("delivery", () => {
  it("retries after 5xx and timeouts with exponential backoff until the receiver answers 2xx", async () => {
    const { customerId, subId, endpoint } = await listened(["entitlements.changed"]);
    await upgrade(subId);
    const [delivery] = await deliveryLog(w, endpoint.id);
    rx.answers.push(503, "timeout", 500);
    for (const attempt of [1, 2, 3]) {
      const { result, ids } = await runQueue(w, [{ delivery: delivery.id }], { attempts: attempt });
      expect(result.retryMessages).toEqual([{ msgId: ids[0] }]);
      // The delay given to Queues' retry(), as the log records it: 30 s, 2 min, 8 min.
      const next = (await deliveryLog(w, endpoint.id))[0].nextAttemptAt;
      expect(Date.parse(next) - w.clock.now()).toBe(retryDelaySeconds(attempt) * 1000);
      expect(retryDelaySeconds(attempt)).toBe([30, 120, 480][attempt - 1]);
    }
    const failing = (await deliveryLog(w, endpoint.id))[0];
    expect(failing).toMatchObject({ status: "pending", attempts: 3, responseCode: 500, lastError: "HTTP 500" });
    const { result } = await runQueue(w, [{ delivery: delivery.id }], { attempts: 4 });
    expect(result.explicitAcks).toHaveLength(1);
    expect((await deliveryLog(w, endpoint.id))[0]).toMatchObject({
      status: "delivered",
      attempts: 4,
      responseCode: 200,
    });
    // Every attempt was the same event: the same webhook-id and body.
    const got = receivedBy(customerId);
    expect(new Set(got.map((r) => r.headers["webhook-id"])).size).toBe(1);
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    expect(got).toHaveLength(4);
  });

  it("the retry schedule spans more than 24 hours", () => {
    const total = retrySchedule().reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(24 * 3600);
    expect(Math.max(...retrySchedule())).toBeLessThanOrEqual(12 * 3600);
  });

  it("dead letters mark the delivery failed; one more after a day of failures disables the endpoint (audited)", async () => {
    const { subId, endpoint } = await listened(["entitlements.changed"]);
    await upgrade(subId);
    const [delivery] = await deliveryLog(w, endpoint.id);
    rx.answers.push(500);
    await runQueue(w, [{ delivery: delivery.id }]);
    await w.at(w.clock.now() + 36 * HOUR_MS, async () => {
      await runQueue(w, [{ delivery: delivery.id }], { queue: DEAD_LETTERS, attempts: 9 });
    });
    expect((await deliveryLog(w, endpoint.id))[0]).toMatchObject({ status: "failed", lastError: "retries exhausted" });
    const got = await w.call("GET", `/admin/v1/webhook-endpoints/${endpoint.id}`, { key: BOOTSTRAP });
    expect(got.json).toMatchObject({
      enabled: false,
      disabledReason: expect.stringContaining("no successful delivery"),
    });
    const audit = (await auditOf("webhook_endpoint", endpoint.id)).filter((a) => a.action === "endpoint.disabled");
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: "system" });
  });

  it("a disabled endpoint receives nothing: no new deliveries, and queued ones are skipped", async () => {
    const { customerId, subId, endpoint } = await listened();
    await upgrade(subId);
    const path = `/admin/v1/webhook-endpoints/${endpoint.id}`;
    await w.call("PATCH", path, { key: BOOTSTRAP, body: { enabled: false } });
    const queued = await deliveryLog(w, endpoint.id);
    await runQueue(
      w,
      queued.map((d) => ({ delivery: d.id })),
    );
    await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "immediately" });
    expect(receivedBy(customerId)).toEqual([]);
    const log = await deliveryLog(w, endpoint.id);
    expect(log.map((d) => d.status)).toEqual(queued.map(() => "skipped"));
  });

  it("replays one delivery, and a time range, with the same webhook-id", async () => {
    const { customerId, subId, endpoint } = await listened(["entitlements.changed"]);
    await upgrade(subId);
    await deliverPending(w, endpoint.id);
    const [delivery] = await deliveryLog(w, endpoint.id);
    const base = `/admin/v1/webhook-endpoints/${endpoint.id}`;
    const one = await w.call("POST", `${base}/deliveries/${delivery.id}/replay`, { key: BOOTSTRAP });
    expect(one.status).toBe(202);
    expect(one.json).toEqual({ replayed: 1, deliveries: [delivery.id], more: false });
    await deliverPending(w, endpoint.id);
    const from = new Date(w.clock.now() - HOUR_MS).toISOString();
    const to = new Date(w.clock.now() + HOUR_MS).toISOString();
    const range = await w.call("POST", `${base}/replay`, { key: BOOTSTRAP, body: { from, to } });
    expect(range.json.replayed).toBe(1);
    await deliverPending(w, endpoint.id);
    const got = receivedBy(customerId);
    expect(got).toHaveLength(3);
    expect(new Set(got.map((r) => r.headers["webhook-id"])).size).toBe(1);
    expect((await deliveryLog(w, endpoint.id))[0]).toMatchObject({ status: "delivered", attempts: 3 });
    expectProblem(await w.call("POST", `${base}/deliveries/dlv_nope/replay`, { key: BOOTSTRAP }), 404);
    expectProblem(await w.call("POST", `${base}/replay`, { key: BOOTSTRAP, body: { from: to, to: from } }), 400);
  });

  it("a rotated secret: both sign during the overlap, only the new one after it", async () => {
    const { customerId, subId, endpoint } = await listened(["entitlements.changed"]);
    const rotated = await w.call("POST", `/admin/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, {
      key: BOOTSTRAP,
      body: { overlapSeconds: 3600 },
    });
    expect(rotated.status).toBe(200);
    const secret = rotated.json.secret as string;
    expect(secret).not.toBe(endpoint.secret);
    await upgrade(subId);
    await deliverPending(w, endpoint.id);
    const first = receivedBy(customerId)[0]!;
    expect(first.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    verify(endpoint.secret, first, w.clock.now());
    verify(secret, first, w.clock.now());
    await w.at(w.clock.now() + 2 * HOUR_MS, async () => {
      const [d] = await deliveryLog(w, endpoint.id);
      await w.call("POST", `/admin/v1/webhook-endpoints/${endpoint.id}/deliveries/${d.id}/replay`, { key: BOOTSTRAP });
      await deliverPending(w, endpoint.id);
      const second = receivedBy(customerId)[1]!;
      expect(second.headers["webhook-signature"]!.split(" ")).toHaveLength(1);
      verify(secret, second, w.clock.now());
      expect(() => verify(endpoint.secret, second, w.clock.now())).toThrow();
    });
  });

  it("spreads deliveries over the endpoint's rate: beyond it, messages go back on the queue with a delay", async () => {
    const { customerId, subId, endpoint } = await listened([], { ratePerSecond: 1 });
    await upgrade(subId);
    await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "immediately" });
    const pending = await deliveryLog(w, endpoint.id, "pending");
    expect(pending).toHaveLength(4);
    const { result } = await runQueue(
      w,
      pending.map((d) => ({ delivery: d.id })),
    );
    // All four acked: two sent now (the slot at now and one within the tolerance), two re-enqueued for later.
    expect(result.explicitAcks).toHaveLength(4);
    expect(receivedBy(customerId)).toHaveLength(2);
    expect((await deliveryLog(w, endpoint.id, "pending")).length).toBe(2);
  });
});
