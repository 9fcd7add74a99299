// A WHERE clause built from optional filters, with anonymous `?` parameters in order. Every value is
// bound, never spliced into the SQL.
export class SqlFilter {
  readonly #parts: string[] = [];
  readonly params: unknown[] = [];

  /** Adds `sql` when `value` is present; binds `values`, or `value` itself when `sql` has a `?` (none: a fixed condition). */
  when(value: unknown, sql: string, ...values: unknown[]): this {
    if (value === undefined || value === null) return this;
    this.#parts.push(`(${sql})`);
    this.params.push(...(values.length > 0 ? values : sql.includes("?") ? [value] : []));
    return this;
  }

  get sql(): string {
    return this.#parts.length > 0 ? `WHERE ${this.#parts.join(" AND ")}` : "";
  }
}
