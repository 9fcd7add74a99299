// GET / (service banner), GET /healthz (liveness: no bindings), GET /readyz (readiness: touches KV,
// D1 and a Durable Object, each with its latency; 503 when one of them fails).
import { createRoute, z } from "@hono/zod-openapi";
import { configOf } from "../config";
import type { Env } from "../env";
import { Problem } from "../http/problem";
import { newRouter } from "../http/router";
import { jsonResponse, problemSchema } from "../http/schemas";
import { readCatalogRev } from "../store/catalog";

const banner = createRoute({
  method: "get",
  path: "/",
  tags: ["health"],
  summary: "Service banner, with where the API description lives",
  responses: {
    200: jsonResponse(
      z.object({ service: z.literal("tollgate"), docs: z.string(), openapi: z.string() }),
      "The banner",
    ),
  },
});

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["health"],
  summary: "Liveness: the worker runs (touches no binding)",
  responses: { 200: jsonResponse(z.object({ ok: z.literal(true) }), "Alive") },
});

const probeResult = z.object({
  ok: z.boolean(),
  latencyMs: z.number(),
  error: z.enum(["failed", "timeout"]).optional(),
});
const checks = z.object({ kv: probeResult, d1: probeResult, durableObject: probeResult });

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  tags: ["health"],
  summary: "Readiness: reads KV, D1 and a Durable Object, and reports each with its latency",
  responses: {
    200: jsonResponse(z.object({ ok: z.literal(true), checks }), "Every store answers"),
    503: {
      description: "A store failed or timed out (problem+json with `checks`)",
      content: { "application/problem+json": { schema: problemSchema.extend({ checks }) } },
    },
  },
});

export const healthRoutes = newRouter()
  .openapi(banner, (c) => c.json({ service: "tollgate" as const, docs: "/docs", openapi: "/openapi.json" }, 200))
  .openapi(healthz, (c) => c.json({ ok: true as const }, 200))
  .openapi(readyz, async (c) => {
    const result = await probeAll(c.env, c.var.services.clock.now());
    c.header("Cache-Control", "no-store");
    const failed = Object.entries(result)
      .filter(([, r]) => !r.ok)
      .map(([name]) => name);
    if (failed.length > 0)
      throw new Problem("unavailable", `Not ready: ${failed.join(", ")} failed.`, {
        checks: result,
        headers: { "Retry-After": "5", "Cache-Control": "no-store" },
      });
    return c.json({ ok: true as const, checks: result }, 200);
  });

/**
 * Cheap reads that need the binding to work: a KV key that need not exist, the catalog revision
 * (D1 reachable and its schema applied), and ping() on one fixed Durable Object. Its name starts with
 * "_", which no customer id can, so the probe never wakes a customer's meter.
 */
interface Probe {
  name: string;
  run: (env: Env) => Promise<unknown>;
}
const PROBES = {
  kv: { name: "kv", run: (env) => env.SNAPSHOTS.get("readyz:probe") },
  d1: { name: "d1", run: (env) => readCatalogRev(env.DB) },
  durableObject: { name: "durableObject", run: (env) => env.METER.get(env.METER.idFromName("_readyz")).ping() },
} satisfies Record<string, Probe>;

type Checks = Record<keyof typeof PROBES, z.infer<typeof probeResult>>;

/**
 * /readyz is unauthenticated: one probe round per isolate (per env object) every READYZ_CACHE_MS at most,
 * shared by every request in between, so a flood of probes adds no load on D1, KV or the probe's meter.
 */
const READYZ_CACHE_MS = 5_000;
const lastProbes = new WeakMap<Env, { at: number; checks: Promise<Checks> }>();

function probeAll(env: Env, now: number): Promise<Checks> {
  const last = lastProbes.get(env);
  if (last && now - last.at < READYZ_CACHE_MS) return last.checks;
  const { timeoutMs } = configOf(env).readyz;
  const run = (p: Probe) => probe(p.name, () => p.run(env), timeoutMs);
  const checks = Promise.all([run(PROBES.kv), run(PROBES.d1), run(PROBES.durableObject)]).then(
    ([kv, d1, durableObject]) => ({ kv, d1, durableObject }),
  );
  lastProbes.set(env, { at: now, checks });
  return checks;
}

async function probe(
  name: string,
  run: () => Promise<unknown>,
  timeoutMs: number,
): Promise<z.infer<typeof probeResult>> {
  // Wall time, not the injected clock: latency is what this reports. (In Workers, Date.now() advances across I/O.)
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
  try {
    const outcome = await Promise.race([run().then(() => "ok" as const), timeout]);
    if (outcome === "timeout") console.error(JSON.stringify({ msg: "readyz probe timed out", probe: name, timeoutMs }));
    return outcome === "ok"
      ? { ok: true, latencyMs: Date.now() - started }
      : { ok: false, latencyMs: Date.now() - started, error: "timeout" };
  } catch (err) {
    // The detail goes to the log only: /readyz is unauthenticated.
    console.error(JSON.stringify({ msg: "readyz probe failed", probe: name, error: String(err) }));
    return { ok: false, latencyMs: Date.now() - started, error: "failed" };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
