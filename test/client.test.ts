// The typed client against the running worker: its fetch is the test worker's, wrapped to count
// calls and to inject network failures, 5xx and 429. Time and waits are injected: nothing sleeps.
// The built package ("tollgate/client" from dist/client) is tested on plain Node: test/node/.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createLocalJWKSet, jwtVerify } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type Decision as ClientDecision,
  TollgateClient,
  type TollgateClientOptions,
  TollgateError,
} from "../src/client";
import type { Decision as ServerDecision } from "../src/domain/types";
import { createCustomer, createKey, iso, loadTestCatalog, T0, testWorker, uid } from "./helpers";

// The client's wire types are hand-written (no server imports at runtime); they must accept what the server sends.
const _compatible: ClientDecision = {} as ServerDecision;
void _compatible;

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "usage", "sign"]);
});

type Fault = "network" | "lost-response" | { status: number; retryAfter?: string };

/** A client whose fetch reaches the worker; `faults` are applied to the next attempts, in order. */
function harness(faults: Fault[] = [], opts: Partial<TollgateClientOptions> = {}) {
  const requests: { method: string; path: string; body: any }[] = [];
  const sleeps: number[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    requests.push({
      method: req.method,
      path: new URL(req.url).pathname + new URL(req.url).search,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    });
    const fault = faults.shift();
    if (fault === "network") throw new TypeError("fetch failed");
    if (fault && fault !== "lost-response")
      return new Response(JSON.stringify({ type: "urn:test", status: fault.status, detail: "injected" }), {
        status: fault.status,
        headers: fault.retryAfter ? { "Retry-After": fault.retryAfter } : {},
      });
    const ctx = createExecutionContext();
    const res = await w.worker.fetch(req, env, ctx);
    await waitOnExecutionContext(ctx);
    if (fault === "lost-response") throw new TypeError("connection reset"); // the server did the work; the answer is lost
    return res;
  };
  const client = new TollgateClient({
    baseUrl: "https://tollgate.test/",
    apiKey: key,
    fetch,
    now: () => w.clock.now(),
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0.5,
    ...opts,
  });
  return { client, requests, sleeps };
}

describe("check cache", () => {
  it("reuses an answer while it is valid, per customer, feature, role and country", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const { client, requests } = harness();
    const first = await client.check({ customerId: c.id, feature: "sso", role: "admin" });
    expect(first).toMatchObject({ allowed: true, reason: "ok", evaluatedAt: iso(T0) });
    expect(await client.check({ customerId: c.id, feature: "sso", role: "admin" })).toEqual(first);
    expect(requests).toHaveLength(1);
    expect((await client.check({ customerId: c.id, feature: "sso", role: "viewer" })).reason).toBe("role_denied");
    await client.check({ customerId: c.id, feature: "eu_hosting", country: "de" });
    await client.check({ customerId: c.id, feature: "eu_hosting", country: "DE" });
    expect(requests).toHaveLength(3);
    // quantity, minVersion and assertions always go to Tollgate.
    await client.check({ customerId: c.id, feature: "sso", role: "admin", minVersion: 1 });
    expect(requests).toHaveLength(4);
  });

  it("expires at min(expiresAt, evaluatedAt + cacheMaxTtlMs)", async () => {
    const trialEnd = T0 + 10_000;
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) }],
    });
    const { client, requests } = harness([], { cacheMaxTtlMs: 30_000 });
    expect((await client.check({ customerId: c.id, feature: "audit_export" })).allowed).toBe(true);
    w.clock.set(trialEnd - 1);
    expect((await client.check({ customerId: c.id, feature: "audit_export" })).allowed).toBe(true);
    expect(requests).toHaveLength(1);
    w.clock.set(trialEnd);
    expect(await client.check({ customerId: c.id, feature: "audit_export" })).toMatchObject({
      allowed: false,
      reason: "trial_expired",
    });
    expect(requests).toHaveLength(2);
    // Without an expiry, the max TTL bounds it.
    await client.check({ customerId: c.id, feature: "max_file_size_mb" });
    w.clock.advance(29_999);
    await client.check({ customerId: c.id, feature: "max_file_size_mb" });
    expect(requests).toHaveLength(3);
    w.clock.advance(1);
    await client.check({ customerId: c.id, feature: "max_file_size_mb" });
    expect(requests).toHaveLength(4);
    w.clock.set(T0);
  });

  it("never caches metered features, unknown customers or features", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const { client, requests } = harness();
    await client.check({ customerId: c.id, feature: "api_calls" });
    await client.check({ customerId: c.id, feature: "api_calls" });
    await client.check({ customerId: uid("nobody"), feature: "sso" });
    await client.check({ customerId: c.id, feature: "teleportation" });
    await client.check({ customerId: c.id, feature: "teleportation" });
    expect(requests).toHaveLength(5);
  });

  it("entitlements() answers in one call and fills the cache for later checks", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const { client, requests } = harness();
    const all = await client.entitlements(c.id, { role: "admin", country: "FR" });
    expect(requests[0]!.path).toBe(`/v1/entitlements/${c.id}?role=admin&country=FR`);
    expect(all.features.sso).toMatchObject({ allowed: true });
    expect(await client.check({ customerId: c.id, feature: "sso", role: "admin", country: "fr" })).toMatchObject({
      allowed: true,
      customerId: c.id,
      feature: "sso",
      snapshotVersion: c.snapshotVersion,
    });
    expect(await client.check({ customerId: c.id, feature: "theme", role: "admin", country: "FR" })).toMatchObject({
      value: { name: "pro", dark: true },
    });
    expect(requests).toHaveLength(1);
    await client.check({ customerId: c.id, feature: "api_calls", role: "admin", country: "FR" }); // metered: asked
    expect(requests).toHaveLength(2);
    client.clearCache(c.id);
    await client.check({ customerId: c.id, feature: "sso", role: "admin", country: "FR" });
    expect(requests).toHaveLength(3);
  });
});

describe("retries", () => {
  it("retries network errors and 5xx with exponential backoff, then succeeds", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const { client, requests, sleeps } = harness(["network", { status: 503 }]);
    expect((await client.check({ customerId: c.id, feature: "audit_export" })).allowed).toBe(true);
    expect(requests).toHaveLength(3);
    expect(sleeps).toEqual([75, 150]); // 100 then 200 ms ceilings, "equal jitter" at random() = 0.5
  });

  it("honours Retry-After on 429, and gives up when it is longer than it will wait", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const ok = harness([{ status: 429, retryAfter: "2" }]);
    expect((await ok.client.token({ customerId: c.id })).kid).toBe("test-ed25519-1");
    expect(ok.sleeps).toEqual([2000]);
    const tooLong = harness([{ status: 429, retryAfter: "120" }]);
    const err = await tooLong.client.check({ customerId: c.id, feature: "sso" }).catch((e) => e);
    expect(err).toBeInstanceOf(TollgateError);
    expect(err.status).toBe(429);
    expect(tooLong.requests).toHaveLength(1);
  });

  it("does not retry client errors, and stops after the configured retries", async () => {
    const { client, requests } = harness();
    const err = await client.check({ customerId: "has space", feature: "sso" }).catch((e) => e);
    expect(err).toMatchObject({
      name: "TollgateError",
      status: 400,
      problem: { type: "urn:tollgate:problem:validation" },
    });
    expect(requests).toHaveLength(1);
    const down = harness([{ status: 502 }, { status: 502 }, { status: 502 }], { retries: 2 });
    await expect(down.client.check({ customerId: "x", feature: "sso" })).rejects.toMatchObject({ status: 502 });
    expect(down.requests).toHaveLength(3);
    const offline = harness(["network", "network"], { retries: 1 });
    await expect(offline.client.check({ customerId: "x", feature: "sso" })).rejects.toMatchObject({
      status: 0,
      message: "Tollgate could not be reached",
    });
  });
});

describe("usage and tokens against the running worker", () => {
  it("consume retries with the SAME idempotency key: a lost response is replayed, not counted twice", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const { client, requests } = harness(["lost-response"]);
    const answer = await client.consume({ customerId: c.id, feature: "api_calls", amount: 5 });
    expect(requests).toHaveLength(2);
    expect(requests[0]!.body.idempotencyKey).toBe(answer.idempotencyKey);
    expect(requests[1]!.body).toEqual(requests[0]!.body);
    expect(requests[0]!.body).toMatchObject({ mode: "consume", amount: 5 });
    expect(answer).toMatchObject({ allowed: true, used: 5, remaining: 95, replayed: true });
    const usage = await w.call("GET", `/v1/usage/${c.id}?feature=api_calls`, { key });
    expect(usage.json.features[0]).toMatchObject({ used: 5 });
  });

  it("consume keeps a caller's key; record counts usage that already happened, even past the limit", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const { client, requests } = harness();
    const k = uid("idem");
    expect(
      await client.consume({ customerId: c.id, feature: "api_calls", amount: 60, idempotencyKey: k }),
    ).toMatchObject({ allowed: true, used: 60, idempotencyKey: k });
    expect(
      await client.consume({ customerId: c.id, feature: "api_calls", amount: 60, idempotencyKey: k }),
    ).toMatchObject({ used: 60, replayed: true });
    expect(await client.consume({ customerId: c.id, feature: "api_calls", amount: 60 })).toMatchObject({
      allowed: false,
      reason: "limit_reached",
      used: 60,
    });
    const recorded = await client.record({ customerId: c.id, feature: "api_calls", amount: 60 });
    expect(recorded).toMatchObject({ used: 120, overage: 20 });
    expect(requests.at(-1)!.body).toMatchObject({ mode: "record", idempotencyKey: recorded.idempotencyKey });
  });

  it("token() returns a token that verifies offline with the JWKS", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const { client } = harness();
    const t = await client.token({ customerId: c.id, ttlSeconds: 300, audience: "desktop" });
    const jwks = (await w.call("GET", "/.well-known/jwks.json")).json;
    const { payload } = await jwtVerify(t.token, createLocalJWKSet(jwks), {
      audience: "desktop",
      currentDate: new Date(T0),
    });
    expect(payload).toMatchObject({ sub: c.id, exp: T0 / 1000 + 300 });
  });
});
