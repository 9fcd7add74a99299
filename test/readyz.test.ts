// GET /healthz (no bindings) and GET /readyz (KV, D1 and a Durable Object, each with its latency).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { testWorker } from "./helpers/worker";

const w = testWorker();
const fails = async () => {
  throw new Error("store down: secret internal detail");
};
const never = () => new Promise<never>(() => {});

describe("GET /healthz", () => {
  it("answers without touching a binding", async () => {
    const res = await w.call("GET", "/healthz", { env: {} as Cloudflare.Env });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true });
  });
});

describe("GET /readyz", () => {
  it("reads KV, D1 and a Durable Object and reports each with its latency", async () => {
    const res = await w.call("GET", "/readyz");
    expect(res.status).toBe(200);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(res.json).toEqual({
      ok: true,
      checks: {
        kv: { ok: true, latencyMs: expect.any(Number) },
        d1: { ok: true, latencyMs: expect.any(Number) },
        durableObject: { ok: true, latencyMs: expect.any(Number) },
      },
    });
  });

  it.each([
    ["kv", { SNAPSHOTS: { get: fails } }],
    ["d1", { DB: { prepare: () => ({ first: fails }) } }],
    ["durableObject", { METER: { idFromName: (n: string) => n, get: () => ({ ping: fails }) } }],
  ])("is 503 problem+json naming the failed store (%s), the others still reported", async (name, broken) => {
    const res = await w.call("GET", "/readyz", { env: { ...env, ...broken } as unknown as Cloudflare.Env });
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("Retry-After")).toBe("5");
    expect(res.json).toMatchObject({
      type: "urn:tollgate:problem:unavailable",
      status: 503,
      detail: `Not ready: ${name} failed.`,
    });
    expect(res.json.checks[name]).toEqual({ ok: false, latencyMs: expect.any(Number), error: "failed" });
    for (const other of ["kv", "d1", "durableObject"].filter((n) => n !== name))
      expect(res.json.checks[other].ok).toBe(true);
    // The cause is logged, never sent: /readyz needs no credentials.
    expect(res.text).not.toContain("secret internal detail");
  });

  it("reports a store that does not answer in time as a timeout", async () => {
    const res = await w.call("GET", "/readyz", {
      env: { ...env, READYZ_TIMEOUT_MS: "5", SNAPSHOTS: { get: never } } as unknown as Cloudflare.Env,
    });
    expect(res.status).toBe(503);
    expect(res.json.checks.kv).toMatchObject({ ok: false, error: "timeout" });
  });
});

describe("GET /readyz under a flood", () => {
  it("probes the stores once per 5 s per isolate; requests in between share that answer", async () => {
    const w2 = testWorker();
    let kvReads = 0;
    const counted = {
      ...env,
      SNAPSHOTS: {
        get: (...a: Parameters<KVNamespace["get"]>) => {
          kvReads++;
          return env.SNAPSHOTS.get(...a);
        },
      },
    } as unknown as Cloudflare.Env;
    for (let i = 0; i < 20; i++) expect((await w2.call("GET", "/readyz", { env: counted })).status).toBe(200);
    expect(kvReads).toBe(1);
    w2.clock.advance(5_000);
    expect((await w2.call("GET", "/readyz", { env: counted })).status).toBe(200);
    expect(kvReads).toBe(2);
  });
});
