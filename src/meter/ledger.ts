// The meter's ledger outbox: every change to a counter is queued here in the same synchronous step
// as the change itself (one SQLite transaction, no await between), and flushed to D1 later by the
// meter's alarm. A flush is at least once: rows leave the outbox only after D1 acknowledged the
// batch, and D1 applies them idempotently by (customer_id, meter_id, seq) (store/usage-ledger.ts),
// so a retry after a lost acknowledgement never double counts. seq is this meter's own; meter_id
// (the Durable Object's id) keeps another meter object of the same customer from colliding with it.
//
// Separate from the Durable Object so the meter's decisions and the ledger's delivery can be read
// (and changed) apart. It owns the outbox table's rows, not its schema (meter/schema.ts).
import { type LedgerEntry, ledgerStatements, UNNAMED_METER_ID } from "../store/usage-ledger";
import type { MeterPeriod } from "./protocol";

/**
 * consume/record/settle: a change applied to a counter; close: the total of a period that ended;
 * late: a record for a period that had already closed (that period's total in the ledger grows by it).
 */
export type LedgerKind = "consume" | "record" | "late" | "settle" | "close";

const FLUSH_DELAY_MS = 1_000; // a quiet meter's ledger reaches D1 within about a second
// A meter that flushed less than this ago batches instead: each flush is one D1 write plus an alarm,
// and a customer with a few consumes per second would otherwise pay one per second (the bench's
// usage-spread measures it; docs/api.md "Usage semantics" states both delays).
const BUSY_FLUSH_DELAY_MS = 5_000;
const FLUSH_BATCH = 200;

/** Whose ledger: the customer, and the meter object's id (Durable Object id) that names its rows. */
export interface LedgerOwner {
  customerId: string;
  meterId: string;
  /**
   * The last seq queued before the ledger named meters (meter schema v3). The code before may have
   * sent those entries already, under the default meter id, so they are sent under it again.
   */
  unnamedThrough: number;
}

export class LedgerOutbox {
  readonly #sql: SqlStorage;
  #lastFlushAt = 0;
  #added = 0;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** How many entries this object has queued since it started: a caller compares it to see whether it queued any. */
  get added(): number {
    return this.#added;
  }

  /** Queues one entry; `key` is the request's idempotency key (or the reservation id of a settle). */
  add(kind: LedgerKind, feature: string, amount: number, period: MeterPeriod, occurredAt: number, key: string | null) {
    this.#added++;
    this.#sql.exec(
      "INSERT INTO outbox (kind, feature, amount, period_start, period_end, occurred_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
      kind,
      feature,
      amount,
      period.start,
      period.end,
      occurredAt,
      key,
    );
  }

  pending(): number {
    return Number(this.#sql.exec("SELECT COUNT(*) AS n FROM outbox").one().n);
  }

  /** How soon the next flush should run: soon when quiet, batched when busy. */
  flushDelay(): number {
    // Jitter, so meters that got busy together do not all flush in the same instant.
    return Date.now() - this.#lastFlushAt < BUSY_FLUSH_DELAY_MS
      ? BUSY_FLUSH_DELAY_MS * (1 + Math.random() / 5)
      : FLUSH_DELAY_MS;
  }

  /** Sends the outbox to `db` in batches until it is empty; throws (keeping the rest) when D1 fails. */
  async flush(db: D1Database, owner: LedgerOwner): Promise<number> {
    let flushed = 0;
    for (;;) {
      const entries = this.#next(owner);
      const last = entries.at(-1);
      if (last === undefined) return flushed;
      await db.batch(ledgerStatements(db, owner.customerId, entries));
      this.#sql.exec("DELETE FROM outbox WHERE seq <= ?", last.seq);
      flushed += entries.length;
      this.#lastFlushAt = Date.now();
    }
  }

  #next(owner: LedgerOwner): LedgerEntry[] {
    return this.#sql
      .exec("SELECT * FROM outbox ORDER BY seq LIMIT ?", FLUSH_BATCH)
      .toArray()
      .map((r) => ({
        meterId: Number(r.seq) <= owner.unnamedThrough ? UNNAMED_METER_ID : owner.meterId,
        seq: Number(r.seq),
        kind: String(r.kind),
        feature: String(r.feature),
        amount: Number(r.amount),
        period: { start: Number(r.period_start), end: r.period_end === null ? null : Number(r.period_end) },
        occurredAt: Number(r.occurred_at),
        idempotencyKey: r.idempotency_key === null ? null : String(r.idempotency_key),
      }));
  }
}
