// The snapshot path: read-through, read-your-writes (minVersion), stale-if-error and failure policies.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock";
import { kvKeys } from "../src/store/kv";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { failingKV, outage } from "./helpers/faults";
import { T0 } from "./helpers/time";
import { testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;
beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check"]);
});

describe("read-through", () => {
  it("a customer that exists only in D1 is checked at once, and its snapshot is written back to KV", async () => {
    const id = uid();
    await env.DB.batch([
      env.DB.prepare("INSERT INTO customers (id, rev, created_at, updated_at) VALUES (?1, 1, ?2, ?2)").bind(id, T0),
      env.DB.prepare(
        "INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) VALUES (?1, ?2, 'pro', 'active', ?3, ?3, ?3)",
      ).bind(uid("sub"), id, T0),
    ]);
    expect(await env.SNAPSHOTS.get(kvKeys.part(id))).toBeNull();
    expect(
      (await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "audit_export" } })).json,
    ).toMatchObject({ allowed: true, reason: "ok" });
    const stored = await env.SNAPSHOTS.get<{ customerId: string; version: number }>(kvKeys.part(id), "json");
    expect(stored).toMatchObject({ customerId: id });
  });
});

describe("read-your-writes", () => {
  it("minVersion is never answered from an older snapshot; a version that does not exist yet is a 409", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const before = await w.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso" } });
    expect(before.json).toMatchObject({ allowed: false, snapshotVersion: c.snapshotVersion });
    // Another isolate (another worker instance) applies a change: this isolate's cache still holds the old snapshot.
    const other = testWorker({ clock: w.clock });
    await env.DB.prepare(
      "INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) VALUES (?1, ?2, 'sso-addon', 'active', ?3, ?3, ?3)",
    )
      .bind(uid("sub"), c.id, T0)
      .run();
    await env.DB.prepare("UPDATE customers SET rev = rev + 1 WHERE id = ?1").bind(c.id).run();
    const newer = await other.services().snapshots.compile(env, c.id, T0);
    expect(newer!.snapshotVersion).toBe(c.snapshotVersion + 1);
    const cached = await w.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso" } });
    expect(cached.json).toMatchObject({ allowed: false, snapshotVersion: c.snapshotVersion });
    const fresh = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: c.id, feature: "sso", minVersion: newer!.snapshotVersion },
    });
    expect(fresh.json).toMatchObject({ allowed: true, snapshotVersion: newer!.snapshotVersion });
    const future = await w.call("POST", "/v1/check", {
      key,
      body: { customerId: c.id, feature: "sso", minVersion: newer!.snapshotVersion + 5 },
    });
    expect(future.status).toBe(409);
    expect(future.json.available).toBe(newer!.snapshotVersion);
  });

  it("the isolate cache expires after its TTL and then reads KV", async () => {
    const clock = new ManualClock(T0);
    const a = testWorker({ clock });
    const c = await createCustomer(a, { id: uid(), subscriptions: [{ planId: "free" }] });
    expect((await a.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso" } })).json.allowed).toBe(
      false,
    );
    const b = testWorker({ clock });
    await env.DB.prepare("UPDATE subscriptions SET plan_id = 'pro' WHERE customer_id = ?1").bind(c.id).run();
    await env.DB.prepare("UPDATE customers SET rev = rev + 1 WHERE id = ?1").bind(c.id).run();
    await b.services().snapshots.compile(env, c.id, T0);
    clock.advance(4_999);
    expect(
      (await a.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "audit_export" } })).json.allowed,
    ).toBe(false);
    clock.advance(1);
    const after = await a.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "audit_export" } });
    expect(after.json).toMatchObject({ allowed: true, snapshotVersion: c.snapshotVersion + 1, snapshotAgeMs: 5_000 });
  });
});

describe("degraded mode (KV and D1 fail)", () => {
  it("serves an expired copy still in the isolate, flagged degraded, with its age", async () => {
    const clock = new ManualClock(T0);
    const a = testWorker({ clock });
    const c = await createCustomer(a, { id: uid(), subscriptions: [{ planId: "pro" }] });
    await a.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "audit_export" } });
    clock.advance(60_000);
    const res = await a.call("POST", "/v1/check", {
      key,
      body: { customerId: c.id, feature: "audit_export" },
      env: outage,
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      allowed: true,
      reason: "ok",
      degraded: true,
      snapshotVersion: c.snapshotVersion,
      snapshotAgeMs: 60_000,
    });
  });

  it("with no copy, the feature's failure policy decides: closed by default, open where the catalog says so", async () => {
    const clock = new ManualClock(T0);
    const a = testWorker({ clock });
    // One healthy check teaches the isolate the catalog's failure policies.
    const c = await createCustomer(a, { id: uid(), subscriptions: [{ planId: "pro" }] });
    await a.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso", role: "admin" } });
    const stranger = uid("never-seen");
    const open = await a.call("POST", "/v1/check", {
      key,
      body: { customerId: stranger, feature: "audit_export" },
      env: outage,
    });
    expect(open.json).toMatchObject({ allowed: true, degraded: true, failurePolicy: "open" });
    const closed = await a.call("POST", "/v1/check", {
      key,
      body: { customerId: stranger, feature: "sso" },
      env: outage,
    });
    expect(closed.json).toMatchObject({ allowed: false, degraded: true, failurePolicy: "closed" });
    const unknownPolicy = await testWorker({ clock }).call("POST", "/v1/check", {
      key,
      body: { customerId: stranger, feature: "audit_export" },
      env: outage,
    });
    // A fresh isolate cannot even verify the API key without KV and D1: a 503 to retry, not a guess.
    expect(unknownPolicy.status).toBe(503);
    expect(unknownPolicy.headers.get("retry-after")).toBe("5");
  });

  it("when only KV fails, D1 answers and nothing is degraded", async () => {
    const a = testWorker();
    const c = await createCustomer(a, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const kvDown = { ...env, SNAPSHOTS: failingKV } as Cloudflare.Env;
    const fresh = testWorker();
    await fresh.call("POST", "/v1/check", { key, body: { customerId: c.id, feature: "sso" } }); // warms the key cache
    const res = await fresh.call("POST", "/v1/check", {
      key,
      body: { customerId: c.id, feature: "audit_export" },
      env: kvDown,
    });
    expect(res.json).toMatchObject({ allowed: true, snapshotVersion: c.snapshotVersion });
    expect(res.json.degraded).toBeUndefined();
  });
});
