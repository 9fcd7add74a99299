// The benchmark's worker entry: scripts/bench bundles this file instead of src/index.ts (wrangler's
// main), so bench mode is not in the production bundle at all. It is the production worker plus
// counted bindings, the /__bench routes (src/bench/index.ts), BenchCustomerMeter as the meter class
// and BenchPublisher as the publisher: exported under the production classes' names, which
// wrangler.toml's bindings and migrations name (wrangler refuses a bundle that does not export them).
//
// Guarded all the same: bench mode is served only with BENCH_INSTRUMENT = "on" (set by scripts/bench)
// in the development environment, so this entry deployed by mistake is the plain worker, never the
// unauthenticated /__bench routes.
// First: @hono/zod-openapi extends zod with .openapi(), which the routes call on the domain's schemas;
// the domain builds them with plain zod, so the extension must be loaded before any of them is.
import "@hono/zod-openapi";
import { configOf } from "../config";
import type { Env } from "../env";
import { createWorker, type WorkerOptions } from "../index";
import { type RpcCheckInput, rpcEntrypoint } from "../rpc/entrypoint";
import { benchFetch } from "./index";
import { counts, instrumented } from "./instrument";

export { QuotaCoordinator } from "../meter/quota-coordinator";
export { BenchCustomerMeter as CustomerMeter } from "./meter";
export { BenchPublisher as Publisher } from "./publisher";

export const benchMode = (env: Env) => configOf(env).bench;

/** The production worker, served in bench mode where benchMode allows it. */
export function createBenchWorker(opts: WorkerOptions = {}) {
  const worker = createWorker(opts);
  return {
    ...worker,
    fetch: (request: Request, env: Env, ctx: ExecutionContext) =>
      benchMode(env) ? benchFetch(request, env, ctx, worker.getServices) : worker.fetch(request, env, ctx),
  } satisfies ExportedHandler<Env> & Record<string, unknown>;
}

const worker = createBenchWorker();

/** The service-binding entrypoint over counted bindings, each check counted as a request (check-rpc). */
export class TollgateRpc extends rpcEntrypoint(worker.getServices) {
  constructor(ctx: ExecutionContext, env: Env) {
    super(ctx, benchMode(env) ? instrumented(env) : env);
  }

  override check(input: RpcCheckInput) {
    counts.requests++;
    return super.check(input);
  }
}

export default { fetch: worker.fetch, scheduled: worker.scheduled } satisfies ExportedHandler<Env>;
