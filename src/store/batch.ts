// db.batch with a row type per statement. D1 types a batch with one row type for all of its
// statements, so a loader that reads several tables in one round trip (one consistent view) would
// otherwise cast every result. Here each statement carries its row type, and the results come back as
// a tuple of typed row arrays, in order.

/** A prepared statement tagged with the row type of its results (a type only: nothing is checked). */
export interface Query<Row> {
  readonly statement: D1PreparedStatement;
  /** Never set: carries `Row` for batchRows. */
  readonly row?: Row;
}

export const query = <Row>(statement: D1PreparedStatement): Query<Row> => ({ statement });

type RowsOf<Q extends readonly Query<unknown>[]> = {
  -readonly [K in keyof Q]: Q[K] extends Query<infer R> ? R[] : never;
};

/** What a read needs of D1: the database itself, or a session on it (D1 read replication: store/snapshots.ts). */
export type D1Reader = Pick<D1Database, "prepare" | "batch">;

/** One db.batch (atomic, one round trip); each statement's rows typed as its Query says. */
export async function batchRows<const Q extends readonly Query<unknown>[]>(
  db: D1Reader,
  queries: Q,
): Promise<RowsOf<Q>> {
  const results = await db.batch(queries.map((q) => q.statement));
  return results.map((r) => r.results) as RowsOf<Q>;
}
