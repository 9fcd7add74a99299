// Benchmark mode (BENCH_INSTRUMENT = "on", set by scripts/bench through Miniflare; never in
// wrangler.toml), served only by the bench entry (src/bench/worker.ts): the same app as production,
// over counted bindings, plus four routes that exist only in this mode:
//   POST /v1/__bench/baseline        constant JSON, no binding: the runtime's limit for a check. It is
//                                     under /v1 so it passes the same middleware as /v1/check
//                                     (request id, services, CORS, body limit, content type); it
//                                     skips auth, body parsing, the snapshot and the evaluation.
//   POST /v1/__bench/usage-baseline  one bare Durable Object RPC (BenchCustomerMeter.increment) on the
//                                     customer's meter: the limit for usage-*.
//   GET  /__bench/stats              binding counts since the last reset, and the isolate caches.
//   POST /__bench/reset              zeroes the counts.
//   ANY  /__bench/second/<path>      the same app with services of its own (its own part and catalog
//                                     caches over the same bindings): a second isolate, to measure how
//                                     soon a change made through the first reaches another.
//   ANY  /v1/__bench/analytics-{off,engine,local}/<path>   /v1/<path> with ANALYTICS_MODE set to that
//                                     mode (same services, same caches): the paired analytics scenarios.
//                                     The three pay the same URL rewrite, so their ratios measure the
//                                     analytics alone.
import { createApp } from "../app";
import { systemClock } from "../clock";
import { configOf } from "../config";
import type { Env } from "../env";
import { createServices, type Services } from "../services";
import { counts, instrumented, resetCounts } from "./instrument";
import type { BenchCustomerMeter } from "./meter";

/** A decision-shaped constant, about the size of a real check's answer, so both move the same bytes. */
const BASELINE_BODY = JSON.stringify({
  allowed: true,
  reason: "ok",
  customerId: "bench-baseline",
  feature: "baseline",
  type: "boolean",
  expiresAt: null,
  snapshotVersion: 1,
  version: "0.1",
  snapshotAgeMs: 0,
  evaluatedAt: "2026-01-01T00:00:00.000Z",
});

function createBenchApp(getServices: (env: Env) => Services) {
  const app = createApp(getServices);
  app.post("/v1/__bench/baseline", (c) => c.body(BASELINE_BODY, 200, { "Content-Type": "application/json" }));
  app.post("/v1/__bench/usage-baseline", async (c) => {
    const { customerId } = await c.req.json<{ customerId: string }>();
    // In the bench entry the CustomerMeter class is BenchCustomerMeter (src/bench/worker.ts); Env names the production one.
    const meters = c.env.METER as unknown as DurableObjectNamespace<BenchCustomerMeter>;
    const n = await meters.get(meters.idFromName(customerId)).increment();
    return c.json({ customerId, n }, 200);
  });
  app.get("/__bench/stats", (c) => {
    const s = getServices(c.env);
    const cache = s.snapshots.cache;
    return c.json(
      {
        counts,
        snapshotCache: {
          entries: cache.size,
          bytes: cache.bytes,
          maxEntries: cache.maxEntries,
          maxBytes: cache.maxBytes,
          ttlMs: s.snapshots.options.ttlMs,
        },
        keyCache: { entries: s.keys.cache.size },
        catalogCache: { ttlMs: s.snapshots.catalogs.ttlMs, rev: s.snapshots.catalogs.held?.rev ?? null },
      },
      200,
    );
  });
  let second: ReturnType<typeof createApp> | undefined;
  let secondServices: Services | undefined;
  app.all("/__bench/second/*", (c) => {
    second ??= createApp((env) => (secondServices ??= createServices(systemClock, configOf(env).snapshotCache)));
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice("/__bench/second".length);
    return second.fetch(new Request(url, c.req.raw), c.env, c.executionCtx);
  });
  app.post("/__bench/reset", (c) => {
    resetCounts();
    return c.json({ ok: true }, 200);
  });
  return app;
}

const CONTROL_ROUTE = /^[a-z]+:\/\/[^/]+\/__bench\//;
const ANALYTICS_ROUTE = /^([a-z]+:\/\/[^/]+\/v1\/)__bench\/analytics-(off|engine|local)\/(.*)$/;

const analyticsEnvs = new WeakMap<Env, Record<string, Env>>();

/** The request to /v1/<path> and the env whose ANALYTICS_MODE is the route's, for an analytics route; else as is. */
function analyticsVariant(request: Request, env: Env): [Request, Env] {
  const m = request.url.includes("/__bench/analytics-") ? ANALYTICS_ROUTE.exec(request.url) : null;
  if (!m) return [request, env];
  const [, prefix, mode, rest] = m as unknown as [string, string, string, string];
  let variants = analyticsEnvs.get(env);
  if (!variants) {
    variants = {};
    analyticsEnvs.set(env, variants);
  }
  variants[mode] ??= { ...env, ANALYTICS_MODE: mode };
  return [new Request(prefix + rest, request), variants[mode]];
}

let benchApp: ReturnType<typeof createBenchApp> | undefined;

/** The worker's fetch in benchmark mode: counted bindings, the bench routes, the same services. */
export async function benchFetch(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  getServices: (env: Env) => Services,
): Promise<Response> {
  benchApp ??= createBenchApp(getServices);
  if (CONTROL_ROUTE.test(request.url)) return benchApp.fetch(request, instrumented(env), ctx);
  counts.requests++;
  const [req, variant] = analyticsVariant(request, env);
  const response = await benchApp.fetch(req, instrumented(variant), ctx);
  if (response.status >= 500) counts.http5xx++;
  else if (response.status >= 400) counts.http4xx++;
  return response;
}
