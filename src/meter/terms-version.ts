// The newest version of the customer's terms a meter has seen (issue 13): the meter is the authority
// on the terms it enforces. Every consume, record and reserve carries the version of the snapshot
// its terms (allowance, period) were read from, `{customer, catalog}` (domain/version.ts); a write
// that changes the customer pushes its new version (write/commit.ts). Versions compare
// componentwise, like minVersion: a call is stale when EITHER component is lower than the newest
// seen, and is then refused (stale_terms) instead of decided on terms the meter knows are old; the
// Worker re-reads the snapshot with the newest version as minVersion and retries (routes/usage.ts).
//
// Kept in the meter's SQLite (schema version 4, table terms_version) so that it survives a restart
// or an eviction; cached in memory, since every call reads it and only a newer version writes it.
import type { VersionToken } from "../domain/version";

export type TermsVersion = VersionToken;

export const NO_TERMS_VERSION: TermsVersion = { customer: 0, catalog: 0 };

/** Whether `a` holds everything `b` does: both components >=. */
export const termsAtLeast = (a: TermsVersion, b: TermsVersion): boolean =>
  a.customer >= b.customer && a.catalog >= b.catalog;

/** The componentwise maximum: the newest of each part either has seen. */
export const newestOf = (a: TermsVersion, b: TermsVersion): TermsVersion => ({
  customer: Math.max(a.customer, b.customer),
  catalog: Math.max(a.catalog, b.catalog),
});

export class TermsWatermark {
  readonly #sql: SqlStorage;
  #held: TermsVersion | null = null;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /** The newest version seen (0.0 before any call or push). */
  get newest(): TermsVersion {
    if (this.#held === null) {
      const row = this.#sql.exec("SELECT customer_rev, catalog_rev FROM terms_version WHERE id = 1").toArray()[0];
      this.#held = row ? { customer: Number(row.customer_rev), catalog: Number(row.catalog_rev) } : NO_TERMS_VERSION;
    }
    return this.#held;
  }

  /**
   * Learns `v`: the newest version becomes the componentwise maximum of both. Answers whether `v`
   * is current, i.e. holds everything seen before it (a stale `v` still teaches the meter the part
   * of it that is newer: "3.1" after "2.2" leaves "3.2", and the caller must come back with that).
   * Synchronous: the caller decides in the same turn, with no await in between.
   */
  observe(v: TermsVersion, now: number): { current: boolean; newest: TermsVersion } {
    const before = this.newest;
    const current = termsAtLeast(v, before);
    const newest = newestOf(before, v);
    if (newest.customer !== before.customer || newest.catalog !== before.catalog) {
      const update = "UPDATE terms_version SET customer_rev = ?, catalog_rev = ?, updated_at = ? WHERE id = 1";
      this.#sql.exec(update, newest.customer, newest.catalog, now);
      this.#held = newest;
    }
    return { current, newest };
  }

  /**
   * Forgets the customer revision seen: for a customer id that was deleted, whose revisions start
   * again at 1 if it is created anew. The catalog revision never goes back, so it is kept.
   */
  resetCustomer(now: number): void {
    this.#sql.exec("UPDATE terms_version SET customer_rev = 0, updated_at = ? WHERE id = 1", now);
    this.#held = { customer: 0, catalog: this.newest.catalog };
  }
}
