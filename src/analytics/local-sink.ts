// Local analytics (ANALYTICS_MODE "local", the default of `npm start`): Analytics Engine's local writes
// are dropped, so the same points are counted in this isolate, keyed by hour and dimensions, and flushed
// to two D1 rollups (store/analytics.ts) in waitUntil: at most once per flush interval (by the injected
// clock), or sooner when the buffer reaches its cell cap. D1 then grows with the dimensions (hours x
// features x plans x countries x reasons, and active customer-features per hour), never with requests;
// the cron deletes rows past the retention. A check or consume only adds to two Map entries.
// The analytics endpoints flush first, so a read sees every point of its own isolate.

import { HOUR_MS } from "../domain/time";
import type { Env } from "../env";
import { type CustomerCell, type RollupCell, writeRollups } from "../store/analytics";
import type { AnalyticsPoint, AnalyticsSink, PointKind, SinkIO } from "./points";

export interface LocalSinkOptions {
  /** How long points wait in the isolate before a flush, ms (ANALYTICS_FLUSH_MS). */
  flushMs: number;
  /** Buffered cells that force a flush whatever the interval: the buffer's memory bound. */
  maxCells: number;
}

/** About 150 bytes a cell: 20,000 cells hold about 3 MB of the isolate's 128 MB. */
export const DEFAULT_MAX_CELLS = 20_000;

export class LocalRollupSink implements AnalyticsSink {
  readonly #rollups = new Map<string, RollupCell>();
  readonly #customers = new Map<string, CustomerCell>();
  #oldest: number | null = null;
  #flushing: Promise<void> | null = null;

  constructor(readonly options: LocalSinkOptions) {}

  check(point: AnalyticsPoint, io: SinkIO): void {
    this.#add("check", point);
    this.#schedule(point.at, io);
  }

  consume(point: AnalyticsPoint, io: SinkIO): void {
    this.#add("consume", point);
    this.#schedule(point.at, io);
  }

  /** Cells waiting for a flush. */
  get buffered(): number {
    return this.#rollups.size + this.#customers.size;
  }

  /** Writes what is buffered (after any flush in flight). A failed write is logged and dropped: analytics are not the ledger. */
  async flush(env: Env): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.buffered === 0) return;
    const rollups = [...this.#rollups.values()];
    const customers = [...this.#customers.values()];
    this.#rollups.clear();
    this.#customers.clear();
    this.#oldest = null;
    this.#flushing = writeRollups(env.DB, rollups, customers)
      .catch((err) => {
        console.error(JSON.stringify({ msg: "analytics flush failed; its counts are dropped", error: String(err) }));
      })
      .finally(() => {
        this.#flushing = null;
      });
    await this.#flushing;
  }

  #add(kind: PointKind, p: AnalyticsPoint) {
    const hour = p.at - (p.at % HOUR_MS);
    const allowed = p.allowed ? 1 : 0;
    const rk = `${hour}|${kind}|${p.feature}|${p.plan}|${p.country}|${p.reason}|${allowed}`;
    let r = this.#rollups.get(rk);
    if (!r) {
      r = {
        hour,
        kind,
        feature: p.feature,
        plan: p.plan,
        country: p.country,
        reason: p.reason,
        allowed,
        count: 0,
        quantity: 0,
      };
      this.#rollups.set(rk, r);
    }
    r.count++;
    r.quantity += p.quantity;
    const ck = `${hour}|${p.feature}|${p.customerId}`;
    let c = this.#customers.get(ck);
    if (!c) {
      c = { hour, feature: p.feature, customerId: p.customerId, checks: 0, denials: 0, consumes: 0, used: 0 };
      this.#customers.set(ck, c);
    }
    if (kind === "check") {
      c.checks++;
      if (!p.allowed) c.denials++;
    } else {
      c.consumes++;
      if (p.allowed) c.used += p.quantity;
    }
  }

  #schedule(now: number, io: SinkIO) {
    this.#oldest ??= now;
    const full = this.buffered >= this.options.maxCells;
    if (!io.waitUntil) {
      // Outside a request nothing can wait for a flush: the buffer stays bounded by dropping its counts.
      if (full) this.#drop();
      return;
    }
    if (this.#flushing || (!full && now - this.#oldest < this.options.flushMs)) return;
    io.waitUntil(this.flush(io.env));
  }

  #drop() {
    console.warn(
      JSON.stringify({
        msg: "analytics buffer full with no waitUntil to flush it; counts dropped",
        cells: this.buffered,
      }),
    );
    this.#rollups.clear();
    this.#customers.clear();
    this.#oldest = null;
  }
}
