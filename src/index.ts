// Worker entry: fetch (the Hono app), scheduled (cron) and the Durable Object class. The benchmark
// has its own entry (src/bench/worker.ts), so nothing of bench mode is in this bundle.
import { createApp } from "./app";
import { type Clock, systemClock } from "./clock";
import { configOf } from "./config";
import type { Env } from "./env";
import { handleWebhookQueue } from "./events/deliver";
import { rpcEntrypoint } from "./rpc/entrypoint";
import { runScheduled } from "./scheduled";
import { createServices, type Services } from "./services";
import type { ApiKeyCacheOptions } from "./store/api-key-store";

export { CustomerMeter } from "./meter/customer-meter";
export { QuotaCoordinator } from "./meter/quota-coordinator";
export { Publisher } from "./store/publisher";

export interface WorkerOptions {
  clock?: Clock;
  /** The isolate's API-key caches (tests shrink them to observe eviction; store/api-key-store.ts). */
  keyCache?: Partial<ApiKeyCacheOptions>;
  /** Outbound HTTP for webhook deliveries (tests inject receivers, failures, timeouts). */
  fetch?: typeof fetch;
}

/** Builds the worker; tests build their own with an injected clock. */
export function createWorker(opts: WorkerOptions = {}) {
  let services: Services | undefined;
  const getServices = (env: Env) =>
    (services ??= createServices(opts.clock ?? systemClock, configOf(env).snapshotCache, opts.keyCache, opts.fetch));
  const app = createApp(getServices);
  return {
    app,
    getServices,
    fetch: (request: Request, env: Env, ctx: ExecutionContext) => app.fetch(request, env, ctx),
    // Cron: records due lifecycle changes in D1 and recompiles those customers (src/scheduled.ts).
    scheduled: async (_controller: ScheduledController, env: Env, _ctx: ExecutionContext) => {
      await runScheduled(env, getServices(env));
    },
    // Webhook deliveries and their dead letters (src/events/deliver.ts).
    queue: async (batch: MessageBatch, env: Env, _ctx: ExecutionContext) => {
      await handleWebhookQueue(batch, env, getServices(env));
    },
  } satisfies ExportedHandler<Env> & Record<string, unknown>;
}

const worker = createWorker();
/** Typed RPC for Workers bound to this one (`entrypoint = "TollgateRpc"`; rpc/entrypoint.ts, docs/api.md). */
export const TollgateRpc = rpcEntrypoint(worker.getServices);
export default { fetch: worker.fetch, scheduled: worker.scheduled, queue: worker.queue } satisfies ExportedHandler<Env>;
