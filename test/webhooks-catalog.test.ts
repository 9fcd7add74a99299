// entitlements.changed that no customer write carries: a catalog change (a plan edited with a migration
// "now", a region group) fanned out over the webhook queue a page at a time, a subscription moved at its
// period end by an `at_period_end` migration, and a grant's end. Each once per customer and cause.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { type CatalogFanoutMessage, isCatalogFanoutMessage } from "../src/events/catalog-events";
import { createCustomer, createPlan, customerWith, loadTestCatalog } from "./helpers/admin";
import { DAY_MS, iso, MINUTE_MS, T0 } from "./helpers/time";
import { createEndpoint, recordingQueue, runQueue } from "./helpers/webhooks";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const rec = recordingQueue(env.WEBHOOK_QUEUE);
const bindings = { ...env, WEBHOOK_QUEUE: rec.queue } as Cloudflare.Env;
const w = testWorker({ env: bindings });

beforeAll(async () => {
  await loadTestCatalog(w);
  await createEndpoint(w, { url: "https://app.example/everything", eventTypes: ["entitlements.changed"] });
});

const changesOf = async (customerId: string, kind?: string) =>
  (
    await env.DB.prepare(
      "SELECT id, data FROM outbound_events WHERE customer_id = ?1 AND type = 'entitlements.changed' ORDER BY seq",
    )
      .bind(customerId)
      .all<{ id: string; data: string }>()
  ).results
    .map((r) => ({ id: r.id, data: JSON.parse(r.data) }))
    .filter((e) => kind === undefined || e.data.cause?.kind === kind);

/** The fan-out pages the worker enqueued since the last call (delivery messages are left aside). */
const takePages = () => rec.sent.splice(0).filter(isCatalogFanoutMessage) as CatalogFanoutMessage[];

/** Runs pages through the consumer until none is left; answers how many ran. */
async function drain(pages: CatalogFanoutMessage[]) {
  let ran = 0;
  while (pages.length > 0) {
    const { result } = await runQueue(w, pages, { env: bindings });
    expect(result.retryMessages).toEqual([]);
    ran += pages.length;
    pages = takePages();
  }
  return ran;
}

async function runCron(at: number) {
  await w.at(at, async () => {
    const controller = createScheduledController({ scheduledTime: new Date(at), cron: "*/5 * * * *" });
    const ctx = createExecutionContext();
    await w.worker.scheduled(controller, bindings, ctx);
    await waitOnExecutionContext(ctx);
  });
}

const catalogRev = async () =>
  (await env.DB.prepare("SELECT value FROM meta WHERE key = 'catalog_rev'").first<number>("value")) ?? 0;

describe("catalog changes", () => {
  it("a plan edit migrated now reaches each of the plan's subscribers once, a page at a time; other plans' customers get nothing", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { sso: false, api_calls: { limit: 10, reset: "month" } });
    const subscribers = [];
    for (let i = 0; i < 5; i++) subscribers.push((await customerWith(w, { planId })).customerId);
    const other = (await customerWith(w, { planId: "pro" })).customerId;
    takePages();
    const res = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/sso?migrate=now`, {
      key: BOOTSTRAP,
      body: true,
    });
    expect(res.status).toBe(200);
    const rev = await catalogRev();
    const pages = takePages();
    expect(pages).toEqual([{ catalogChange: { fromRev: rev - 1, toRev: rev, at: T0, after: "" } }]);
    // Two customers a page: 5 subscribers are three pages, each sending the next.
    expect(await drain([{ catalogChange: { ...pages[0]!.catalogChange, limit: 2 } }])).toBe(3);
    for (const id of subscribers) {
      const events = await changesOf(id, "catalog");
      expect(events).toHaveLength(1);
      expect(events[0]!.data).toMatchObject({
        gained: [{ feature: "sso" }],
        lost: [],
        changed: [],
        cause: { kind: "catalog", fromCatalogRev: rev - 1, catalogRev: rev },
      });
      expect(events[0]!.data.version).toMatch(new RegExp(`^\\d+\\.${rev}$`));
    }
    expect(await changesOf(other, "catalog")).toEqual([]);
    // A page that runs again (a redelivered message) sends nothing new.
    await drain([{ catalogChange: { ...pages[0]!.catalogChange } }]);
    for (const id of subscribers) expect(await changesOf(id, "catalog")).toHaveLength(1);
  });

  it("an edit that leaves subscribers on their version (grandfathered) sends nothing", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { sso: false });
    const { customerId } = await customerWith(w, { planId });
    takePages();
    const res = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/sso`, { key: BOOTSTRAP, body: true });
    expect(res.status).toBe(200);
    const pages = takePages();
    expect(pages).toHaveLength(1);
    await drain(pages);
    expect(await changesOf(customerId, "catalog")).toEqual([]);
  });

  it("a region group change walks every customer; country rules are not part of the diff, so it sends none", async () => {
    const pro = (await customerWith(w, { planId: "pro" })).customerId;
    takePages();
    const res = await w.call("PUT", "/admin/v1/region-groups/EU", {
      key: BOOTSTRAP,
      body: { countries: ["DE", "FR"] },
    });
    expect(res.status, res.text).toBe(200);
    const [page] = takePages();
    const customers = (await env.DB.prepare("SELECT COUNT(*) AS n FROM customers").first<number>("n")) ?? 0;
    const limit = 10;
    expect(await drain([{ catalogChange: { ...page!.catalogChange, limit } }])).toBe(Math.floor(customers / limit) + 1);
    expect(await changesOf(pro, "catalog")).toEqual([]);
  });

  it("a fan-out whose enqueue failed is started by the next cron run; with no endpoint enabled nothing is started", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { beta_ai: false });
    const { customerId } = await customerWith(w, { planId });
    takePages();
    rec.state.failing = true;
    try {
      const res = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/beta_ai?migrate=now`, {
        key: BOOTSTRAP,
        body: true,
      });
      expect(res.status).toBe(200); // the catalog write is committed whatever happens to its events
    } finally {
      rec.state.failing = false;
    }
    expect(takePages()).toEqual([]);
    await runCron(T0 + 5 * MINUTE_MS);
    await drain(takePages());
    expect((await changesOf(customerId, "catalog"))[0]?.data.gained).toEqual([{ feature: "beta_ai" }]);
    await runCron(T0 + 10 * MINUTE_MS);
    expect(takePages()).toEqual([]); // the watermark has moved: once

    const quiet = await env.DB.prepare("UPDATE webhook_endpoints SET enabled = 0").run();
    expect(quiet.meta.changes).toBeGreaterThan(0);
    try {
      await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/audit_export?migrate=now`, {
        key: BOOTSTRAP,
        body: true,
      });
      expect(takePages()).toEqual([]);
    } finally {
      await env.DB.prepare("UPDATE webhook_endpoints SET enabled = 1").run();
    }
    await runCron(T0 + 15 * MINUTE_MS);
    expect(takePages()).toEqual([]); // enabling again does not replay what happened meanwhile
  });
});

describe("changes time makes", () => {
  it("an at_period_end migration: each subscriber's change is sent by the first cron run after its own period end, once", async () => {
    const planId = uid("plan");
    await createPlan(w, planId, { sso: false });
    const early = T0 + 10 * DAY_MS;
    const late = T0 + 20 * DAY_MS;
    const sub = (end: number) => ({ planId, currentPeriodStart: iso(T0 - DAY_MS), currentPeriodEnd: iso(end) });
    const a = (await customerWith(w, sub(early))).customerId;
    const b = (await customerWith(w, sub(late))).customerId;
    const res = await w.call("PUT", `/admin/v1/plans/${planId}/entitlements/sso?migrate=at_period_end`, {
      key: BOOTSTRAP,
      body: true,
    });
    expect(res.status).toBe(200);
    await drain(takePages());
    expect(await changesOf(a, "catalog")).toEqual([]); // nobody has moved yet
    await runCron(early - MINUTE_MS);
    expect(await changesOf(a, "migration")).toEqual([]);
    await runCron(early + 4 * MINUTE_MS);
    await runCron(early + 9 * MINUTE_MS);
    const moved = await changesOf(a, "migration");
    expect(moved).toHaveLength(1);
    expect(moved[0]!.data).toMatchObject({
      gained: [{ feature: "sso" }],
      cause: { kind: "migration", at: iso(early) },
    });
    expect(await changesOf(b, "migration")).toEqual([]);
    await runCron(late + MINUTE_MS);
    expect(await changesOf(b, "migration")).toHaveLength(1);
    expect(await changesOf(a, "migration")).toHaveLength(1);
  });

  it("a grant's end sends the change it makes, once; a grant whose end changes nothing sends none", async () => {
    const ends = T0 + 30 * DAY_MS;
    const grant = async (customerId: string, feature: string) => {
      const res = await w.call("POST", "/admin/v1/grants", {
        key: BOOTSTRAP,
        body: { customerId, feature, mode: "replace", spec: { enabled: false }, reason: "pause", expiresAt: iso(ends) },
      });
      expect(res.status, res.text).toBe(201);
      return res.json.grant.id as string;
    };
    const paused = (await customerWith(w, { planId: "pro" })).customerId;
    const grantId = await grant(paused, "beta_ai");
    // A customer without beta_ai: pausing it changes nothing, nor does the pause's end.
    const never = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] })).id;
    await grant(never, "beta_ai");
    await runCron(ends + MINUTE_MS);
    await runCron(ends + 6 * MINUTE_MS);
    const events = await changesOf(paused, "grant_expired");
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({
      gained: [{ feature: "beta_ai" }],
      cause: { kind: "grant_expired", grantId },
    });
    expect(await changesOf(never, "grant_expired")).toEqual([]);
  });
});
