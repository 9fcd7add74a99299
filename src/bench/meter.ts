// The benchmark's Durable Object: the production CustomerMeter plus one bare RPC, increment(), that
// bumps a number in SQLite storage. POST /v1/__bench/usage-baseline calls it on a customer's meter
// to measure what any Durable Object write costs here, the floor under every usage-* scenario.
// Exported only by the bench entry (src/bench/worker.ts), so production meters have neither the
// method nor its table.
import type { Env } from "../env";
import { CustomerMeter } from "../meter/customer-meter";

export class BenchCustomerMeter extends CustomerMeter {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
    });
  }

  /** The benchmark's usage-baseline: a bare RPC that increments a number in SQLite storage. */
  async increment(): Promise<number> {
    const bump = "INSERT INTO bench (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1 RETURNING n";
    return Number(this.ctx.storage.sql.exec(bump).one().n);
  }
}
