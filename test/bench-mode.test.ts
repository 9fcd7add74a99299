// The benchmark's instrumented mode (unauthenticated /__bench routes) exists only in development.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { testWorker } from "./helpers";

describe("bench mode", () => {
  it("is served in development when BENCH_INSTRUMENT=on, and never in a deployed environment", async () => {
    const dev = testWorker({ env: { ...env, BENCH_INSTRUMENT: "on", ENVIRONMENT: "development" } as Cloudflare.Env });
    expect((await dev.call("GET", "/__bench/stats")).status).toBe(200);
    for (const ENVIRONMENT of ["staging", "production"]) {
      const deployed = testWorker({ env: { ...env, BENCH_INSTRUMENT: "on", ENVIRONMENT } as Cloudflare.Env });
      const res = await deployed.call("GET", "/__bench/stats");
      expect(res.status).toBe(404);
      expect(res.json.type).toBe("urn:tollgate:problem:not-found");
    }
  });
});
