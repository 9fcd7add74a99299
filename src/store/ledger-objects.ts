// The raw usage ledger in R2 (binding LEDGER): one immutable NDJSON object per batch a meter flushed,
//   ledger/<customerId>/<yyyy-mm-dd>/<meterId>/<firstSeq>-<lastSeq>.ndjson
// (seqs zero-padded, so a listing is in seq order). The day is the UTC day the meter sealed the batch
// (meter/ledger.ts), stored with it, so a retried flush writes the same key with the same bytes: R2 keeps
// one object and nothing is counted twice. A reader deduplicates on (meterId, seq) anyway, the key of
// an event, so even two objects that overlapped would not double count.
//
// R2 key prefixes are written down here, like KV's in store/kv.ts: ledger/ for the meters' batches,
// archive/ for the cron's retention (store/retention.ts).
import type { MeterPeriod } from "../meter/protocol";
import type { LedgerEntry } from "./usage-ledger";

const SEQ_DIGITS = 12;
const LIST_PAGE = 1000; // R2's maximum keys per list call

/** One line of a ledger object: an event (or a period's close) as the meter queued it. */
export interface LedgerLine {
  customerId: string;
  meterId: string;
  seq: number;
  kind: string;
  feature: string;
  amount: number;
  periodStart: number;
  periodEnd: number | null;
  occurredAt: number;
  idempotencyKey: string | null;
  /** The entity inside the customer the usage was for (absent: the customer as a whole). */
  entityId?: string;
}

/** The UTC day of an instant, as the ledger's keys name it. */
export const ledgerDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

const pad = (seq: number) => String(seq).padStart(SEQ_DIGITS, "0");

export const ledgerPrefix = (customerId: string) => `ledger/${customerId}/`;

export function ledgerKey(customerId: string, day: string, meterId: string, first: number, last: number): string {
  return `${ledgerPrefix(customerId)}${day}/${meterId || "unnamed"}/${pad(first)}-${pad(last)}.ndjson`;
}

/** The object's body: one JSON line per entry, in seq order. Deterministic, so a retry writes the same bytes. */
export function ledgerBody(customerId: string, entries: LedgerEntry[]): string {
  return entries.map((e) => `${JSON.stringify(ledgerLine(customerId, e))}\n`).join("");
}

function ledgerLine(customerId: string, e: LedgerEntry): LedgerLine {
  const p: MeterPeriod = e.period;
  return {
    customerId,
    meterId: e.meterId,
    seq: e.seq,
    kind: e.kind,
    feature: e.feature,
    amount: e.amount,
    periodStart: p.start,
    periodEnd: p.end,
    occurredAt: e.occurredAt,
    idempotencyKey: e.idempotencyKey,
    ...(e.entityId === undefined ? {} : { entityId: e.entityId }),
  };
}

/** Writes one batch; resolves only when R2 acknowledged it (the caller then drops the rows). */
export async function putLedgerBatch(bucket: R2Bucket, key: string, body: string): Promise<void> {
  await bucket.put(key, body, { httpMetadata: { contentType: "application/x-ndjson" } });
}

/**
 * Every line of the customer's objects sealed from day `fromDay` through day `toDay` (inclusive), in
 * key order, each event once by (meterId, seq). Lists a page of keys at a time: memory is one object
 * and one page of keys (plus the seen set of the keys' events, bounded by the days asked for).
 */
export async function* ledgerLines(
  bucket: R2Bucket,
  customerId: string,
  fromDay: string,
  toDay: string,
): AsyncGenerator<LedgerLine> {
  const prefix = ledgerPrefix(customerId);
  const seen = new Set<string>();
  let cursor: string | undefined;
  // startAfter the day before fromDay's first key: "yyyy-mm-dd" sorts before "yyyy-mm-dd/...".
  const startAfter = `${prefix}${fromDay}`;
  for (;;) {
    const page = await bucket.list({ prefix, startAfter: cursor ? undefined : startAfter, cursor, limit: LIST_PAGE });
    for (const o of page.objects) {
      if (o.key.slice(prefix.length, prefix.length + 10) > toDay) return;
      const body = await bucket.get(o.key);
      if (!body) continue; // deleted since the listing
      for (const raw of (await body.text()).split("\n")) {
        if (raw === "") continue;
        const line = JSON.parse(raw) as LedgerLine;
        const id = `${line.meterId}:${line.seq}`;
        if (seen.has(id)) continue;
        seen.add(id);
        yield line;
      }
    }
    if (!page.truncated) return;
    cursor = page.cursor;
  }
}
