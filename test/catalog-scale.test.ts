// Issue 12's propagation target, at scale: 100,000 customers on one plan (batch-inserted into local D1,
// each pinned to the plan's version 1 as the API pins them), one change to that plan that moves them
// all (migrate=now). The change writes O(1) KV keys and D1 rows (no customer is recompiled, no job
// exists), and a second worker instance (its own isolate caches, the same KV and D1) answers with the
// new entitlement once its catalog TTL has passed, and never mixes old and new within one answer. The
// same change with `stay` leaves every existing subscriber on its version and gives a new one the new.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock";
import { isCatalogFanoutMessage, runCatalogFanoutPage } from "../src/events/catalog-events";
import { createCustomer, createKey, createPlan, loadTestCatalog } from "./helpers/admin";
import { countingEnv } from "./helpers/counting";
import { rebindPublisher } from "./helpers/publishers";
import { T0 } from "./helpers/time";
import { createEndpoint, recordingQueue } from "./helpers/webhooks";
import { BOOTSTRAP, testWorker } from "./helpers/worker";

const N = 100_000;
const PLAN = "scale-plan";
const id = (i: number) => `scale-${String(i).padStart(6, "0")}`;
const rows = async (table: string) =>
  (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table}`).first<{ n: number }>())?.n ?? 0;

const writer = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(writer);
  await createPlan(writer, PLAN, { sso: false, api_calls: { limit: 10 } });
  key = await createKey(writer, ["check"]);
  const seq = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)`;
  await env.DB.batch([
    env.DB.prepare(
      `INSERT INTO customers (id, name, rev, created_at, updated_at) ${seq} SELECT printf('scale-%06d', i), '', 1, ?2, ?2 FROM n`,
    ).bind(N, T0),
    env.DB.prepare(
      `INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at, plan_version) ${seq}
       SELECT printf('sub-scale-%06d', i), printf('scale-%06d', i), ?3, 'active', ?2, ?2, ?2, 1 FROM n`,
    ).bind(N, T0, PLAN),
  ]);
}, 60_000);

describe(`a plan change with ${N.toLocaleString("en")} subscribers`, () => {
  it("writes a handful of KV keys and D1 rows, and reaches a second instance within its catalog TTL", async () => {
    expect(await rows("subscriptions")).toBeGreaterThanOrEqual(N);
    const clock = new ManualClock(T0);
    const reader = testWorker({ clock }); // another isolate: its own part and catalog caches
    const check = (customerId: string) =>
      reader.call("POST", "/v1/check", { key, body: { customerId, feature: "sso", role: "admin" } });
    const first = await check(id(1));
    expect(first.json).toMatchObject({ allowed: false, reason: "not_entitled" });
    const other = testWorker({ clock: new ManualClock(T0) }); // a third isolate, also on the old catalog
    const otherCheck = (customerId: string, minVersion?: string) =>
      other.call("POST", "/v1/check", { key, body: { customerId, feature: "sso", role: "admin", minVersion } });
    expect((await otherCheck(id(2))).json.allowed).toBe(false);

    const partsBefore = await rows("part_history");
    const { counter, env: counted } = countingEnv();
    // The catalog's publisher writes KV: counted with the same wrapper.
    let restore = await rebindPublisher("catalog", { kv: counted.SNAPSHOTS, db: counted.DB });
    const res = await writer.call("PUT", `/admin/v1/plans/${PLAN}/entitlements/sso?migrate=now`, {
      key: BOOTSTRAP,
      body: true,
      env: counted,
    });
    await restore();
    expect(res.status).toBe(200);
    // The new catalog object and its pointer; nothing per customer.
    expect(counter.kvPuts).toEqual([`catalog:${res.json.catalogRev}`, "catalog:head"]);
    // The plan row and its exact set of entitlements (rewritten whole), its new version, the migration,
    // the catalog revision, two audit entries and one catalog history row, each with its index entries
    // as D1 counts rows written, whatever N is (the same change on a plan with 10 customers writes the same).
    expect(counter.d1RowsWritten).toBeLessThanOrEqual(30);
    expect(await rows("part_history")).toBe(partsBefore);
    expect(await rows("sqlite_master WHERE name = 'jobs'")).toBe(0);

    // Within its catalog TTL the reader still answers from the catalog it holds (the old plan)...
    clock.advance(4_999);
    expect((await check(id(1))).json).toMatchObject({ allowed: false, version: first.json.version });
    // ...except for a customer whose part it reads now: that part was read with the new catalog
    // revision, and a part is never composed with an older catalog than its own.
    expect((await check(id(N))).json).toMatchObject({ allowed: true, version: `1.${res.json.catalogRev}` });
    // Once the TTL has passed, every answer is the new one.
    clock.advance(1);
    const after = await check(id(1));
    expect(after.json).toMatchObject({ allowed: true, reason: "ok", version: `1.${res.json.catalogRev}` });
    // Read-your-writes for a catalog write: the third isolate still holds the old catalog (its TTL has
    // not passed), but a check that asks for the write's version is never answered from it.
    expect((await otherCheck(id(2))).json.allowed).toBe(false);
    expect((await otherCheck(id(2), res.json.version)).json).toMatchObject({ allowed: true });

    // The same kind of change with `stay` (the default): O(1) again, every existing subscriber keeps its
    // version (sso stays on), and a new subscriber gets the new one (sso off).
    const { counter: again, env: counted2 } = countingEnv();
    restore = await rebindPublisher("catalog", { kv: counted2.SNAPSHOTS });
    const stay = await writer.call("PUT", `/admin/v1/plans/${PLAN}/entitlements/sso`, {
      key: BOOTSTRAP,
      body: false,
      env: counted2,
    });
    await restore();
    expect(stay.json.plan.version).toBe(3);
    expect(again.kvPuts).toEqual([`catalog:${stay.json.catalogRev}`, "catalog:head"]);
    const late = testWorker({ clock: new ManualClock(T0) });
    const lateCheck = (customerId: string) =>
      late.call("POST", "/v1/check", { key, body: { customerId, feature: "sso", role: "admin" } });
    for (const i of [1, 2, N / 2, N]) expect((await lateCheck(id(i))).json.allowed).toBe(true);
    const newcomer = await createCustomer(writer, { id: "scale-newcomer", subscriptions: [{ planId: PLAN }] });
    expect((await lateCheck(newcomer.id)).json).toMatchObject({ allowed: false, reason: "not_entitled" });
  }, 60_000);

  it("its entitlements.changed fan-out walks the subscribers a page at a time, the last page reading what the first reads", async () => {
    await createEndpoint(writer, { url: "https://app.example/scale", eventTypes: ["entitlements.changed"] });
    const rec = recordingQueue(env.WEBHOOK_QUEUE);
    const res = await writer.call("PUT", `/admin/v1/plans/${PLAN}/entitlements/api_calls?migrate=now`, {
      key: BOOTSTRAP,
      body: { limit: 20 },
      env: { ...env, WEBHOOK_QUEUE: rec.queue } as Cloudflare.Env,
    });
    expect(res.status).toBe(200);
    const [start] = rec.sent.filter(isCatalogFanoutMessage);
    expect(start?.catalogChange).toMatchObject({ toRev: res.json.catalogRev, after: "" });
    const page = async (after: string) => {
      const { counter, env: counted } = countingEnv({ ...env, WEBHOOK_QUEUE: rec.queue } as Cloudflare.Env);
      const started = performance.now();
      const emitted = await runCatalogFanoutPage(counted, { ...start!.catalogChange, after });
      return { emitted, rowsRead: counter.d1RowsRead, ms: performance.now() - started };
    };
    const first = await page("");
    const deep = await page(id(N - 150)); // the walk's second-to-last page
    const last = await page(id(N - 50));
    expect(first.emitted).toBe(100);
    expect(deep.emitted).toBe(100);
    expect(last.emitted).toBe(51); // id(N - 49) .. id(N), and the customer created by the test above
    // Bounded: a keyset page reads the same rows at the end of the walk as at its start.
    expect(deep.rowsRead).toBeLessThanOrEqual(first.rowsRead * 1.2 + 50);
    expect(first.rowsRead).toBeLessThan(5_000);
    // The last page sends no next page; the others send the one after their last customer.
    const nexts = rec.sent.filter(isCatalogFanoutMessage).slice(1);
    expect(nexts.map((m) => m.catalogChange.after)).toEqual([id(100), id(N - 50)]);
    const events = await rows(
      `outbound_events WHERE type = 'entitlements.changed' AND customer_id LIKE 'scale-%' AND json_extract(data, '$.cause.kind') = 'catalog'`,
    );
    expect(events).toBe(251);
    console.log(
      `catalog fan-out at ${N.toLocaleString("en")} subscribers: a page of 100 in ${first.ms.toFixed(0)} ms (first) / ${deep.ms.toFixed(0)} ms (deep), ` +
        `${first.rowsRead} / ${deep.rowsRead} D1 rows read; the whole walk is ${N / 100} pages`,
    );
  }, 60_000);
});
