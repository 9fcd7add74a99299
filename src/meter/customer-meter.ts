// CustomerMeter: one Durable Object per customer, the only writer of that customer's usage and the
// only place a consume is decided. SQLite storage; every decision runs synchronously (no await
// between reading and writing a counter), so concurrent requests are serialised and exact.
//
// What it stores: counters (one per metered feature, for its current period), idempotency keys
// (kept >= 24 h), reservations, and an outbox of ledger entries not yet in D1. An alarm flushes the
// outbox to D1 at least once; D1 applies it idempotently by (customer_id, seq), so a retried flush
// never double counts, and a failed flush is retried with backoff until it lands.
import { DurableObject } from "cloudflare:workers";
import { type Allowance, fits } from "../domain/evaluate";
import { periodAt } from "../domain/periods";
import type { ResetAnchor, ResetPeriod } from "../domain/types";
import type { Env } from "../env";

export interface MeterPeriod {
  start: number;
  end: number | null;
}

/** What the Worker sends: the decision's inputs, computed from the customer's snapshot. */
export interface UsageCall {
  customerId: string;
  feature: string;
  amount: number;
  mode: "consume" | "record";
  idempotencyKey: string | null;
  /** Canonical form of the request: the same key with another fingerprint is a conflict. */
  fingerprint: string;
  allowance: Allowance;
  /** Whether the customer is entitled to the feature at all (a record is kept even when not). */
  entitled: boolean;
  /** The current period of the feature. */
  period: MeterPeriod;
  /** The period the usage happened in (record with a timestamp); defaults to `period`. */
  occurredPeriod?: MeterPeriod;
  occurredAt: number;
  now: number;
  /** A gauge (reset "none") takes negative amounts and never goes below zero. */
  gauge: boolean;
}

export interface UsageAnswer {
  allowed: boolean;
  reason: "ok" | "limit_reached" | "not_entitled";
  used: number;
  reserved: number;
  limit: number | null;
  remaining: number | null;
  periodStart: number;
  resetsAt: number | null;
  overage: number;
  replayed?: boolean;
  reservationId?: string;
  expiresAt?: number;
  settled?: number;
  /** Set on settle/release answers, whose requests do not name the feature. */
  feature?: string;
}

export type MeterError =
  | "idempotency_conflict"
  | "reservation_not_found"
  | "reservation_closed"
  | "amount_exceeds_reservation";
export type MeterResult = { ok: true; answer: UsageAnswer } | { ok: false; error: MeterError; detail: string };

/** How a feature's period is computed: kept with a reservation so settling needs no snapshot. */
export interface PeriodTerms {
  reset: ResetPeriod;
  anchor: ResetAnchor;
  anchorAt: number | null;
}

export interface ReserveCall extends Omit<UsageCall, "mode" | "occurredPeriod" | "occurredAt" | "gauge"> {
  ttlSeconds: number;
  terms: PeriodTerms;
}
export interface SettleCall {
  customerId: string;
  reservationId: string;
  /** The actual amount to charge (settle only; at most the reserved amount). */
  amount?: number;
  now: number;
}

export interface CounterView {
  feature: string;
  used: number;
  reserved: number;
  periodStart: number;
  periodEnd: number | null;
}

const FLUSH_DELAY_MS = 1_000; // a quiet meter's ledger reaches D1 within about a second
// A meter that flushed less than this ago batches instead: each flush is one D1 write plus an alarm,
// and a customer with a few consumes per second would otherwise pay one per second (the bench's
// usage-spread measures it; docs/api.md "Usage semantics" states both delays).
const BUSY_FLUSH_DELAY_MS = 5_000;
const COLLECT_INTERVAL_MS = 60_000;
const LAST_SEEN_WRITE_MS = 60_000;
const FLUSH_BATCH = 200;
const MAX_BACKOFF_MS = 5 * 60_000;
export const IDEMPOTENCY_TTL_MS = 48 * 3600_000; // promised: at least 24 h
const CLOSED_RESERVATION_TTL_MS = 7 * 24 * 3600_000;

type Row = Record<string, SqlStorageValue>;

export class CustomerMeter extends DurableObject<Env> {
  /** The ledger database. A field (not env.DB directly) so a test can inject a failing D1. */
  ledger: D1Database;
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.ledger = env.DB;
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => this.#migrate());
  }

  #migrate(): void {
    this.#sql.exec(`
      CREATE TABLE IF NOT EXISTS counters (feature TEXT PRIMARY KEY, period_start INTEGER NOT NULL, period_end INTEGER, used REAL NOT NULL);
      CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, answer TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, feature TEXT NOT NULL, amount REAL NOT NULL, expires_at INTEGER NOT NULL,
        state TEXT NOT NULL, terms TEXT NOT NULL, answer TEXT, created_at INTEGER NOT NULL, closed_at INTEGER);
      CREATE INDEX IF NOT EXISTS reservations_open ON reservations (state, feature, expires_at);
      CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, feature TEXT NOT NULL, amount REAL NOT NULL,
        period_start INTEGER NOT NULL, period_end INTEGER, occurred_at INTEGER NOT NULL, idempotency_key TEXT);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
      CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
    `);
  }

  // ---- RPC methods ---------------------------------------------------------------------------

  /** consume: atomic check-and-increment. record: always recorded, says whether now over the limit. */
  async usage(call: UsageCall): Promise<MeterResult> {
    this.#observe(call.customerId, call.now);
    const replay = this.#replay(call.idempotencyKey, call.fingerprint);
    if (replay) return replay;
    const counter = this.#counter(call.feature, call.period, call.now);
    const reserved = this.#reserved(call.feature, call.now);
    let used = counter.used;
    let allowed: boolean;
    let reason: UsageAnswer["reason"];
    const occurred = call.occurredPeriod ?? call.period;
    if (call.mode === "record") {
      if (occurred.start < counter.periodStart) {
        // Late report for a closed period: it goes to the ledger of that period, not to today's counter.
        this.#event("record", call.feature, call.amount, occurred, call.occurredAt, call.idempotencyKey);
      } else {
        used = this.#apply(call, counter, used);
      }
      allowed = call.entitled && fits(call.allowance, used + reserved, 0);
      reason = !call.entitled ? "not_entitled" : allowed ? "ok" : "limit_reached";
    } else if (!call.entitled) {
      allowed = false;
      reason = "not_entitled";
    } else if (call.amount < 0 || fits(call.allowance, used + reserved, call.amount)) {
      used = this.#apply(call, counter, used);
      allowed = true;
      reason = "ok";
    } else {
      allowed = false;
      reason = "limit_reached";
    }
    const answer = this.#answer(allowed, reason, used, reserved, call.allowance, counter);
    this.#remember(call.idempotencyKey, call.fingerprint, answer, call.now);
    await this.#ensureAlarm(this.#flushDelay());
    return { ok: true, answer };
  }

  /** Holds `amount` units for `ttlSeconds`; they count against the allowance until settled or released. */
  async reserve(call: ReserveCall): Promise<MeterResult> {
    this.#observe(call.customerId, call.now);
    const replay = this.#replay(call.idempotencyKey, call.fingerprint);
    if (replay) return replay;
    const counter = this.#counter(call.feature, call.period, call.now);
    let reserved = this.#reserved(call.feature, call.now);
    const ok = call.entitled && fits(call.allowance, counter.used + reserved, call.amount);
    let extra: Partial<UsageAnswer> = {};
    if (ok) {
      const id = `res_${crypto.randomUUID()}`;
      const expiresAt = call.now + call.ttlSeconds * 1000;
      const terms = JSON.stringify({ allowance: call.allowance, ...call.terms });
      this.#sql.exec(
        "INSERT INTO reservations (id, feature, amount, expires_at, state, terms, created_at) VALUES (?, ?, ?, ?, 'open', ?, ?)",
        id,
        call.feature,
        call.amount,
        expiresAt,
        terms,
        call.now,
      );
      reserved += call.amount;
      extra = { reservationId: id, expiresAt };
    }
    const reason = !call.entitled ? "not_entitled" : ok ? "ok" : "limit_reached";
    const answer = { ...this.#answer(ok, reason, counter.used, reserved, call.allowance, counter), ...extra };
    this.#remember(call.idempotencyKey, call.fingerprint, answer, call.now);
    await this.#ensureAlarm(ok ? call.ttlSeconds * 1000 : null);
    return { ok: true, answer };
  }

  /** Charges the actual amount (at most the reserved one) and frees the rest. Settling twice returns the first answer. */
  async settle(call: SettleCall): Promise<MeterResult> {
    return this.#close(call, "settled");
  }

  /** Frees a reservation without charging. Idempotent. */
  async release(call: SettleCall): Promise<MeterResult> {
    return this.#close(call, "released");
  }

  /** Current usage of the given features (a check's read). Rolls counters over lazily like any touch. */
  async peek(
    customerId: string,
    items: { feature: string; period: MeterPeriod }[],
    now: number,
  ): Promise<Record<string, { used: number; reserved: number }>> {
    this.#observe(customerId, now);
    const out: Record<string, { used: number; reserved: number }> = {};
    for (const { feature, period } of items)
      out[feature] = { used: this.#counter(feature, period, now).used, reserved: this.#reserved(feature, now) };
    return out;
  }

  /** Every counter, for GET /v1/usage. */
  async counters(now: number): Promise<CounterView[]> {
    return this.#sql
      .exec("SELECT feature, used, period_start, period_end FROM counters ORDER BY feature")
      .toArray()
      .map((r) => ({
        feature: String(r.feature),
        used: Number(r.used),
        reserved: this.#reserved(String(r.feature), now),
        periodStart: Number(r.period_start),
        periodEnd: r.period_end === null ? null : Number(r.period_end),
      }));
  }

  /** Flushes the outbox now (ops and tests); the alarm does the same on its own. */
  async flush(): Promise<{ flushed: number; pending: number }> {
    const flushed = await this.#flush();
    return { flushed, pending: this.#pending() };
  }

  async pending(): Promise<number> {
    return this.#pending();
  }

  /** Liveness probe for /readyz. */
  async ping(): Promise<number> {
    return 1;
  }

  /** The benchmark's usage-baseline: a bare RPC that increments a number in SQLite storage. */
  async increment(): Promise<number> {
    return Number(
      this.#sql
        .exec("INSERT INTO bench (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1 RETURNING n")
        .one().n,
    );
  }

  /** Alarms may run more than once: everything here is idempotent. */
  override async alarm(): Promise<void> {
    this.#alarmAt = null; // this one is running; a new one is set below when needed
    const now = this.#now();
    this.#sql.exec(
      "UPDATE reservations SET state = 'expired', closed_at = ? WHERE state = 'open' AND expires_at <= ?",
      now,
      now,
    );
    // Garbage collection at most once a minute: a busy meter's alarm runs every few seconds, and the
    // idempotency table (no index on created_at) would be scanned every time.
    if (now - this.#collectedAt >= COLLECT_INTERVAL_MS) {
      this.#sql.exec(
        "DELETE FROM reservations WHERE state != 'open' AND closed_at < ?",
        now - CLOSED_RESERVATION_TTL_MS,
      );
      this.#sql.exec("DELETE FROM idempotency WHERE created_at < ?", now - IDEMPOTENCY_TTL_MS);
      this.#collectedAt = now;
    }
    try {
      await this.#flush();
      this.#setMeta("flush_failures", 0);
    } catch (err) {
      const failures = Number(this.#meta("flush_failures") ?? 0) + 1;
      this.#setMeta("flush_failures", failures);
      console.error(
        JSON.stringify({
          msg: "ledger flush failed; will retry",
          failures,
          pending: this.#pending(),
          error: String(err),
        }),
      );
      await this.#setAlarm(Date.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 12)));
      return;
    }
    const next = this.#sql.exec("SELECT MIN(expires_at) AS t FROM reservations WHERE state = 'open'").one().t;
    if (next !== null) await this.#setAlarm(Date.now() + Math.max(0, Number(next) - now));
  }

  // ---- internals -----------------------------------------------------------------------------

  /** The counter of a feature in `period`, rolled over lazily: the closed period's total goes to the ledger. */
  #counter(
    feature: string,
    period: MeterPeriod,
    now: number,
  ): { used: number; periodStart: number; periodEnd: number | null } {
    const row = this.#sql
      .exec("SELECT used, period_start, period_end FROM counters WHERE feature = ?", feature)
      .toArray()[0] as Row | undefined;
    if (!row) {
      this.#sql.exec(
        "INSERT INTO counters (feature, period_start, period_end, used) VALUES (?, ?, ?, 0)",
        feature,
        period.start,
        period.end,
      );
      return { used: 0, periodStart: period.start, periodEnd: period.end };
    }
    const current = {
      used: Number(row.used),
      periodStart: Number(row.period_start),
      periodEnd: row.period_end === null ? null : Number(row.period_end),
    };
    if (period.start <= current.periodStart) return current; // same period (or a caller whose clock is behind)
    this.#event("close", feature, current.used, { start: current.periodStart, end: current.periodEnd }, now, null);
    this.#sql.exec(
      "UPDATE counters SET used = 0, period_start = ?, period_end = ? WHERE feature = ?",
      period.start,
      period.end,
      feature,
    );
    return { used: 0, periodStart: period.start, periodEnd: period.end };
  }

  /** Adds the amount to the counter (gauges floor at zero) and records exactly what was applied. */
  #apply(call: UsageCall, counter: { periodStart: number; periodEnd: number | null }, used: number): number {
    const next = call.gauge ? Math.max(0, used + call.amount) : used + call.amount;
    const delta = next - used;
    this.#sql.exec("UPDATE counters SET used = ? WHERE feature = ?", next, call.feature);
    if (delta !== 0)
      this.#event(
        call.mode,
        call.feature,
        delta,
        { start: counter.periodStart, end: counter.periodEnd },
        call.occurredAt,
        call.idempotencyKey,
      );
    return next;
  }

  #reserved(feature: string, now: number): number {
    return Number(
      this.#sql
        .exec(
          "SELECT COALESCE(SUM(amount), 0) AS r FROM reservations WHERE feature = ? AND state = 'open' AND expires_at > ?",
          feature,
          now,
        )
        .one().r,
    );
  }

  async #close(call: SettleCall, to: "settled" | "released"): Promise<MeterResult> {
    this.#observe(call.customerId, call.now);
    const r = this.#sql
      .exec(
        "SELECT feature, amount, expires_at, state, terms, answer FROM reservations WHERE id = ?",
        call.reservationId,
      )
      .toArray()[0] as Row | undefined;
    if (!r) return { ok: false, error: "reservation_not_found", detail: `No reservation '${call.reservationId}'.` };
    if (r.state === to && r.answer)
      return { ok: true, answer: { ...(JSON.parse(String(r.answer)) as UsageAnswer), replayed: true } };
    const expired = r.state === "expired" || (r.state === "open" && Number(r.expires_at) <= call.now);
    if (r.state !== "open" || expired)
      return {
        ok: false,
        error: "reservation_closed",
        detail: `Reservation '${call.reservationId}' is ${expired ? "expired" : r.state}.`,
      };
    const amount = to === "settled" ? (call.amount ?? Number(r.amount)) : 0;
    if (amount > Number(r.amount))
      return {
        ok: false,
        error: "amount_exceeds_reservation",
        detail: `Settle at most the reserved ${Number(r.amount)}.`,
      };
    const feature = String(r.feature);
    const terms = JSON.parse(String(r.terms)) as PeriodTerms & { allowance: Allowance };
    // Charged to the period in which it settles: a reservation open across a reset is carried over.
    const counter = this.#counter(feature, periodAt(terms.reset, terms.anchor, terms.anchorAt, call.now), call.now);
    let used = counter.used;
    if (amount > 0) {
      used += amount;
      this.#sql.exec("UPDATE counters SET used = ? WHERE feature = ?", used, feature);
      this.#event(
        "settle",
        feature,
        amount,
        { start: counter.periodStart, end: counter.periodEnd },
        call.now,
        call.reservationId,
      );
    }
    this.#sql.exec("UPDATE reservations SET state = ?, closed_at = ? WHERE id = ?", to, call.now, call.reservationId);
    const reserved = this.#reserved(feature, call.now);
    const answer = {
      ...this.#answer(true, "ok", used, reserved, terms.allowance, counter),
      reservationId: call.reservationId,
      settled: amount,
      feature,
    };
    this.#sql.exec("UPDATE reservations SET answer = ? WHERE id = ?", JSON.stringify(answer), call.reservationId);
    await this.#ensureAlarm(this.#flushDelay());
    return { ok: true, answer };
  }

  #answer(
    allowed: boolean,
    reason: UsageAnswer["reason"],
    used: number,
    reserved: number,
    a: Allowance,
    counter: { periodStart: number; periodEnd: number | null },
  ): UsageAnswer {
    return {
      allowed,
      reason,
      used,
      reserved,
      limit: a.limit,
      remaining: a.limit === null ? null : Math.max(0, a.limit - used - reserved),
      periodStart: counter.periodStart,
      resetsAt: counter.periodEnd,
      overage: a.limit === null ? 0 : Math.max(0, used - a.limit),
    };
  }

  #replay(key: string | null, fingerprint: string): MeterResult | null {
    if (!key) return null;
    const row = this.#sql.exec("SELECT fingerprint, answer FROM idempotency WHERE key = ?", key).toArray()[0] as
      | Row
      | undefined;
    if (!row) return null;
    if (row.fingerprint !== fingerprint)
      return {
        ok: false,
        error: "idempotency_conflict",
        detail: `Idempotency key '${key}' was used with a different request.`,
      };
    return { ok: true, answer: { ...(JSON.parse(String(row.answer)) as UsageAnswer), replayed: true } };
  }

  #remember(key: string | null, fingerprint: string, answer: UsageAnswer, now: number): void {
    if (key)
      this.#sql.exec(
        "INSERT INTO idempotency (key, fingerprint, answer, created_at) VALUES (?, ?, ?, ?)",
        key,
        fingerprint,
        JSON.stringify(answer),
        now,
      );
  }

  #event(
    kind: string,
    feature: string,
    amount: number,
    period: MeterPeriod,
    occurredAt: number,
    key: string | null,
  ): void {
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

  /** Sends the outbox to D1 in batches. INSERT OR IGNORE on (customer_id, seq) makes a repeated flush harmless. */
  async #flush(): Promise<number> {
    const customerId = this.#meta("customer_id");
    if (customerId === null) return 0;
    let flushed = 0;
    for (;;) {
      const rows = this.#sql.exec("SELECT * FROM outbox ORDER BY seq LIMIT ?", FLUSH_BATCH).toArray();
      if (rows.length === 0) return flushed;
      const db = this.ledger;
      const statements = rows.map((r) =>
        r.kind === "close"
          ? db
              .prepare(
                "INSERT OR IGNORE INTO usage_periods (customer_id, feature_key, period_start, period_end, total, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
              )
              .bind(customerId, r.feature, r.period_start, r.period_end, r.amount, r.occurred_at)
          : db
              .prepare(
                "INSERT OR IGNORE INTO usage_events (customer_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at, idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
              )
              .bind(
                customerId,
                r.seq,
                r.feature,
                r.amount,
                r.kind,
                r.period_start,
                r.period_end,
                r.occurred_at,
                r.idempotency_key,
              ),
      );
      await db.batch(statements);
      this.#sql.exec("DELETE FROM outbox WHERE seq <= ?", rows[rows.length - 1]!.seq);
      flushed += rows.length;
      this.#lastFlushAt = Date.now();
    }
  }

  #pending(): number {
    return Number(this.#sql.exec("SELECT COUNT(*) AS n FROM outbox").one().n);
  }

  #lastFlushAt = 0;
  #collectedAt = 0;

  #flushDelay(): number {
    // Jitter, so meters that got busy together do not all flush in the same instant.
    return Date.now() - this.#lastFlushAt < BUSY_FLUSH_DELAY_MS
      ? BUSY_FLUSH_DELAY_MS * (1 + Math.random() / 5)
      : FLUSH_DELAY_MS;
  }

  // The alarm this object has set, kept in memory so a busy meter does not read it back on every
  // call (undefined: not known since the object started; null: none set).
  #alarmAt: number | null | undefined = undefined;

  async #ensureAlarm(inMs: number | null): Promise<void> {
    if (inMs === null) return;
    const at = Date.now() + inMs;
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt === null || this.#alarmAt > at) await this.#setAlarm(at);
  }

  async #setAlarm(at: number): Promise<void> {
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  // The meter's clock: the latest instant a caller told it (callers carry the injected clock), moved
  // forward by real time since then. In production this is Date.now(); in tests it is the test's clock.
  #lastSeen = 0;
  #lastSeenReal = 0;
  #lastSeenStored = 0;

  #observe(customerId: string, now: number): void {
    if (this.#lastSeen === 0) {
      this.#lastSeen = Number(this.#meta("last_seen") ?? 0);
      if (this.#meta("customer_id") === null) this.#setMeta("customer_id", customerId);
    }
    if (now > this.#lastSeen) {
      this.#lastSeen = now;
      // Stored at most once a minute: a write on every call (a check's peek included) costs a storage
      // write each; after a restart the clock resumes from at most a minute back (alarms run that late).
      if (now - this.#lastSeenStored >= LAST_SEEN_WRITE_MS) {
        this.#setMeta("last_seen", now);
        this.#lastSeenStored = now;
      }
    }
    this.#lastSeenReal = Date.now();
  }

  #now(): number {
    if (this.#lastSeen === 0) this.#lastSeen = Number(this.#meta("last_seen") ?? Date.now());
    return this.#lastSeen + Math.max(0, Date.now() - (this.#lastSeenReal || Date.now()));
  }

  #meta(key: string): SqlStorageValue {
    const row = this.#sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return row ? (row.value ?? null) : null;
  }

  #setMeta(key: string, value: SqlStorageValue): void {
    this.#sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }
}
