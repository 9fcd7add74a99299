// A meter's small state in its `meta` table (customer_id, last_seen, flush_failures, and
// schema_version, which meter/schema.ts owns), and the meter's clock built on it.
//
// The clock: the latest instant a caller told the meter (callers carry the Worker's clock, which
// tests inject), moved forward by real time since then. In production this is Date.now(); in tests
// it is the test's clock. The alarm, which no caller drives, reads it to expire reservations.
const LAST_SEEN_WRITE_MS = 60_000;

export class MeterMeta {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  get(key: string): SqlStorageValue {
    const row = this.#sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return row ? (row.value ?? null) : null;
  }

  set(key: string, value: SqlStorageValue): void {
    const upsert = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    this.#sql.exec(upsert, key, value);
  }
}

export class MeterClock {
  readonly #meta: MeterMeta;
  #lastSeen = 0;
  #lastSeenReal = 0;
  #lastSeenStored = 0;

  constructor(meta: MeterMeta) {
    this.#meta = meta;
  }

  /**
   * Every call tells the meter who it is and what time it is (see meter/client.ts for why). Returns
   * the latest instant any caller has told it: the meter's periods never go back in time.
   */
  observe(customerId: string, now: number): number {
    if (this.#lastSeen === 0) {
      this.#lastSeen = Number(this.#meta.get("last_seen") ?? 0);
      if (this.#meta.get("customer_id") === null) this.#meta.set("customer_id", customerId);
    }
    if (now > this.#lastSeen) {
      this.#lastSeen = now;
      // Stored at most once a minute: a write on every call (a check's peek included) costs a storage
      // write each; after a restart the clock resumes from at most a minute back (alarms run that late).
      if (now - this.#lastSeenStored >= LAST_SEEN_WRITE_MS) {
        this.#meta.set("last_seen", now);
        this.#lastSeenStored = now;
      }
    }
    this.#lastSeenReal = Date.now();
    return this.#lastSeen;
  }

  now(): number {
    if (this.#lastSeen === 0) this.#lastSeen = Number(this.#meta.get("last_seen") ?? Date.now());
    return this.#lastSeen + Math.max(0, Date.now() - (this.#lastSeenReal || Date.now()));
  }
}
