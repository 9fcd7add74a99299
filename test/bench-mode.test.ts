// The benchmark's instrumented mode (unauthenticated /__bench routes) exists only in the bench entry
// (src/bench/worker.ts, which scripts/bench bundles), and there only in development.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createBenchWorker } from "../src/bench/worker";
import { ManualClock } from "../src/clock";
import { T0, testWorker } from "./helpers";

const benchEnv = (ENVIRONMENT: string) => ({ ...env, BENCH_INSTRUMENT: "on", ENVIRONMENT }) as Cloudflare.Env;

async function benchStats(bindings: Cloudflare.Env) {
  const worker = createBenchWorker({ clock: new ManualClock(T0) });
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request("https://tollgate.test/__bench/stats"), bindings, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

describe("bench mode", () => {
  it("is served by the bench entry in development when BENCH_INSTRUMENT=on, and never in a deployed environment", async () => {
    const dev = await benchStats(benchEnv("development"));
    expect(dev.status).toBe(200);
    expect(dev.json.counts).toBeDefined();
    for (const ENVIRONMENT of ["staging", "production"]) {
      const deployed = await benchStats(benchEnv(ENVIRONMENT));
      expect(deployed.status).toBe(404);
      expect(deployed.json.type).toBe("urn:tollgate:problem:not-found");
    }
  });

  it("is not in the production entry at all, whatever the variables say", async () => {
    const res = await testWorker({ env: benchEnv("development") }).call("GET", "/__bench/stats");
    expect(res.status).toBe(404);
    expect(res.json.type).toBe("urn:tollgate:problem:not-found");
  });
});
