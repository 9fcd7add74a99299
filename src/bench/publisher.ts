// The benchmark's Publisher: the production one, writing through the counted bindings in bench mode,
// so `npm run bench` counts the KV writes and D1 rows of a publication with the request that caused it
// (the object runs in the bench worker's process). Exported only by the bench entry (src/bench/worker.ts).
import { configOf } from "../config";
import type { Env } from "../env";
import { Publisher } from "../store/publisher";
import { countedD1, countedKv } from "./instrument";

export class BenchPublisher extends Publisher {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    if (configOf(env).bench) {
      this.kv = countedKv(env.SNAPSHOTS);
      this.db = countedD1(env.DB);
    }
  }
}
