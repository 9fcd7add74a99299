// Worker entry: fetch (the Hono app) and the Durable Object class.
import { createApp } from "./app";
import { benchFetch } from "./bench";
import { type Clock, systemClock } from "./clock";
import { configOf } from "./config";
import type { Env } from "./env";
import { runScheduled } from "./scheduled";
import { createServices, type Services } from "./services";

export { CustomerMeter } from "./meter/customer-meter";

export interface WorkerOptions {
  clock?: Clock;
}

/** Builds the worker; tests build their own with an injected clock. */
export function createWorker(opts: WorkerOptions = {}) {
  let services: Services | undefined;
  const getServices = (env: Env) =>
    (services ??= createServices(opts.clock ?? systemClock, configOf(env).snapshotCache));
  const app = createApp(getServices);
  return {
    app,
    getServices,
    // BENCH_INSTRUMENT=on (set only by scripts/bench): counted bindings and the unauthenticated /__bench
    // routes (src/bench). Honoured only in the development environment, never on a deployed worker.
    fetch: (request: Request, env: Env, ctx: ExecutionContext) =>
      configOf(env).bench ? benchFetch(request, env, ctx, getServices) : app.fetch(request, env, ctx),
    // Cron: records due lifecycle changes in D1 and continues recompile jobs (src/scheduled.ts).
    scheduled: async (_controller: ScheduledController, env: Env, _ctx: ExecutionContext) => {
      await runScheduled(env, getServices(env));
    },
  } satisfies ExportedHandler<Env> & Record<string, unknown>;
}

const worker = createWorker();
export default { fetch: worker.fetch, scheduled: worker.scheduled } satisfies ExportedHandler<Env>;
