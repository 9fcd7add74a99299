// The meter is the authority on the terms it enforces (issue 13). Every consume and reserve carries
// the version of the snapshot its allowance came from; the meter keeps the newest version it has
// seen (SQLite, meter schema version 4), refuses older terms with stale_terms, and the Worker
// re-reads the snapshot at that version and retries once. Customer writes push their version.
//
// Two workers over the same bindings are two isolates: `b`'s cache keeps the snapshot it read
// before a write made through `a`, as an edge elsewhere would (its clock does not move, so its
// 5 s TTL never runs out).
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { CustomerMeter } from "../src/meter/customer-meter";
import type { UsageCall } from "../src/meter/protocol";
import { TermsWatermark } from "../src/meter/terms-version";
import { createCustomer, createKey, createPlan, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { observedMeterEnv } from "./helpers/counting";
import { outage } from "./helpers/faults";
import { T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, type TestWorker, testWorker, uid } from "./helpers/worker";

const a = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(a);
  key = await createKey(a, ["check", "usage"]);
});

const meter = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));
const consume = (w: TestWorker, customerId: string, amount = 1, extra: Record<string, unknown> = {}) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount, ...extra } });
/** A customer write that leaves api_calls alone: the SSO add-on. Answers its version. */
const addSso = async (customerId: string) => {
  const res = await a.call("POST", "/admin/v1/subscriptions", {
    key: BOOTSTRAP,
    body: { customerId, planId: "sso-addon", reason: "add-on (issue 13)" },
  });
  expect(res.status).toBe(201);
  return res.json as { snapshotVersion: number; version: string };
};
const tokenOf = (version: string) => {
  const [customer, catalog] = version.split(".").map(Number);
  return { customer: customer!, catalog: catalog! };
};

/** A consume as the Worker sends it, with the given terms version (a customer on meter-lab: 50 a day). */
const rawCall = (customerId: string, termsVersion: { customer: number; catalog: number }): UsageCall => ({
  customerId,
  feature: "api_calls",
  amount: 1,
  mode: "consume",
  idempotencyKey: null,
  fingerprint: "",
  termsVersion,
  allowance: { limit: 50, overage: "block", overageCap: null },
  entitled: true,
  terms: { reset: "day", anchor: "calendar", anchorAt: null },
  occurredAt: T0,
  now: T0,
  gauge: false,
});

describe("a downgrade reaches the next consume through any isolate", () => {
  it("change-plan to a lower limit, then consumes through a second isolate with a stale cache: nothing beyond the new limit", async () => {
    const sub = uid("sub");
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id; // 1000 a month
    expect((await consume(a, id, 15)).json).toMatchObject({ allowed: true, used: 15, limit: 1000 });
    const b = testWorker();
    expect((await consume(b, id, 1)).json).toMatchObject({ allowed: true, used: 16, limit: 1000 }); // b caches the Pro part

    const down = await subscriptionAction(a, sub, "change-plan", {
      planId: "meter-billing", // 20 a month, same billing anchor: the same counter continues
      when: "immediately",
      reason: "downgrade (issue 13)",
    });
    expect(down.status).toBe(200);
    // b still holds the Pro snapshot in its cache, but the meter knows the downgrade's version and
    // decides every consume on the new terms.
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await consume(b, id, 1));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.map((r) => r.json.limit)).toEqual(Array(10).fill(20));
    expect(results.filter((r) => r.json.allowed)).toHaveLength(4);
    expect(results.at(-1)!.json).toMatchObject({ allowed: false, reason: "limit_reached", used: 20, remaining: 0 });
    const counters = await meter(id).counters(T0);
    expect(counters.find((c) => c.feature === "api_calls")?.used).toBe(20);
    // And b has learnt the new snapshot on the way: its checks agree now.
    expect(
      (await b.call("POST", "/v1/check", { key, body: { customerId: id, feature: "api_calls" } })).json,
    ).toMatchObject({
      allowed: false,
      limit: 20,
    });
  });

  // Exact checks (maxUsageAgeMs: 0) ask the meter every time; a check answered from the isolate's usage
  // summary is as stale as the isolate's part, at most maxUsageAgeMs (test/usage-summary.test.ts).
  it("an exact metered check through the stale isolate is answered on the meter's newer terms too", async () => {
    const sub = uid("sub");
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id;
    const seen = observedMeterEnv();
    const b = testWorker({ env: seen.env });
    const check = (quantity: number) =>
      b.call("POST", "/v1/check", { key, body: { customerId: id, feature: "api_calls", quantity, maxUsageAgeMs: 0 } });
    expect((await check(500)).json).toMatchObject({ allowed: true, limit: 1000 }); // b caches the Pro part
    const down = { planId: "meter-billing", when: "immediately", reason: "downgrade" };
    const res = await subscriptionAction(a, sub, "change-plan", down);
    seen.calls.length = 0;
    expect((await check(500)).json).toMatchObject({
      allowed: false,
      reason: "limit_reached",
      limit: 20,
      version: res.json.version,
    });
    expect(seen.calls.map((c) => c.method)).toEqual(["peek", "peek"]); // the stale answer, then the fresh one
    expect((await check(1)).json).toMatchObject({ allowed: true, limit: 20 });
    expect(seen.calls).toHaveLength(3); // b holds the new part now: one peek
  });

  it("GET /v1/usage through the stale isolate shows the limit of the meter's newer terms", async () => {
    const sub = uid("sub");
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id;
    const b = testWorker();
    await consume(b, id, 3); // b caches the Pro part
    const down = { planId: "meter-billing", when: "immediately", reason: "downgrade" };
    expect((await subscriptionAction(a, sub, "change-plan", down)).status).toBe(200);
    const usage = await b.call("GET", `/v1/usage/${id}?feature=api_calls`, { key });
    expect(usage.json.features[0]).toMatchObject({ feature: "api_calls", used: 3, limit: 20, remaining: 17 });
  });

  it("concurrent consumes through the stale isolate right after the downgrade admit exactly up to the new limit", async () => {
    const sub = uid("sub");
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id;
    const b = testWorker();
    expect((await consume(b, id, 10)).json).toMatchObject({ allowed: true, used: 10, limit: 1000 });
    const down = { planId: "meter-billing", when: "immediately", reason: "downgrade" };
    expect((await subscriptionAction(a, sub, "change-plan", down)).status).toBe(200);
    const results = await Promise.all(Array.from({ length: 30 }, () => consume(b, id, 1)));
    expect(results.every((r) => r.status === 200 && r.json.limit === 20)).toBe(true);
    expect(results.filter((r) => r.json.allowed)).toHaveLength(10);
    expect((await meter(id).counters(T0)).find((c) => c.feature === "api_calls")?.used).toBe(20);
  });

  it("a push that fails does not fail the write; the next consume on the new terms advances the meter", async () => {
    const broken = observedMeterEnv(env, new Set(["advanceTerms"]));
    const writer = testWorker({ env: broken.env });
    const sub = uid("sub");
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id;
    const b = testWorker();
    await consume(b, id, 15); // b caches the Pro part
    const down = { planId: "meter-billing", when: "immediately", reason: "downgrade" };
    const res = await subscriptionAction(writer, sub, "change-plan", down);
    expect(res.status).toBe(200);
    expect(broken.calls.filter((c) => c.method === "advanceTerms" && c.error)).toHaveLength(1);
    expect(await meter(id).termsVersion()).not.toEqual(tokenOf(res.json.version));
    // The writer's isolate holds the new part: its consume teaches the meter.
    expect((await consume(writer, id, 1)).json).toMatchObject({ allowed: true, used: 16, limit: 20 });
    expect(await meter(id).termsVersion()).toEqual(tokenOf(res.json.version));
    expect((await consume(b, id, 5)).json).toMatchObject({ allowed: false, reason: "limit_reached", limit: 20 });
  });

  it("a catalog downgrade (not pushed) reaches a stale isolate's consumes as soon as a fresher isolate talked to the meter", async () => {
    const plan = uid("plan");
    await createPlan(a, plan, { api_calls: { limit: 100, reset: "month" } });
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ planId: plan }] })).id;
    const b = testWorker();
    expect((await consume(b, id, 10)).json).toMatchObject({ allowed: true, limit: 100 }); // b holds the catalog
    const edit = await a.call("PUT", `/admin/v1/plans/${plan}/entitlements/api_calls?migrate=now`, {
      key: BOOTSTRAP,
      body: { limit: 12, reset: "month" },
    });
    expect(edit.status, edit.text).toBe(200);
    // No push for a catalog write: b's consume is still judged on the catalog it holds...
    expect((await consume(b, id, 1)).json).toMatchObject({ allowed: true, used: 11, limit: 100 });
    // ...until an isolate with the new catalog talks to the meter.
    expect((await consume(a, id, 1)).json).toMatchObject({ allowed: true, used: 12, limit: 12 });
    expect((await consume(b, id, 1)).json).toMatchObject({ allowed: false, reason: "limit_reached", limit: 12 });
  });
});

describe("stale terms are refused, never decided", () => {
  it("the meter refuses a call older than the newest it has seen (either part lower) and learns what is newer", async () => {
    const id = uid();
    const m = meter(id);
    expect(await m.usage(rawCall(id, { customer: 2, catalog: 2 }))).toMatchObject({ ok: true, answer: { used: 1 } });
    expect(await m.usage(rawCall(id, { customer: 1, catalog: 2 }))).toEqual({
      ok: false,
      error: "stale_terms",
      detail: "Terms 1.2 are older than 2.2.",
      newest: { customer: 2, catalog: 2 },
    });
    // Newer customer, older catalog: refused, and the meter now knows customer revision 3.
    expect(await m.usage(rawCall(id, { customer: 3, catalog: 1 }))).toMatchObject({
      ok: false,
      error: "stale_terms",
      newest: { customer: 3, catalog: 2 },
    });
    expect(await m.usage(rawCall(id, { customer: 3, catalog: 2 }))).toMatchObject({ ok: true, answer: { used: 2 } });
    expect((await m.counters(T0))[0]?.used).toBe(2); // the refusals counted nothing
    // A reserve is judged the same way.
    const reserve = { ...rawCall(id, { customer: 2, catalog: 2 }), ttlSeconds: 60, wholeUnits: true };
    expect(await m.reserve(reserve)).toMatchObject({ ok: false, error: "stale_terms" });
  });

  it("an older request after a newer one is refused and retried on fresh terms: the client sees a normal decision", async () => {
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    const seen = observedMeterEnv();
    const b = testWorker({ env: seen.env });
    expect((await consume(b, id, 1)).json).toMatchObject({ allowed: true, used: 1 }); // b caches version 1.k
    const write = await addSso(id);
    expect((await consume(a, id, 1)).json).toMatchObject({ allowed: true, used: 2 }); // the newer terms
    seen.calls.length = 0;
    const older = await consume(b, id, 1);
    expect(older.status).toBe(200);
    expect(older.json).toMatchObject({ allowed: true, reason: "ok", used: 3, snapshotVersion: write.snapshotVersion });
    const usage = seen.calls.filter((c) => c.method === "usage");
    expect(usage.map((c) => (c.result as { ok: boolean; error?: string }).error ?? "ok")).toEqual([
      "stale_terms",
      "ok",
    ]);
  });

  it("an idempotent replay answers the remembered decision at once, whatever terms the retry carries", async () => {
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    const seen = observedMeterEnv();
    const b = testWorker({ env: seen.env });
    const headers = { "Idempotency-Key": uid("idem") };
    const first = await b.call("POST", "/v1/usage", { key, headers, body: { customerId: id, feature: "api_calls" } });
    await addSso(id); // b's snapshot is now older than the meter's
    seen.calls.length = 0;
    const again = await b.call("POST", "/v1/usage", { key, headers, body: { customerId: id, feature: "api_calls" } });
    expect(again.json).toMatchObject({ allowed: true, used: first.json.used, replayed: true });
    // Answered from the idempotency table: not refused as stale first.
    expect(seen.calls.filter((c) => c.method === "usage")).toHaveLength(1);
  });

  it("the meter's version survives a restart of the Durable Object (it is in SQLite)", async () => {
    const id = uid();
    const m = meter(id);
    await m.advanceTerms(id, { customer: 7, catalog: 3 }, T0);
    await runInDurableObject(m, (_m: CustomerMeter, state) => {
      const row = state.storage.sql.exec("SELECT customer_rev, catalog_rev FROM terms_version").one();
      expect(row).toEqual({ customer_rev: 7, catalog_rev: 3 });
      // What a new instance reads when it starts.
      expect(new TermsWatermark(state.storage.sql).newest).toEqual({ customer: 7, catalog: 3 });
      state.abort("restart (test)");
    }).catch((err) => expect(String(err)).toContain("restart"));
    // A new instance: the version is still there, and older terms are still refused.
    expect(await meter(id).termsVersion()).toEqual({ customer: 7, catalog: 3 });
    expect(await meter(id).usage(rawCall(id, { customer: 6, catalog: 3 }))).toMatchObject({ error: "stale_terms" });
    expect(await meter(id).advanceTerms(id, { customer: 5, catalog: 1 }, T0)).toEqual({ customer: 7, catalog: 3 });
  });

  it("a deleted customer's id created again starts from revision 1: its meter forgets the old customer revision", async () => {
    const id = uid();
    await createCustomer(a, { id });
    // What the meter of an earlier customer of this id (revision 4) would have kept.
    expect(await meter(id).advanceTerms(id, { customer: 4, catalog: 0 }, T0)).toMatchObject({ customer: 4 });
    expect((await a.call("DELETE", `/admin/v1/customers/${id}`, { key: BOOTSTRAP })).status).toBe(200);
    await createCustomer(a, { id, subscriptions: [{ planId: "meter-lab" }] });
    expect((await consume(testWorker(), id, 1)).json).toMatchObject({ allowed: true, used: 1, limit: 50 });
  });
});

describe("with KV and D1 down", () => {
  it("a consume on a stale copy older than the meter's terms is never decided: 503 with Retry-After", async () => {
    const sub = uid("sub");
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id;
    const b = testWorker();
    expect((await consume(b, id, 1)).json).toMatchObject({ allowed: true, limit: 1000 });
    b.clock.advance(6_000); // b's copy is past its TTL: only stale-if-error would serve it
    const use = () => b.call("POST", "/v1/usage", { key, env: outage, body: { customerId: id, feature: "api_calls" } });
    // Before any newer terms, the stale copy still serves (as before issue 13).
    expect((await use()).json).toMatchObject({ allowed: true, used: 2, limit: 1000 });
    const down = { planId: "meter-billing", when: "immediately", reason: "downgrade" };
    expect((await subscriptionAction(a, sub, "change-plan", down)).status).toBe(200);
    const res = await use();
    expectProblem(res, 503, "unavailable");
    expect(res.headers.get("Retry-After")).toBe("5");
    expect((await meter(id).counters(T0)).find((c) => c.feature === "api_calls")?.used).toBe(2);
  });
});

describe("minVersion on /v1/usage", () => {
  it("a consume with a write's version is judged on that write's terms, through an isolate that had older ones", async () => {
    const sub = uid("sub");
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ id: sub, planId: "pro" }] })).id;
    const b = testWorker({ env: observedMeterEnv(env, new Set(["advanceTerms"])).env });
    await consume(b, id, 1);
    // Written through b's own bindings with the push failing: only minVersion can tell b.
    const w = testWorker({ env: observedMeterEnv(env, new Set(["advanceTerms"])).env });
    const down = { planId: "meter-billing", when: "immediately", reason: "downgrade" };
    const res = await subscriptionAction(w, sub, "change-plan", down);
    const got = await consume(b, id, 1, { minVersion: res.json.version });
    expect(got.json).toMatchObject({ allowed: true, limit: 20, snapshotVersion: res.json.snapshotVersion });
    const reserve = await b.call("POST", "/v1/usage/reserve", {
      key,
      body: { customerId: id, feature: "api_calls", amount: 1, minVersion: res.json.snapshotVersion },
    });
    expect(reserve.json).toMatchObject({ allowed: true, limit: 20 });
  });

  it("a version that does not exist yet is the same 409 as a check's", async () => {
    const id = (await createCustomer(a, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
    const res = await consume(a, id, 1, { minVersion: "1.999999" });
    const p = expectProblem(res, 409, "conflict");
    expect(p.detail).toMatch(/^Version 1\.999999 does not exist yet; the newest is \d+\.\d+\.$/);
    expect(p.available).toEqual(expect.stringMatching(/^\d+\.\d+$/));
    const check = await a.call("POST", "/v1/check", {
      key,
      body: { customerId: id, feature: "api_calls", minVersion: "1.999999" },
    });
    expect(expectProblem(check, 409, "conflict").detail).toBe(p.detail);
    expect((await meter(id).counters(T0))[0]?.used).toBeUndefined(); // nothing counted
    const bad = await consume(a, id, 1, { minVersion: "x" });
    expectProblem(bad, 400, "validation");
  });
});
