// /admin/v1/usage/export: the billing export (docs/storage.md). Per-customer, per-feature period
// totals of every customer whose periods started in [from, to), streamed as NDJSON (default) or CSV,
// read from D1 a keyset page at a time while the response is written; or, with customerId and
// raw=true, the raw events of those periods for one customer, streamed from the R2 ledger.
import { z } from "@hono/zod-openapi";
import { DAY_MS, iso, isoOrNull } from "../../domain/time";
import { CONTENT_TYPES, type ExportFormat, exportFormat, exportStream } from "../../http/export-stream";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { customerIdParam, errorResponses, instant } from "../../http/schemas";
import { type LedgerLine, ledgerDay, ledgerLines } from "../../store/ledger-objects";
import { type ExportKey, exportPeriods } from "../../store/usage-ledger";
import { adminRoute } from "./route";

const PAGE = 500;
/** Raw events are looked for in the objects flushed up to this long after `to` (closes and late records). */
export const RAW_LATE_MS = 35 * DAY_MS;
/** A raw export reads every object of the customer in its window: at most a year of them per call. */
const RAW_MAX_RANGE_MS = 366 * DAY_MS;

const TOTAL_COLUMNS = ["customerId", "feature", "periodStart", "periodEnd", "total", "final"] as const;
const RAW_COLUMNS = [
  "customerId",
  "meterId",
  "seq",
  "kind",
  "feature",
  "amount",
  "periodStart",
  "periodEnd",
  "occurredAt",
  "idempotencyKey",
  "entityId",
] as const;

const streamed = (description: string) => ({
  description,
  content: {
    "application/x-ndjson": { schema: z.string().describe("One JSON object per line") },
    "text/csv": { schema: z.string().describe("A header line, then one row per line (RFC 4180)") },
  },
});

const exportRoute = adminRoute("admin: usage")("viewer", {
  method: "get",
  path: "/export",
  summary: "Billing export: period totals per customer and feature, or one customer's raw events",
  description:
    "Streams every customer's period totals (from D1) for the periods that started in [from, to): NDJSON by default, " +
    "CSV with format=csv or Accept: text/csv. Each row: customerId, feature, periodStart, periodEnd, total, final " +
    "(false: the running total of a period still open, written at most a minute behind the meter). " +
    "With customerId and raw=true: that customer's raw ledger events of those periods, from R2, each once.",
  request: {
    query: z.object({
      from: instant.describe("Periods that started at or after this instant"),
      to: instant.describe("... and before this one"),
      format: z.enum(["ndjson", "csv"]).optional().describe("Default: NDJSON, or CSV when Accept asks for text/csv"),
      customerId: customerIdParam.optional().describe("raw=true: whose events"),
      raw: z
        .enum(["true", "false"])
        .optional()
        .transform((v) => v === "true")
        .describe("true: the raw events from R2 (needs customerId)"),
    }),
  },
  responses: { 200: streamed("The export, streamed"), ...errorResponses },
});

const invalid = (detail: string, path: string, message: string) =>
  new Problem("validation", detail, { errors: [{ path, message }] });

async function* totals(db: D1Database, from: number, to: number) {
  let after: ExportKey | null = null;
  for (;;) {
    const rows = await exportPeriods(db, from, to, after, PAGE);
    for (const r of rows)
      yield { ...r, periodStart: iso(r.periodStart), periodEnd: isoOrNull(r.periodEnd), final: r.final === 1 };
    const last = rows.at(-1);
    if (!last || rows.length < PAGE) return;
    after = [last.periodStart, last.customerId, last.feature, last.periodEnd ?? -1];
  }
}

async function* rawEvents(bucket: R2Bucket, customerId: string, from: number, to: number) {
  for await (const e of ledgerLines(bucket, customerId, ledgerDay(from), ledgerDay(to + RAW_LATE_MS)))
    if (e.periodStart >= from && e.periodStart < to)
      yield { ...e, periodStart: iso(e.periodStart), periodEnd: isoOrNull(e.periodEnd), occurredAt: iso(e.occurredAt) };
}

export const usageExportRoutes = newRouter().openapi(exportRoute, async (c) => {
  const q = c.req.valid("query");
  if (q.from >= q.to) throw invalid("from must be before to.", "query.from", "must be before to");
  const format: ExportFormat = exportFormat(q.format, c.req.header("Accept"));
  const headers = { "Content-Type": CONTENT_TYPES[format], "Cache-Control": "no-store" };
  if (!q.raw) return c.body(exportStream(totals(c.env.DB, q.from, q.to), format, TOTAL_COLUMNS), 200, headers);
  if (!q.customerId) throw invalid("raw=true needs a customerId.", "query.customerId", "required with raw=true");
  if (q.to - q.from > RAW_MAX_RANGE_MS)
    throw invalid("A raw export spans at most 366 days.", "query.to", "at most 366 days after from");
  const lines = rawEvents(c.env.LEDGER, q.customerId, q.from, q.to) as AsyncIterable<Record<keyof LedgerLine, unknown>>;
  return c.body(exportStream(lines, format, RAW_COLUMNS), 200, headers);
});
