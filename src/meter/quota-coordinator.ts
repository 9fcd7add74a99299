// QuotaCoordinator: one Durable Object per sharded customer (issue 16; domain/leases.ts has the
// arithmetic and the argument). It hands chunks of each (feature, period definition, period)'s
// allowance to the customer's shard meters and keeps, in SQLite, what every shard may hold: the sum
// never exceeds the bound, so no shard can admit past it. It counts nothing itself; the shards do,
// each with its own counters, idempotency keys, reservations and ledger outbox.
//
// A shard that needs more than is unleased makes the coordinator recall the unused part of every
// other shard's lease (RPC to each, in parallel) before it answers; a shard that cannot be reached
// keeps counting as holding its whole lease (under-admission, never over), until it reports.
import { DurableObject } from "cloudflare:workers";
import { configOf } from "../config";
import {
  applyReport,
  DEFAULT_SIZING,
  grantMore,
  type LeaseBook,
  recallTargets,
  renew,
  type ShardReport,
  unleased,
  usedTotal,
} from "../domain/leases";
import type { Env } from "../env";
import { shardStub } from "./locate";
import type { LeaseKey, RenewAnswer, RenewCall, ReturnCall } from "./protocol";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS lease_books (feature TEXT NOT NULL, definition TEXT NOT NULL, period_start INTEGER NOT NULL,
    bound REAL NOT NULL, PRIMARY KEY (feature, definition, period_start));
  CREATE TABLE IF NOT EXISTS lease_claims (feature TEXT NOT NULL, definition TEXT NOT NULL, period_start INTEGER NOT NULL,
    shard INTEGER NOT NULL, seq INTEGER NOT NULL, held REAL NOT NULL, used REAL NOT NULL,
    PRIMARY KEY (feature, definition, period_start, shard));
`;

/** A book with its counts, for tests and debugging. */
export interface BookView extends LeaseBook {
  unleased: number;
  used: number;
}

export class QuotaCoordinator extends DurableObject<Env> {
  /** The shards' namespace. A field (not env.METER directly) so a test can make recalls fail. */
  shards: Env["METER"];
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.shards = env.METER;
    this.#sql = ctx.storage.sql;
    void ctx.blockConcurrencyWhile(async () => {
      this.#sql.exec(SCHEMA);
    });
  }

  /** A shard's report and its need: a grant from what is unleased, or after recalling from the others. */
  async renew(call: RenewCall): Promise<RenewAnswer> {
    const sizing = { ...DEFAULT_SIZING, shards: call.route.shards };
    const first = renew(this.#book(call.key, call.bound), call.route.shard, call.report, call.need, sizing);
    if (!first) return this.#answer(call, 0, false);
    this.#save(call.key, first.book);
    const targets = recallTargets(first.book, call.route.shard);
    if (first.granted > 0 || targets.length === 0) return this.#answer(call, first.granted, false);
    const reports = await Promise.all(targets.map(async (t) => ({ t, report: await this.#recall(call, t) })));
    // Read again: other renews ran while the recalls were out.
    let book = this.#book(call.key, call.bound);
    for (const { t, report } of reports) if (report) book = applyReport(book, t, report).book;
    const again = grantMore(book, call.route.shard, call.report.seq, call.need, sizing);
    this.#save(call.key, again.book);
    // Nothing granted, yet a shard that answered the recall holds unused allowance again (a renew took
    // what the recall freed): the asker tries again. A shard that did not answer is no reason to.
    const unreachable = new Set(reports.filter((r) => !r.report).map((r) => r.t));
    const retry = again.granted === 0 && recallTargets(again.book, call.route.shard).some((t) => !unreachable.has(t));
    return this.#answer(call, again.granted, retry);
  }

  /** A shard gave back what it did not use (its lease expired). */
  async giveBack(call: ReturnCall): Promise<boolean> {
    const book = this.#stored(call.key);
    if (!book) return true; // nothing was ever leased for it (or the period is gone)
    const r = applyReport(book, call.route.shard, call.report);
    if (r.applied) this.#save(call.key, r.book);
    return true;
  }

  /** A (feature, period)'s book, for tests and debugging; no route calls it. */
  async book(key: LeaseKey): Promise<BookView | null> {
    const b = this.#stored(key);
    return b ? { ...b, unleased: unleased(b), used: usedTotal(b) } : null;
  }

  // ---- internals -----------------------------------------------------------------------------

  async #recall(call: RenewCall, shard: number): Promise<ShardReport | null> {
    try {
      const stub = shardStub(this.shards, configOf(this.env), call.customerId, call.route.residency, shard);
      return await stub.recall(call.customerId, call.key);
    } catch (err) {
      // Unreachable: its lease stays counted as held (errs towards under-admission), until it reports.
      console.error(JSON.stringify({ msg: "lease recall failed", shard, error: String(err) }));
      return null;
    }
  }

  #answer(call: RenewCall, granted: number, retry: boolean): RenewAnswer {
    const book = this.#book(call.key, call.bound);
    const othersUsed = usedTotal(book) - (book.claims[call.route.shard]?.used ?? 0);
    const exhausted = granted === 0 && unleased(book) === 0 && recallTargets(book, call.route.shard).length === 0;
    return { granted, unleased: unleased(book), othersUsed, retry, exhausted };
  }

  /** The stored book, its bound the caller's (the newest terms the shards have seen). */
  #book(key: LeaseKey, bound: number): LeaseBook {
    return { ...(this.#stored(key) ?? { claims: {} }), bound };
  }

  #stored(key: LeaseKey): LeaseBook | null {
    const k = [key.feature, key.definition, key.periodStart] as const;
    const head = this.#sql
      .exec("SELECT bound FROM lease_books WHERE feature = ? AND definition = ? AND period_start = ?", ...k)
      .toArray()[0];
    if (!head) return null;
    const claims: LeaseBook["claims"] = {};
    const rows = this.#sql.exec(
      "SELECT shard, seq, held, used FROM lease_claims WHERE feature = ? AND definition = ? AND period_start = ?",
      ...k,
    );
    for (const r of rows) claims[Number(r.shard)] = { seq: Number(r.seq), held: Number(r.held), used: Number(r.used) };
    return { bound: Number(head.bound), claims };
  }

  /** Writes the book; a new period's first write drops the books of the definition's earlier periods. */
  #save(key: LeaseKey, book: LeaseBook): void {
    const k = [key.feature, key.definition, key.periodStart] as const;
    const isNew =
      this.#sql
        .exec("SELECT 1 FROM lease_books WHERE feature = ? AND definition = ? AND period_start = ?", ...k)
        .toArray().length === 0;
    if (isNew) {
      const old = "WHERE feature = ? AND definition = ? AND period_start < ?";
      this.#sql.exec(`DELETE FROM lease_books ${old}`, ...k);
      this.#sql.exec(`DELETE FROM lease_claims ${old}`, ...k);
    }
    this.#sql.exec(
      `INSERT INTO lease_books (feature, definition, period_start, bound) VALUES (?, ?, ?, ?)
       ON CONFLICT (feature, definition, period_start) DO UPDATE SET bound = excluded.bound`,
      ...k,
      book.bound,
    );
    for (const [shard, c] of Object.entries(book.claims))
      this.#sql.exec(
        `INSERT INTO lease_claims (feature, definition, period_start, shard, seq, held, used) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (feature, definition, period_start, shard) DO UPDATE SET seq = excluded.seq, held = excluded.held, used = excluded.used`,
        ...k,
        Number(shard),
        c.seq,
        c.held,
        c.used,
      );
  }
}
