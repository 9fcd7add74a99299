// A meter's idempotency keys: the answer given to each keyed request, kept at least 24 h (the
// promise; IDEMPOTENCY_TTL_MS keeps 48). The same key with the same request replays the answer;
// with another request (another fingerprint) it is a conflict, never a second charge.
import type { MeterResult, UsageAnswer } from "./protocol";

export const IDEMPOTENCY_TTL_MS = 48 * 3600_000; // promised: at least 24 h

export class IdempotencyKeys {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** The earlier answer for `key` (replayed: true), a conflict, or null when the key is new (or none). */
  replay(key: string | null, fingerprint: string): MeterResult | null {
    if (!key) return null;
    const row = this.#sql.exec("SELECT fingerprint, answer FROM idempotency WHERE key = ?", key).toArray()[0];
    if (!row) return null;
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

  /** Forgets keys older than the TTL (a scan: created_at has no index, so the alarm runs this rarely). */
  collect(now: number): void {
    this.#sql.exec("DELETE FROM idempotency WHERE created_at < ?", now - IDEMPOTENCY_TTL_MS);
  }
}
