// The read side under load and faults (issue 13): minVersion loads coalesced per customer, a D1 failure
// on that path answered from the newest copy that satisfies it, the per-isolate read-through budget on
// part compiles from D1, and the catalog's compile from D1 at most once per TTL.
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../src/clock";
import { kvKeys } from "../src/store/kv";
import { createCustomer, createKey, loadTestCatalog, upgradeElsewhere } from "./helpers/admin";
import { compileCountingEnv } from "./helpers/counting";
import { failingKV, quiet } from "./helpers/faults";
import { publisherStub } from "./helpers/publishers";
import { T0 } from "./helpers/time";
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

/** `n` Pro customers that exist only in D1 (nothing in KV yet). */
async function d1OnlyCustomers(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => uid("storm"));
  for (let i = 0; i < ids.length; i += 50) {
    await env.DB.batch(
      ids
        .slice(i, i + 50)
        .flatMap((id) => [
          env.DB.prepare("INSERT INTO customers (id, rev, created_at, updated_at) VALUES (?1, 1, ?2, ?2)").bind(id, T0),
          env.DB.prepare(
            "INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) VALUES (?1, ?2, 'pro', 'active', ?3, ?3, ?3)",
          ).bind(uid("sub"), id, T0),
        ]),
    );
  }
  return ids;
}

describe("minVersion loads are coalesced per customer", () => {
  it("1,000 concurrent checks with minVersion through one isolate cause a handful of D1 part compiles", async () => {
    const w = testWorker();
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const old = await env.SNAPSHOTS.get(kvKeys.part(c.id), "text");
    const newer = await upgradeElsewhere(c.id);
    // KV here still has the old part (a location KV has not reached yet): every check must read through.
    await env.SNAPSHOTS.put(kvKeys.part(c.id), old!);
    const { counter, env: counted } = compileCountingEnv();
    const answers = await Promise.all(
      Array.from({ length: 1_000 }, () =>
        w.call("POST", "/v1/check", {
          key,
          body: { customerId: c.id, feature: "sso", minVersion: newer.version },
          env: counted,
        }),
      ),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(answers.map((a) => `${a.json.allowed} ${a.json.version} ${a.json.degraded}`))).toEqual(
      new Set([`true ${newer.version} undefined`]),
    );
    expect(counter.parts).toBeLessThanOrEqual(3);
    // And cached: the next one touches no binding.
    await w.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso", minVersion: newer.version } });
    expect(counter.parts).toBeLessThanOrEqual(3);
  }, 60_000); // 1,000 requests through one isolate: seconds on a loaded 2-core machine

  it("a load that started before a check arrived never answers it with a 409; one that started after does", async () => {
    const w = testWorker();
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const newer = await upgradeElsewhere(c.id);
    const [current, future] = await Promise.all([
      w.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso", minVersion: newer.version } }),
      w.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso", minVersion: `${99}.0` } }),
    ]);
    expect(current.json).toMatchObject({ allowed: true, version: newer.version });
    expect(future.status).toBe(409);
    expect(future.json.available).toBe(newer.version);
  });
});

describe("a D1 failure on the minVersion path", () => {
  it("answers from the newest copy that satisfies minVersion: the isolate's past its TTL, or KV's", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const old = await env.SNAPSHOTS.get(kvKeys.part(c.id), "text");
    const { counter, env: counted } = compileCountingEnv();
    counter.failing = true;
    // The isolate holds the part its own write made; KV lags behind with an older one; D1 fails.
    const upgrade = await w.call("POST", "/admin/v1/grants", {
      key: BOOTSTRAP,
      body: { customerId: c.id, feature: "beta_ai", spec: { enabled: false }, reason: "Read-side test (issue 13)" },
    });
    expect(upgrade.status).toBe(201);
    const version = upgrade.json.version as string;
    await env.SNAPSHOTS.put(kvKeys.part(c.id), old!);
    clock.advance(60_000);
    const fromIsolate = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: c.id, feature: "beta_ai", minVersion: version },
      env: counted,
    });
    expect(fromIsolate.status).toBe(200);
    // KV at this location is behind the part this isolate holds: the isolate never goes back to it, and
    // its own copy satisfies minVersion, so D1 is not even asked (the answer is as fresh as KV's would be).
    expect(fromIsolate.json).toMatchObject({ version });
    expect(fromIsolate.json.degraded).toBeUndefined();
    expect(fromIsolate.json.failurePolicy).toBeUndefined();
    expect(counter.parts).toBe(0);
    // Asked for a version beyond it, with D1 failing: the isolate's copy answers, degraded.
    const beyond = `${Number(version.split(".")[0]) + 1}.${version.split(".")[1]}`;
    const degraded = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: c.id, feature: "beta_ai", minVersion: beyond },
      env: counted,
    });
    expect(degraded.status).toBe(200);
    expect(degraded.json).toMatchObject({ degraded: true, degradedReason: "stores_unavailable" });
    // A fresh isolate holds nothing; KV's copy satisfies the older version and answers it, not degraded,
    // while a check that waits for a newer one, with nothing to satisfy it, gets the failure policy.
    const fresh = testWorker({ clock });
    await fresh.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso" } }); // warms the key and catalog
    await env.SNAPSHOTS.put(kvKeys.part(c.id), old!);
    fresh.services().snapshots.invalidate(c.id);
    const [older, newer] = await Promise.all([
      fresh.call("POST", "/v1/check", {
        key,
        body: { customerId: c.id, feature: "audit_export", minVersion: `${c.version}` },
        env: counted,
      }),
      fresh.call("POST", "/v1/check", {
        key,
        body: { customerId: c.id, feature: "audit_export", minVersion: version },
        env: counted,
      }),
    ]);
    expect(older.json).toMatchObject({ allowed: true, version: c.version });
    expect(older.json.degraded).toBeUndefined();
    expect(newer.json).toMatchObject({
      allowed: true,
      degraded: true,
      degradedReason: "stores_unavailable",
      failurePolicy: "open",
    });
  });
});

describe("read-through to D1 is bounded per isolate", () => {
  it("KV failing: 10,000 concurrent misses over 1,000 customers compile at most the burst from D1, and every answer is a decision", {
    timeout: 120_000,
  }, async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const ids = await d1OnlyCustomers(1_000);
    // 50 of them checked once while all is well: the isolate holds their parts (they cost 50 compiles).
    // The last 50, so that the storm, which goes through the customers in order, spends the budget first.
    const { counter, env: counted } = compileCountingEnv();
    for (const id of ids.slice(-50))
      expect(
        (
          await w.call("POST", "/v1/check", {
            key,
            body: { customerId: id, feature: "sso", role: "admin" },
            env: counted,
          })
        ).json.allowed,
      ).toBe(true);
    expect(counter.parts).toBe(50);
    clock.advance(6_000); // the copies expire (5 s); the bucket is full again (100)
    counter.parts = 0;
    const kvDown = { ...counted, SNAPSHOTS: failingKV } as Cloudflare.Env;
    quiet(); // 10,000 "kv read failed" lines would cost more than the checks
    const answers = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) =>
        w.call("POST", "/v1/check", {
          key,
          body: { customerId: ids[i % ids.length], feature: "sso", role: "admin" },
          env: kvDown,
        }),
      ),
    );
    // The clock did not move: burst + rate x 0.
    expect(counter.parts).toBe(100);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const kinds = new Map<string, number>();
    for (const a of answers) {
      const k = `${a.json.allowed} ${a.json.degradedReason ?? "-"} ${a.json.failurePolicy ?? "-"}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    const limited = kinds.get("false read_through_limited closed") ?? 0;
    const stale = kinds.get("true read_through_limited -") ?? 0;
    const fresh = kinds.get("true - -") ?? 0;
    expect(limited + stale + fresh).toBe(10_000);
    expect(fresh).toBe(100 * 10); // the 100 customers compiled, each checked 10 times
    expect(limited).toBeGreaterThan(0);
    expect(stale).toBeGreaterThan(0);
    for (const a of answers) if (a.json.degradedReason) expect(a.json.degraded).toBe(true);
    // A write is never limited: it compiles and publishes, and this isolate answers it at once.
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const after = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: c.id, feature: "sso", role: "admin" },
      env: kvDown,
    });
    expect(after.json).toMatchObject({ allowed: true, version: c.version });
    expect(after.json.degraded).toBeUndefined();
    // The bucket refills at READTHROUGH_PER_SECOND (50): one second later, 50 more compiles.
    counter.parts = 0;
    clock.advance(1_000);
    await Promise.all(
      ids.map((id) => w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso" }, env: kvDown })),
    );
    expect(counter.parts).toBe(50);
  });
});

describe("the catalog's read-through", () => {
  it("with KV failing and a catalog held, compiles from D1 at most once per TTL", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    await w.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso" } });
    const held = w.services().snapshots.catalogs.held!.rev;
    const { counter, env: counted } = compileCountingEnv();
    const kvDown = { ...counted, SNAPSHOTS: failingKV } as Cloudflare.Env;
    // minVersion asks for a catalog revision that does not exist: concurrent and one after another.
    const ask = () =>
      w.call("POST", "/v1/check", {
        key,
        body: { customerId: c.id, feature: "sso", minVersion: `0.${held + 5}` },
        env: kvDown,
      });
    const burst = await Promise.all(Array.from({ length: 200 }, ask));
    for (let i = 0; i < 20; i++) burst.push(await ask());
    expect(new Set(burst.map((a) => a.status))).toEqual(new Set([409]));
    expect(counter.catalogs).toBe(1);
    // The same checks with D1 failing too: D1 is tried once per TTL at most, and the failure policy answers.
    clock.advance(5_000);
    counter.failing = true;
    for (let i = 0; i < 20; i++) {
      const res = await ask();
      expect(res.status).toBe(200); // the failure policy: no catalog of that revision can be had
      clock.advance(100);
    }
    expect(counter.catalogs).toBe(2);
    counter.failing = false;
    clock.advance(5_000);
    expect((await ask()).status).toBe(409);
    expect(counter.catalogs).toBe(3);
  });
});

describe("D1 read replicas (Sessions API) on the read-through", () => {
  /**
   * D1 whose read replica lags: while `lagging`, a session's part reads answer what they answered when
   * `lagging` was switched on (recorded from the real D1, per customer); a customer the replica has not
   * seen yet does not exist there. Plain queries (the primary) always reach the real D1.
   */
  function laggingReplica() {
    const state = { lagging: false, replicaReads: 0, primaryReads: 0 };
    const seen = new Map<string, D1Result[]>();
    const idsOf = new WeakMap<D1PreparedStatement, unknown>();
    const isPartRead = (statements: D1PreparedStatement[]) => statements.some((s) => idsOf.has(s));
    const tracked = (target: D1Database) => (sql: string) => {
      const stmt = target.prepare(sql);
      if (!sql.includes("FROM customers WHERE id IN")) return stmt;
      const bind = stmt.bind.bind(stmt);
      return Object.assign(stmt, {
        bind: (...v: unknown[]) => {
          const bound = bind(...v);
          idsOf.set(bound, v[0]);
          return bound;
        },
      });
    };
    const primary = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") return tracked(target);
        if (prop === "batch")
          return async (statements: D1PreparedStatement[]) => {
            if (isPartRead(statements)) state.primaryReads++;
            return target.batch(statements);
          };
        if (prop === "withSession")
          return () => ({
            prepare: tracked(target),
            batch: async (statements: D1PreparedStatement[]) => {
              const key = String(statements.map((s) => idsOf.get(s)).find((v) => v !== undefined));
              if (!isPartRead(statements)) return target.batch(statements);
              state.replicaReads++;
              const results = await target.batch(statements);
              if (!state.lagging) {
                seen.set(key, results);
                return results;
              }
              // What the replica had: the recorded answer, or (never seen) no customer at all.
              return seen.get(key) ?? results.map((r, i) => (i === 0 ? r : { ...r, results: [] }));
            },
          });
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    return { state, env: { ...env, DB: primary } as Cloudflare.Env };
  }

  it("a KV miss reads a replica; a replica behind minVersion, or without the customer yet, is followed by the primary", async () => {
    const replica = laggingReplica();
    const c = await createCustomer(setup, { id: uid(), subscriptions: [{ planId: "free" }] });
    const miss = () => env.SNAPSHOTS.delete(kvKeys.part(c.id));
    const check = (minVersion?: string) =>
      testWorker().call("POST", "/v1/check", {
        key,
        body: { customerId: c.id, feature: "sso", role: "admin", ...(minVersion ? { minVersion } : {}) },
        env: replica.env,
      });
    await miss();
    expect((await check()).json).toMatchObject({ allowed: false, version: c.version });
    expect(replica.state).toMatchObject({ replicaReads: 1, primaryReads: 0 });
    // The replica falls behind; the primary gets an SSO add-on (revision 2).
    replica.state.lagging = true;
    const upgraded = await upgradeElsewhere(c.id);
    await miss();
    // Without minVersion: the replica's answer is as good as a lagging KV location's.
    expect((await check()).json).toMatchObject({ allowed: false, version: c.version });
    expect(replica.state).toMatchObject({ replicaReads: 2, primaryReads: 0 });
    // Read-your-writes: the replica is behind the version asked for, so the primary answers.
    await miss();
    expect((await check(upgraded.version)).json).toMatchObject({ allowed: true, version: upgraded.version });
    expect(replica.state).toMatchObject({ replicaReads: 3, primaryReads: 1 });
    // The replica's older part never reached KV: its publisher holds revision 2 and dropped it (KV stays
    // without the key here: a miss within a minute of a publication is written again only after that minute).
    expect((await publisherStub(kvKeys.part(c.id)).inspect()).published?.[0]).toBe(2);
    expect(await env.SNAPSHOTS.get(kvKeys.part(c.id))).toBeNull();

    // A customer just created, not yet on the replica: the primary is asked before "unknown" is believed.
    const fresh = await createCustomer(setup, { id: uid(), subscriptions: [{ planId: "pro" }] });
    await env.SNAPSHOTS.delete(kvKeys.part(fresh.id));
    const res = await testWorker().call("POST", "/v1/check", {
      key,
      body: { customerId: fresh.id, feature: "sso", role: "admin" },
      env: replica.env,
    });
    expect(res.json).toMatchObject({ allowed: true, version: fresh.version });
    expect(replica.state).toMatchObject({ replicaReads: 4, primaryReads: 2 });
  });
});
