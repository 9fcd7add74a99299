// Streamed exports: rows produced a page at a time by an async generator, written to the response as
// they come (NDJSON, one JSON object a line, or CSV with a header line), so an export of a million
// rows holds one page in memory, never the whole answer.

export type ExportFormat = "ndjson" | "csv";

const CHUNK_ROWS = 100;

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  ndjson: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8",
};

/** `format=` wins; otherwise an Accept that asks for CSV gets CSV; otherwise NDJSON. */
export function exportFormat(format: ExportFormat | undefined, accept: string | undefined): ExportFormat {
  if (format) return format;
  return accept?.toLowerCase().includes("text/csv") ? "csv" : "ndjson";
}

/**
 * A CSV cell (RFC 4180 quoting). A string a spreadsheet would run as a formula (=, +, -, @, tab,
 * CR first) is prefixed with ', as OWASP advises for CSV exports; numbers are written as they are.
 */
function csvCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v !== "string") return String(v);
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** The rows as a byte stream in `format`; `columns` name the CSV header and the fields of each row. */
export function exportStream<T extends Record<string, unknown>>(
  rows: AsyncIterable<T>,
  format: ExportFormat,
  columns: readonly (keyof T & string)[],
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const it = rows[Symbol.asyncIterator]();
  let headerSent = format !== "csv";
  const line = (row: T) =>
    format === "csv" ? `${columns.map((k) => csvCell(row[k])).join(",")}\r\n` : `${JSON.stringify(row)}\n`;
  return new ReadableStream<Uint8Array>({
    // A chunk of up to CHUNK_ROWS lines per pull: one enqueue per row would cost a promise turn each.
    async pull(controller) {
      let chunk = headerSent ? "" : `${columns.join(",")}\r\n`;
      headerSent = true;
      for (let n = 0; n < CHUNK_ROWS; n++) {
        const next = await it.next();
        if (next.done) {
          if (chunk) controller.enqueue(encoder.encode(chunk));
          return controller.close();
        }
        chunk += line(next.value);
      }
      controller.enqueue(encoder.encode(chunk));
    },
    async cancel() {
      await it.return?.(undefined);
    },
  });
}
