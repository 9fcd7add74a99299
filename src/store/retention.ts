// Retention (issue 14, docs/storage.md): the cron archives rows older than their retention to R2 and
// deletes them from D1 in bounded pages, so D1 holds a window, not all of time.
//
// - audit_log (AUDIT_RETENTION_DAYS): in id order from the archive mark (archive_marks.through_id); a
//   page is written to R2 as archive/audit_log/<yyyy-mm>/<firstId>-<lastId>.ndjson (one object per
//   month the page touches), then the mark moves and the rows are deleted in one batch. The table's
//   trigger refuses to delete any row above the mark, so the log stays append-only for everything
//   not yet archived. An archived month stays answerable: readArchive (GET /admin/v1/audit/archive).
// - history (HISTORY_RETENTION_DAYS): part, catalog and snapshot history lose the rows that were
//   superseded before the cutoff (the row in force at the cutoff stays, so time travel answers every
//   instant within the retention), and the legacy per-event usage rows lose what is older. Scanned a
//   bounded page at a time from a cursor kept in archive_marks, wrapping at the end.
// - usage_periods (USAGE_RETENTION_DAYS): closed periods that started before the cutoff; the billing
//   export reads D1 only, so an older period is read from its archive object.
//
// Every step is idempotent: a run that dies between the R2 write and the D1 delete writes the same
// objects (same rows, same keys, same bytes) the next time.
import type { AuditDbRow } from "./audit";

const AUDIT_PAGE = 500;
const HISTORY_SCAN = 200; // rows read per page: a snapshot row is up to ~30 KB
const PAGES_PER_RUN = 10;

type Row = Record<string, unknown>;

interface HistoryTable {
  name: string;
  /** The primary key's columns, in order: the scan's keyset and the archive objects' names. */
  key: readonly string[];
  time: string;
  /** History whose newest row at or before an instant is what was in force then: that one is kept. */
  inForce?: { group: string | null; order: string };
  /** Only rows matching this condition on `h` may go (usage_periods: closed periods only). */
  only?: string;
  /** Which retention applies. */
  retention: "historyMs" | "usageMs";
}

// Names are constants (never input): the SQL below is built from them.
export const HISTORY_TABLES: readonly HistoryTable[] = [
  {
    name: "part_history",
    key: ["customer_id", "rev"],
    time: "compiled_at",
    inForce: { group: "customer_id", order: "rev" },
    retention: "historyMs",
  },
  {
    name: "snapshot_history",
    key: ["customer_id", "version"],
    time: "compiled_at",
    inForce: { group: "customer_id", order: "version" },
    retention: "historyMs",
  },
  {
    name: "catalog_history",
    key: ["rev"],
    time: "compiled_at",
    inForce: { group: null, order: "rev" },
    retention: "historyMs",
  },
  { name: "usage_events_legacy", key: ["customer_id", "meter_id", "seq"], time: "occurred_at", retention: "historyMs" },
  // Scanned by rowid: its key holds a nullable period_end, which a keyset comparison cannot order.
  { name: "usage_periods", key: ["rowid"], time: "period_start", only: "h.final = 1", retention: "usageMs" },
];

export interface RetentionReport {
  /** Rows archived to R2 and deleted from D1, per table. */
  archived: Record<string, number>;
  /** True when a table has more to archive than one run's pages: the next run continues. */
  more: boolean;
}

export const archivePrefix = (table: string, month: string) => `archive/${table}/${month}/`;
const monthOf = (ms: number) => new Date(ms).toISOString().slice(0, 7);
// Numbers zero-padded, so a listing of a month is in key order.
const keyName = (r: Row, key: readonly string[]) =>
  key
    .map((k) => (typeof r[k] === "number" ? String(r[k]).padStart(12, "0") : encodeURIComponent(String(r[k]))))
    .join(".");

/** Writes `rows` (in key order) as one NDJSON object per month of their instant. */
async function putByMonth(bucket: R2Bucket, table: string, rows: Row[], time: string, key: readonly string[]) {
  const months = new Map<string, Row[]>();
  for (const r of rows) {
    const m = monthOf(Number(r[time]));
    months.set(m, [...(months.get(m) ?? []), r]);
  }
  for (const [m, group] of months) {
    const [first, last] = [group[0] as Row, group.at(-1) as Row];
    const name = `${archivePrefix(table, m)}${keyName(first, key)}-${keyName(last, key)}.ndjson`;
    const body = group.map((r) => `${JSON.stringify(r)}\n`).join("");
    await bucket.put(name, body, { httpMetadata: { contentType: "application/x-ndjson" } });
  }
}

/** Archives and deletes audit rows older than `cutoff`, up to PAGES_PER_RUN pages. */
export async function archiveAudit(db: D1Database, bucket: R2Bucket, cutoff: number, now: number) {
  let archived = 0;
  for (let p = 0; p < PAGES_PER_RUN; p++) {
    const mark = await db
      .prepare("SELECT through_id FROM archive_marks WHERE name = 'audit_log'")
      .first<{ through_id: number }>();
    const after = mark?.through_id ?? 0;
    const { results } = await db
      .prepare("SELECT * FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2")
      .bind(after, AUDIT_PAGE)
      .all<AuditDbRow>();
    // In id order up to the first row within the retention: ids and instants rise together, nearly.
    const end = results.findIndex((r) => r.at >= cutoff);
    const old = end === -1 ? results : results.slice(0, end);
    const last = old.at(-1);
    if (!last) return { archived, more: false };
    await putByMonth(bucket, "audit_log", old as unknown as Row[], "at", ["id"]);
    await db.batch([
      db
        .prepare(
          `INSERT INTO archive_marks (name, through_id, updated_at) VALUES ('audit_log', ?1, ?2)
           ON CONFLICT (name) DO UPDATE SET through_id = excluded.through_id, updated_at = excluded.updated_at`,
        )
        .bind(last.id, now),
      db.prepare("DELETE FROM audit_log WHERE id > ?1 AND id <= ?2").bind(after, last.id),
    ]);
    archived += old.length;
    if (old.length < AUDIT_PAGE) return { archived, more: false };
  }
  return { archived, more: true };
}

/** Archives and deletes one history table's rows past retention, up to PAGES_PER_RUN scanned pages. */
export async function archiveHistory(db: D1Database, bucket: R2Bucket, t: HistoryTable, cutoff: number, now: number) {
  const cols = t.key.join(", ");
  const params = t.key.map((_, i) => `?${i + 2}`).join(", ");
  const superseded = t.inForce
    ? `EXISTS (SELECT 1 FROM ${t.name} n WHERE ${t.inForce.group ? `n.${t.inForce.group} = h.${t.inForce.group} AND ` : ""}n.${t.inForce.order} > h.${t.inForce.order} AND n.${t.time} <= ?1)`
    : `(${t.only ?? "1"} AND ?1 IS NOT NULL)`; // ?1 named in every form, so the bindings are the same
  let archived = 0;
  for (let p = 0; p < PAGES_PER_RUN; p++) {
    const mark = await db
      .prepare("SELECT cursor FROM archive_marks WHERE name = ?1")
      .bind(t.name)
      .first<{ cursor: string | null }>();
    const cursor = mark?.cursor ? (JSON.parse(mark.cursor) as unknown[]) : null;
    const where = cursor ? `WHERE (${cols}) > (${params})` : "";
    const { results } = await db
      .prepare(
        `SELECT h.*, ${superseded} AS superseded_ FROM (SELECT ${cols === "rowid" ? "rowid, *" : "*"} FROM ${t.name} ${where} ORDER BY ${cols} LIMIT ${HISTORY_SCAN}) h ORDER BY ${cols}`,
      )
      .bind(cutoff, ...(cursor ?? []))
      .all<Row>();
    const old = results
      .filter((r) => Number(r[t.time]) < cutoff && r.superseded_ === 1)
      .map(({ superseded_: _, ...r }) => r);
    const last = results.at(-1);
    // The end of the table: the next scan starts again from the beginning.
    const next = last && results.length === HISTORY_SCAN ? JSON.stringify(t.key.map((k) => last[k])) : null;
    if (old.length > 0) await putByMonth(bucket, t.name, old, t.time, t.key);
    const keys = JSON.stringify(old.map((r) => t.key.map((k) => r[k])));
    const picked = t.key.map((_, i) => `json_extract(value, '$[${i}]')`).join(", ");
    await db.batch([
      db.prepare(`DELETE FROM ${t.name} WHERE (${cols}) IN (SELECT ${picked} FROM json_each(?1))`).bind(keys),
      db
        .prepare(
          `INSERT INTO archive_marks (name, cursor, updated_at) VALUES (?1, ?2, ?3)
           ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
        )
        .bind(t.name, next, now),
    ]);
    archived += old.length;
    if (next === null) return { archived, more: false };
  }
  return { archived, more: true };
}

/** The whole retention pass of one cron run. */
export async function applyRetention(
  db: D1Database,
  bucket: R2Bucket,
  retention: { auditMs: number; historyMs: number; usageMs: number },
  now: number,
): Promise<RetentionReport> {
  const audit = await archiveAudit(db, bucket, now - retention.auditMs, now);
  const report: RetentionReport = { archived: { audit_log: audit.archived }, more: audit.more };
  for (const t of HISTORY_TABLES) {
    const r = await archiveHistory(db, bucket, t, now - retention[t.retention], now);
    report.archived[t.name] = r.archived;
    report.more ||= r.more;
  }
  return report;
}

/** Every archived row of `table` in `month` ("yyyy-mm"), in key order, streamed an object at a time. */
export async function* readArchive(bucket: R2Bucket, table: string, month: string): AsyncGenerator<Row> {
  const prefix = archivePrefix(table, month);
  let cursor: string | undefined;
  for (;;) {
    const page = await bucket.list({ prefix, cursor });
    for (const o of page.objects) {
      const body = await bucket.get(o.key);
      if (!body) continue;
      for (const line of (await body.text()).split("\n")) if (line !== "") yield JSON.parse(line) as Row;
    }
    if (!page.truncated) return;
    cursor = page.cursor;
  }
}
