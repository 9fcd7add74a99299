// The meter's ledger outbox: every change to a counter is queued here in the same synchronous step
// as the change itself (one SQLite transaction, no await between), and flushed later by the meter's
// alarm to R2 as immutable NDJSON objects, one per batch (store/ledger-objects.ts). A flush is at
// least once: rows leave the outbox only after R2 acknowledged the object. A batch is sealed before it
// is sent (its seq range and day kept in meta), so a retry after a failure or a lost acknowledgement
// sends the same rows under the same key with the same bytes: R2 keeps one object, nothing counts
// twice. seq is this meter's own; meter_id (the Durable Object's id) keeps another meter object of
// the same customer from colliding with it. With the rows dropped, the batch's events are added to
// the period totals on their way to D1 (meter/period-totals.ts), in the same synchronous step.
//
// Separate from the Durable Object so the meter's decisions and the ledger's delivery can be read
// (and changed) apart. It owns the outbox table's rows, not its schema (meter/schema.ts).
import { ledgerBody, ledgerDay, ledgerKey, putLedgerBatch } from "../store/ledger-objects";
import { type LedgerEntry, UNNAMED_METER_ID } from "../store/usage-ledger";
import type { MeterMeta } from "./meter-clock";
import type { PeriodTotals } from "./period-totals";
import type { MeterPeriod } from "./protocol";
/**
 * consume/record/settle: a change applied to a counter; close: the total of a period that ended;
 * late: a record for a period that had already closed (that period's total in the ledger grows by it).
 */
export type LedgerKind = "consume" | "record" | "late" | "settle" | "close";

const FLUSH_DELAY_MS = 1_000; // a quiet meter's ledger reaches R2 within about a second
// A meter that flushed less than this ago batches instead: each flush is one R2 write plus an alarm,
// and a customer with a few consumes per second would otherwise pay one per second (the bench's
// usage-spread measures it; docs/api.md "Usage semantics" states both delays).
const BUSY_FLUSH_DELAY_MS = 5_000;
const FLUSH_BATCH = 1000; // lines per object: about 200 B each, so objects of at most ~200 KB
const SEALED = "ledger_batch";

/** A batch fixed before it is sent: the same range and day on every retry, hence the same object. */
interface SealedBatch {
  first: number;
  last: number;
  day: string;
}

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
  readonly #meta: MeterMeta;
  readonly #totals: PeriodTotals;
  #lastFlushAt = 0;
  #added = 0;

  constructor(sql: SqlStorage, meta: MeterMeta, totals: PeriodTotals) {
    this.#sql = sql;
    this.#meta = meta;
    this.#totals = totals;
  }

  /** How many entries this object has queued since it started: a caller compares it to see whether it queued any. */
  get added(): number {
    return this.#added;
  }

  /**
   * Queues one entry; `key` is the request's idempotency key (or the reservation id of a settle), `entityId`
   * the entity inside the customer the usage was for (docs/model.md, Entities).
   */
  add(
    kind: LedgerKind,
    feature: string,
    amount: number,
    period: MeterPeriod,
    occurredAt: number,
    key: string | null,
    { entityId }: { entityId?: string } = {},
  ) {
    this.#added++;
    this.#sql.exec(
      "INSERT INTO outbox (kind, feature, amount, period_start, period_end, occurred_at, idempotency_key, entity_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      kind,
      feature,
      amount,
      period.start,
      period.end,
      occurredAt,
      key,
      entityId ?? null,
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

  /** Sends the outbox to R2 a batch at a time until it is empty; throws (keeping the rest) when R2 fails. */
  async flush(bucket: R2Bucket, owner: LedgerOwner, now: number): Promise<number> {
    let flushed = 0;
    for (;;) {
      const batch = this.#sealed() ?? this.#seal(now);
      if (batch === null) return flushed;
      const entries = this.#range(batch, owner);
      const key = ledgerKey(owner.customerId, batch.day, owner.meterId, batch.first, batch.last);
      await putLedgerBatch(bucket, key, ledgerBody(owner.customerId, entries));
      // Acknowledged: the rows leave the outbox and join the totals in one synchronous step.
      this.#sql.exec("DELETE FROM outbox WHERE seq <= ?", batch.last);
      this.#sql.exec("DELETE FROM meta WHERE key = ?", SEALED);
      this.#totals.add(entries);
      flushed += entries.length;
      this.#lastFlushAt = Date.now();
    }
  }

  #sealed(): SealedBatch | null {
    const v = this.#meta.get(SEALED);
    return v === null ? null : (JSON.parse(String(v)) as SealedBatch);
  }

  /** Fixes the next batch (the oldest FLUSH_BATCH entries) and the day that names it; null when the outbox is empty. */
  #seal(now: number): SealedBatch | null {
    const r = this.#sql
      .exec(
        "SELECT MIN(seq) AS first, MAX(seq) AS last FROM (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
        FLUSH_BATCH,
      )
      .one();
    if (r.first === null) return null;
    const batch = { first: Number(r.first), last: Number(r.last), day: ledgerDay(now) };
    this.#meta.set(SEALED, JSON.stringify(batch));
    return batch;
  }

  #range(batch: SealedBatch, owner: LedgerOwner): LedgerEntry[] {
    return this.#sql
      .exec("SELECT * FROM outbox WHERE seq BETWEEN ? AND ? ORDER BY seq", batch.first, batch.last)
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
        ...(r.entity_id == null ? {} : { entityId: String(r.entity_id) }),
      }));
  }
}
