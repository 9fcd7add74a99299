// A meter's idempotency keys: the answer given to each keyed request, kept 25 h (IDEMPOTENCY_TTL_MS:
// docs/api.md promises 24, and the hour more covers a client retrying on the 24th hour with a skewed clock). The same key with the same request replays the answer;
// with another request (another fingerprint) it is a conflict, never a second charge. A key older
// than the retention is a new key, whether or not the clean-up has removed it yet, so what a retry
// gets depends on the clock only. The clean-up reads the expired rows through the created_at index
// (meter schema v6): never the whole table, however busy the customer.
import type { MeterResult, UsageAnswer } from "./protocol";

export const IDEMPOTENCY_TTL_MS = 25 * 3600_000;

export class IdempotencyKeys {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** The earlier answer for `key` (replayed: true), a conflict, or null when the key is new, expired (or none). */
  replay(key: string | null, fingerprint: string, now: number): MeterResult | null {
    if (!key) return null;
    const row = this.#sql
      .exec("SELECT fingerprint, answer, created_at FROM idempotency WHERE key = ?", key)
      .toArray()[0];
    if (!row) return null;
    if (Number(row.created_at) < now - IDEMPOTENCY_TTL_MS) {
      this.#sql.exec("DELETE FROM idempotency WHERE key = ?", key);
      return null;
    }
    if (row.fingerprint !== fingerprint) {
      const detail = `Idempotency key '${key}' was used with a different request.`;
      return { ok: false, error: "idempotency_conflict", detail };
    }
    return { ok: true, answer: { ...(JSON.parse(String(row.answer)) as UsageAnswer), replayed: true } };
  }

  remember(key: string | null, fingerprint: string, answer: UsageAnswer, now: number): void {
    if (!key) return;
    const insert = "INSERT INTO idempotency (key, fingerprint, answer, created_at) VALUES (?, ?, ?, ?)";
    this.#sql.exec(insert, key, fingerprint, JSON.stringify(answer), now);
  }

  /** Forgets keys older than the retention, reading only those (idempotency_by_created). */
  collect(now: number): void {
    this.#sql.exec("DELETE FROM idempotency WHERE created_at < ?", now - IDEMPOTENCY_TTL_MS);
  }

  /** How many keys are held, for tests; no route calls it. */
  count(): number {
    return Number(this.#sql.exec("SELECT COUNT(*) AS n FROM idempotency").one().n);
  }
}
