// Publication you can trust (issue 13): every customer part and catalog revision reaches KV through its
// Publisher Durable Object (src/store/publisher.ts). Against a KV that lags per location, fails, and
// answers 429 to a second write of a key within a second (test/helpers/lagging-kv.ts, around the real
// local KV): KV converges to the newest version and never goes back, a failed publication is retried to
// success by the publisher's alarm without another write, a compile that read D1 earlier never lands
// last, and the cron republishes a write whose publication never reached its publisher.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../src/clock";
import { compareVersions, delayBeforeWrite, EMPTY_STATE, judge, REPAIR_INTERVAL_MS } from "../src/domain/publication";
import { repairPublications } from "../src/scheduled";
import { kvKeys } from "../src/store/kv";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { quiet } from "./helpers/faults";
import { LaggingKV } from "./helpers/lagging-kv";
import { publisherStub, rebindPublisher } from "./helpers/publishers";
import { DAY_MS, T0 } from "./helpers/time";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const setup = testWorker();
let key: string;
beforeAll(async () => {
  await loadTestCatalog(setup);
  key = await createKey(setup, ["check"]);
});
afterEach(() => {
  vi.restoreAllMocks();
});

const d1Rev = async (id: string) =>
  (await env.DB.prepare("SELECT rev, published_rev FROM customers WHERE id = ?1").bind(id).first<{
    rev: number;
    published_rev: number;
  }>())!;
/** The customer revisions KV took for a part, in order (a value is the part's JSON). */
const revsWritten = (kv: LaggingKV, id: string) =>
  kv.values(kvKeys.part(id)).map((v) => (v === null ? null : (JSON.parse(v) as { rev: number }).rev));
/** [customer rev, catalog rev] of a decision's version token. */
const versionOf = (token: string) => token.split(".").map(Number);

/**
 * A customer on `planId`, created through a writer whose KV (and whose publisher's KV) is a LaggingKV on
 * its own clock; `restore` gives the publisher its own KV back.
 */
async function onLaggingKV(prefix: string, planId: string) {
  const clock = new ManualClock(T0);
  const kv = new LaggingKV(clock);
  const id = uid(prefix);
  const name = kvKeys.part(id);
  const restore = await rebindPublisher(name, { kv: kv.at(0) });
  const w = testWorker({ clock, env: { ...env, SNAPSHOTS: kv.at(0) } });
  await createCustomer(w, { id, subscriptions: [{ planId }] });
  return { clock, kv, id, name, restore, w };
}

/** Runs the publisher's alarm until nothing is pending, a second of the test clock apart (KV's per-key rate). */
async function drain(name: string, clock: ManualClock) {
  for (let i = 0; i < 20; i++) {
    if (!(await publisherStub(name).inspect()).pending) return;
    clock.advance(1_001);
    await runDurableObjectAlarm(publisherStub(name));
  }
  throw new Error(`publisher ${name} still has a pending publication`);
}

/** An admin write that changes the customer's entitlements: an SSO add-on added, or the last one cancelled. */
async function toggleAddon(w: ReturnType<typeof testWorker>, customerId: string, subs: string[]) {
  if (subs.length > 0 && subs.length % 2 === 1) {
    const sub = subs.pop()!;
    const res = await w.call("POST", `/admin/v1/subscriptions/${sub}/cancel`, {
      key: BOOTSTRAP,
      body: { when: "immediately" },
    });
    expect(res.status).toBe(200);
    subs.push(sub, "cancelled");
    return res.json;
  }
  const res = await w.call("POST", "/admin/v1/subscriptions", {
    key: BOOTSTRAP,
    body: { customerId, planId: "sso-addon" },
  });
  expect(res.status).toBe(201);
  subs.push(res.json.subscription.id);
  return res.json;
}

describe("the publisher's rules (pure)", () => {
  it("never accepts a version older than the newest it holds, published or pending", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(5), fc.nat(3)), { minLength: 1, maxLength: 20 }),
        fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
        (offers, succeeds) => {
          let state = EMPTY_STATE;
          const written: number[][] = [];
          offers.forEach((version, i) => {
            const pub = { version, compiledAt: T0, puts: [] };
            if (judge(state, pub, T0 + i) !== "accept") return;
            state = { ...state, pending: pub };
            if (succeeds[i]) {
              written.push(version);
              state = { ...state, published: version, publishedAt: T0 + i, pending: null, attempts: 0 };
            } else state = { ...state, attempts: state.attempts + 1 };
          });
          for (let i = 1; i < written.length; i++)
            expect(compareVersions(written[i]!, written[i - 1]!)).toBeGreaterThan(0);
        },
      ),
    );
  });

  it("repairs: a reader's 'missing' once a minute at most, a verified 'drift' always", () => {
    const state = { ...EMPTY_STATE, published: [3, 1], publishedAt: T0 };
    const pub = { version: [3, 1], compiledAt: T0, puts: [] };
    expect(judge(state, pub, T0 + 1)).toBe("current");
    expect(judge(state, { ...pub, repair: "missing" }, T0 + REPAIR_INTERVAL_MS - 1)).toBe("current");
    expect(judge(state, { ...pub, repair: "missing" }, T0 + REPAIR_INTERVAL_MS)).toBe("accept");
    expect(judge(state, { ...pub, repair: "drift" }, T0 + 1)).toBe("accept");
    expect(judge(state, { ...pub, version: [2, 9], repair: "drift" }, T0 + 1)).toBe("superseded");
    // Read from D1 before the entry was retired: refused whatever its version.
    expect(judge({ ...EMPTY_STATE, floor: T0 }, { ...pub, compiledAt: T0 }, T0)).toBe("superseded");
    expect(judge({ ...EMPTY_STATE, floor: T0 }, { ...pub, compiledAt: T0 + 1 }, T0)).toBe("accept");
  });

  it("retries 1 s, 2 s, 4 s ... up to 5 min (+ up to 20 % jitter), never within a second of the last write", () => {
    const delayAfter = (attempts: number, random = 0) =>
      delayBeforeWrite({ ...EMPTY_STATE, attempts, publishedAt: T0 - 60_000 }, T0, random);
    expect([1, 2, 3, 4, 10, 20].map((a) => delayAfter(a))).toEqual([1_000, 2_000, 4_000, 8_000, 300_000, 300_000]);
    expect(delayAfter(2, 0.999)).toBeLessThanOrEqual(2_400);
    expect(delayBeforeWrite({ ...EMPTY_STATE, publishedAt: T0 - 300 }, T0, 0)).toBe(700);
  });
});

describe("publication through a lagging, failing, rate-limited KV", () => {
  it("after any sequence of admin writes KV converges to the newest version, and never goes back anywhere", async () => {
    quiet();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ advanceMs: fc.integer({ min: 0, max: 1_500 }), kvFails: fc.boolean() }), {
          minLength: 1,
          maxLength: 6,
        }),
        async (steps) => {
          const clock = new ManualClock(T0);
          const kv = new LaggingKV(clock);
          const id = uid("conv");
          const name = kvKeys.part(id);
          const restore = await rebindPublisher(name, { kv: kv.at(0) });
          const writer = testWorker({ clock, env: { ...env, SNAPSHOTS: kv.at(0) } });
          const locations = [800, 3_000, 30_000].map((lag) => ({
            w: testWorker({ clock, env: { ...env, SNAPSHOTS: kv.at(lag) } }),
            seen: [] as number[][],
          }));
          const look = async () => {
            for (const l of locations) {
              const res = await l.w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso" } });
              expect(res.status).toBe(200);
              l.seen.push(versionOf(res.json.version));
            }
          };
          await createCustomer(writer, { id, subscriptions: [{ planId: "free" }] });
          const subs: string[] = [];
          for (const step of steps) {
            clock.advance(step.advanceMs);
            kv.failWrites = step.kvFails ? 1 : 0;
            await toggleAddon(writer, id, subs);
            await look();
          }
          kv.failWrites = 0;
          await drain(name, clock);
          const { rev, published_rev } = await d1Rev(id);
          // KV took strictly growing revisions only, ending with the newest; D1 knows KV has it.
          const written = revsWritten(kv, id) as number[];
          for (let i = 1; i < written.length; i++) expect(written[i]).toBeGreaterThan(written[i - 1]!);
          expect(written.at(-1)).toBe(rev);
          expect(published_rev).toBe(rev);
          // Every location, once its lag has passed, answers the newest, and none ever answered an older
          // version after a newer one.
          clock.advance(31_000);
          await look();
          for (const l of locations) {
            expect(l.seen.at(-1)![0]).toBe(rev);
            for (let i = 1; i < l.seen.length; i++)
              expect(compareVersions(l.seen[i]!, l.seen[i - 1]!)).toBeGreaterThanOrEqual(0);
          }
          await restore();
        },
      ),
      { numRuns: 8 },
    );
  }, 60_000); // eight runs of a dozen admin writes each: seconds on a quiet machine, more on a loaded one

  it("a failed publication is retried by the publisher until KV has it, with no further write", async () => {
    quiet();
    const { clock, kv, id, name, restore, w } = await onLaggingKV("retry", "free");
    kv.failWrites = Number.POSITIVE_INFINITY; // KV refuses every write for now
    clock.advance(5_000);
    const write = await toggleAddon(w, id, []);
    expect(write.version).toMatch(/^2\./); // the write is committed and answers its version
    expect(revsWritten(kv, id)).toEqual([1]);
    const pending = await publisherStub(name).inspect();
    expect(pending).toMatchObject({ published: [1, expect.any(Number)], attempts: 1 });
    expect(pending.pending?.version[0]).toBe(2);
    // Still failing: the alarm tries again and backs off.
    clock.advance(1_001);
    expect(await runDurableObjectAlarm(publisherStub(name))).toBe(true);
    expect((await publisherStub(name).inspect()).attempts).toBe(2);
    expect((await d1Rev(id)).published_rev).toBe(1);
    // KV recovers: the next alarm lands it, and D1 records it.
    kv.failWrites = 0;
    clock.advance(2_001);
    expect(await runDurableObjectAlarm(publisherStub(name))).toBe(true);
    expect(revsWritten(kv, id)).toEqual([1, 2]);
    expect(await publisherStub(name).inspect()).toMatchObject({ pending: null, published: [2, expect.any(Number)] });
    expect(await d1Rev(id)).toEqual({ rev: 2, published_rev: 2 });
    await restore();
  });

  it("a 429 (a second write of the key within a second) is retried a second later, coalesced with what came meanwhile", async () => {
    quiet();
    const { clock, kv, id, name, restore, w } = await onLaggingKV("rate", "free");
    const subs: string[] = [];
    await toggleAddon(w, id, subs); // rev 2, within the same second: 429, pending
    await toggleAddon(w, id, subs); // rev 3, still within it: replaces the pending rev 2
    expect(kv.refused.map(([, why]) => why)).toEqual(["429", "429"]);
    expect(revsWritten(kv, id)).toEqual([1]);
    await drain(name, clock);
    expect(revsWritten(kv, id)).toEqual([1, 3]); // rev 2 never lands: it was superseded before KV took it
    await restore();
  });

  it("two compiles raced on purpose: the one that read D1 earlier never lands last", async () => {
    const id = uid("race");
    await createCustomer(setup, { id, subscriptions: [{ planId: "free" }] });
    // Writer A's D1 answers its part read at once but returns it only when released: its compile read
    // revision 2, and reaches the publisher after writer B's compile of revision 3.
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let reads = 0;
    const sqlOf = new WeakMap<D1PreparedStatement, string>();
    const DB = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare")
          return (sql: string) => {
            const stmt = target.prepare(sql);
            const bind = stmt.bind.bind(stmt);
            return Object.assign(stmt, {
              bind: (...v: unknown[]) => {
                const bound = bind(...v);
                sqlOf.set(bound, sql);
                return bound;
              },
            });
          };
        if (prop === "batch")
          return async (statements: D1PreparedStatement[]) => {
            const results = await target.batch(statements);
            if (statements.some((s) => sqlOf.get(s)?.includes("FROM subscriptions WHERE customer_id IN")) && !reads++)
              await held;
            return results;
          };
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const a = testWorker({ env: { ...env, DB } });
    const b = testWorker();
    const writeA = a.call("POST", "/admin/v1/subscriptions", {
      key: BOOTSTRAP,
      body: { customerId: id, planId: "sso-addon" },
    });
    while (reads === 0) await new Promise((r) => setTimeout(r, 1)); // A has read revision 2
    const writeB = await b.call("POST", "/admin/v1/subscriptions", {
      key: BOOTSTRAP,
      body: { customerId: id, planId: "extra-calls" },
    });
    expect(writeB.json.version).toMatch(/^3\./);
    release();
    expect((await writeA).status).toBe(201);
    const part = await env.SNAPSHOTS.get<{ rev: number }>(kvKeys.part(id), "json");
    expect(part?.rev).toBe(3);
    expect((await publisherStub(kvKeys.part(id)).inspect()).published?.[0]).toBe(3);
  });

  it("a write whose publication never reached the publisher is republished by the cron", async () => {
    quiet();
    const id = uid("lost");
    await createCustomer(setup, { id, subscriptions: [{ planId: "free" }] });
    // The isolate is lost between the D1 commit and the publisher call: nothing reaches the object.
    const unreachable = {
      idFromName: (n: string) => env.PUBLISHER.idFromName(n),
      get: () => ({
        publish: async () => {
          throw new Error("injected: the isolate went away");
        },
      }),
    } as unknown as typeof env.PUBLISHER;
    const lost = testWorker({ env: { ...env, PUBLISHER: unreachable } });
    const res = await lost.call("POST", "/admin/v1/subscriptions", {
      key: BOOTSTRAP,
      body: { customerId: id, planId: "sso-addon" },
    });
    expect(res.status).toBe(201);
    expect((await env.SNAPSHOTS.get<{ rev: number }>(kvKeys.part(id), "json"))?.rev).toBe(1);
    expect(await d1Rev(id)).toEqual({ rev: 2, published_rev: 1 });
    // A write younger than a minute is left to its own request...
    expect((await repairPublications(env, T0 + 30_000)).parts).toBe(0);
    // ...an older one is republished from D1.
    const report = await repairPublications(env, T0 + 61_000);
    expect(report.parts).toBeGreaterThanOrEqual(1);
    expect(report.failed).toBe(0);
    expect((await env.SNAPSHOTS.get<{ rev: number }>(kvKeys.part(id), "json"))?.rev).toBe(2);
    expect(await d1Rev(id)).toEqual({ rev: 2, published_rev: 2 });
    // Nothing is left for the next run.
    const again = await env.DB.prepare("SELECT COUNT(*) AS n FROM customers WHERE id = ?1 AND published_rev < rev")
      .bind(id)
      .first<number>("n");
    expect(again).toBe(0);
  });

  it("parts expire in KV; an expired part reads through D1 and is published again", async () => {
    const id = uid("ttl");
    await createCustomer(setup, { id, subscriptions: [{ planId: "pro" }] });
    const listed = await env.SNAPSHOTS.list({ prefix: kvKeys.part(id) });
    const expiration = listed.keys[0]?.expiration;
    expect(expiration).toBeDefined();
    const ttl = expiration! - Date.now() / 1000;
    expect(ttl).toBeGreaterThan(2 * 86_400 - 120);
    expect(ttl).toBeLessThanOrEqual(2 * 86_400 + 1);
    // Expired (KV drops the key): a new isolate reads through D1, answers, and publishes it back.
    await env.SNAPSHOTS.delete(kvKeys.part(id));
    const later = testWorker({ clock: new ManualClock(T0 + 2 * DAY_MS) });
    const res = await later.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso", role: "admin" } });
    expect(res.json).toMatchObject({ allowed: true, version: expect.stringMatching(/^1\./) });
    expect((await env.SNAPSHOTS.get<{ rev: number }>(kvKeys.part(id), "json"))?.rev).toBe(1);
  });

  it("a part read after half its expiry is refreshed from D1 by its publisher, once a minute per isolate", async () => {
    const { clock, kv, id, name, restore } = await onLaggingKV("refresh", "pro");
    // A location 30 s behind: it keeps seeing the old copy for a while after the refresh.
    const reader = testWorker({ clock, env: { ...env, SNAPSHOTS: kv.at(30_000) } });
    const check = () => reader.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso" } });
    clock.advance(DAY_MS - 10_000);
    await check();
    expect(kv.values(name)).toHaveLength(1); // younger than half its TTL (2 days): nothing to do
    clock.advance(10_001); // older now, and the isolate's own copy has expired
    await check();
    expect(kv.values(name)).toHaveLength(2); // recompiled and republished, with a new expiry
    expect(kv.log.get(name)?.at(-1)?.metadata).toMatchObject({ publishedAt: clock.now() });
    // The location still shows the old copy (30 s behind): this isolate does not ask again within a minute.
    clock.advance(10_000);
    await check();
    expect(kv.values(name)).toHaveLength(2);
    await restore();
  });

  it("a deleted customer's part leaves KV, and a publication read before the delete cannot bring it back", async () => {
    const id = uid("gone");
    await createCustomer(setup, { id });
    const stale = JSON.parse((await env.SNAPSHOTS.get(kvKeys.part(id)))!);
    expect((await setup.call("DELETE", `/admin/v1/customers/${id}`, { key: BOOTSTRAP })).status).toBe(200);
    expect(await env.SNAPSHOTS.get(kvKeys.part(id))).toBeNull();
    const late = await publisherStub(kvKeys.part(id)).publish(
      kvKeys.part(id),
      { version: [stale.rev, stale.catalogRev], compiledAt: stale.compiledAt, puts: [] },
      T0,
    );
    expect(late.state).toBe("superseded");
    // Created again under the same id: its revisions start at 1 and publish.
    const again = testWorker({ clock: new ManualClock(T0 + 1_000) });
    await createCustomer(again, { id, subscriptions: [{ planId: "free" }] });
    expect(await env.SNAPSHOTS.get<{ rev: number; compiledAt: number }>(kvKeys.part(id), "json")).toMatchObject({
      rev: 1,
      compiledAt: T0 + 1_000,
    });
  });

  it("two catalog writes within a second: the pointer ends at the newer revision, never the older", async () => {
    quiet();
    const clock = new ManualClock(T0);
    const kv = new LaggingKV(clock);
    const restore = await rebindPublisher("catalog", { kv: kv.at(0) });
    const w = testWorker({ clock });
    const put = (enabled: boolean) =>
      w.call("PUT", "/admin/v1/plans/sso-addon/entitlements/beta_ai", { key: BOOTSTRAP, body: enabled });
    const first = await put(true);
    const second = await put(false);
    expect(second.json.catalogRev).toBe(first.json.catalogRev + 1);
    expect(kv.refused).toEqual([[kvKeys.catalogHead, "429"]]);
    await drain("catalog", clock);
    const heads = kv.values(kvKeys.catalogHead).map((v) => JSON.parse(v!).rev);
    expect(heads).toEqual([first.json.catalogRev, second.json.catalogRev]);
    expect(await env.SNAPSHOTS.get(kvKeys.catalogHead, "json")).toEqual({ rev: second.json.catalogRev });
    await restore();
  });
});
