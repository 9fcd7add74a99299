// The lease protocol's arithmetic (domain/leases.ts), pure: the coordinator's chunks, funnel mode and
// recall targets, the shard's admission, the key routing, and a model of the whole protocol driven by
// fast-check through random interleavings of consume, renew, return, recall, lost messages, shard
// crashes, lease expiry and period rollover. After every step: what the coordinator counts as held
// never exceeds the bound, no shard holds more than the coordinator counts for it, and the admitted
// total never exceeds the bound; at the end, once every message is delivered and demand exceeds the
// bound, exactly the bound was admitted (no unit lost).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  applyReport,
  chunk,
  claimOf,
  emptyBook,
  grantMore,
  heldTotal,
  inFunnel,
  type LeaseBook,
  type LeaseSizing,
  leaseBound,
  recallTargets,
  renew,
  type ShardLease,
  type ShardReport,
  shardOf,
  shardsFor,
  shortfall,
  VIRTUAL_SHARDS,
  virtualShard,
} from "../src/domain/leases";

const SIZING: LeaseSizing = { shards: 4, minChunk: 4, maxChunk: 50 };

describe("the coordinator's arithmetic", () => {
  it("grants clamp(unleased / 4N, minChunk, maxChunk), at least the need, at most what is unleased", () => {
    expect(chunk(emptyBook(10_000), SIZING, 1)).toBe(50); // 10,000 / 16 = 625, clamped to 50
    expect(chunk(emptyBook(400), SIZING, 1)).toBe(25); // 400 / 16
    expect(chunk(emptyBook(100), SIZING, 1)).toBe(6); // 100 / 16 = 6.25, floored
    expect(chunk(emptyBook(100), SIZING, 30)).toBe(30); // the need wins over the chunk
    expect(chunk(emptyBook(100), SIZING, 101)).toBe(0); // does not fit
  });

  it("is in funnel mode below N x minChunk and then grants exactly the need", () => {
    const book = emptyBook(15);
    expect(inFunnel(book, SIZING)).toBe(true);
    expect(chunk(book, SIZING, 3)).toBe(3);
    expect(inFunnel(emptyBook(16), SIZING)).toBe(false);
  });

  it("takes only newer reports, and a grant only for the shard's latest message", () => {
    let book = emptyBook(100);
    const r = renew(book, 1, { seq: 2, claim: 0, used: 0 }, 1, SIZING);
    expect(r?.granted).toBe(6);
    book = r?.book ?? book;
    expect(renew(book, 1, { seq: 2, claim: 0, used: 0 }, 1, SIZING)).toBeNull(); // a replayed message
    expect(applyReport(book, 1, { seq: 1, claim: 0, used: 0 }).applied).toBe(false);
    expect(grantMore(book, 1, 1, 1, SIZING).granted).toBe(0); // for an older message
    expect(heldTotal(book)).toBe(6);
  });

  it("recalls from the other shards that hold more than they used", () => {
    let book: LeaseBook = emptyBook(100);
    book = applyReport(book, 0, { seq: 1, claim: 10, used: 10 }).book;
    book = applyReport(book, 1, { seq: 1, claim: 10, used: 3 }).book;
    book = applyReport(book, 2, { seq: 1, claim: 5, used: 0 }).book;
    expect(recallTargets(book, 2)).toEqual([1]);
    expect(recallTargets(book, 0)).toEqual([1, 2]);
  });

  it("bounds leases by the limit, or limit + cap; nothing bounds an unlimited or uncapped soft limit", () => {
    expect(leaseBound({ limit: 10, overage: "block", overageCap: null })).toBe(10);
    expect(leaseBound({ limit: 10, overage: "allow", overageCap: 5 })).toBe(15);
    expect(leaseBound({ limit: 10, overage: "allow", overageCap: null })).toBeNull();
    expect(leaseBound({ limit: null, overage: "block", overageCap: null })).toBeNull();
  });

  it("sizes shards from a target rate at ~600/s each", () => {
    expect(shardsFor(500)).toBe(1);
    expect(shardsFor(5000)).toBe(9);
    expect(shardsFor(1_000_000)).toBe(64);
  });
});

describe("the shard's side", () => {
  it("admits q when used + reserved + q fits in its lease, and claims at least its use", () => {
    const lease: ShardLease = { granted: 10, seq: 1, bound: 100 };
    expect(shortfall(lease, 7, 2, 1)).toBe(0);
    expect(shortfall(lease, 7, 2, 3)).toBe(2);
    expect(claimOf(lease, 4, 0)).toBe(10);
    expect(claimOf(lease, 12, 1)).toBe(13);
  });

  it("routes a key to one shard by hash over the virtual shards; no key: the random draw", () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 2, max: 64 }), (key, n) => {
        const s = shardOf(key, n, 0.5);
        expect(s).toBe(virtualShard(key) % n);
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThan(n);
        expect(virtualShard(key)).toBeLessThan(VIRTUAL_SHARDS);
      }),
    );
    expect(shardOf(null, 4, 0.99)).toBe(3);
    expect(shardOf("k", 1, 0.5)).toBe(0);
  });
});

// ---- the protocol model --------------------------------------------------------------------

type Msg =
  | { kind: "renew"; shard: number; report: ShardReport; need: number }
  | { kind: "report"; shard: number; report: ShardReport }
  /** The coordinator's recall RPCs for a renew it could not grant, then its grant: one step, whose answers it awaits. */
  | { kind: "recall"; shard: number; seq: number; need: number; targets: number[] }
  | { kind: "grant"; shard: number; seq: number; granted: number };

interface Shard {
  lease: ShardLease;
  used: number;
  /** Consumes waiting for the shard's renew (a shard asks before it denies). */
  waiting: number[];
  /** The seq of the renew in flight, if any. */
  asking: number | null;
}

class Model {
  book: LeaseBook;
  shards: Shard[];
  inflight: Msg[] = [];
  admitted = 0;

  constructor(
    readonly bound: number,
    readonly sizing: LeaseSizing,
  ) {
    this.book = emptyBook(bound);
    this.shards = Array.from({ length: sizing.shards }, () => ({
      lease: { granted: 0, seq: 0, bound },
      used: 0,
      waiting: [],
      asking: null,
    }));
  }

  #at(i: number): Shard {
    const s = this.shards[i];
    if (!s) throw new Error(`no shard ${i}`);
    return s;
  }

  consume(i: number, q: number): void {
    const s = this.#at(i);
    if (shortfall(s.lease, s.used, 0, q) === 0) {
      s.used += q;
      this.admitted += q;
      return;
    }
    s.waiting.push(q);
    this.#ask(i);
  }

  #ask(i: number): void {
    const s = this.#at(i);
    if (s.asking !== null || s.waiting.length === 0) return;
    s.lease = { ...s.lease, seq: s.lease.seq + 1 };
    s.asking = s.lease.seq;
    const need = shortfall(s.lease, s.used, 0, s.waiting[0] ?? 0);
    this.inflight.push({ kind: "renew", shard: i, report: this.#report(i), need });
  }

  #report(i: number): ShardReport {
    const s = this.#at(i);
    return { seq: s.lease.seq, claim: claimOf(s.lease, s.used, 0), used: s.used };
  }

  /** The shard gives back what it has not used (expiry or recall), and says so. */
  giveBack(i: number): ShardReport {
    const s = this.#at(i);
    s.lease = { ...s.lease, granted: s.used, seq: s.lease.seq + 1 };
    return this.#report(i);
  }

  expire(i: number): void {
    this.inflight.push({ kind: "report", shard: i, report: this.giveBack(i) });
  }

  deliver(n: number): void {
    if (this.inflight.length === 0) return;
    const [m] = this.inflight.splice(n % this.inflight.length, 1);
    if (!m) return;
    if (m.kind === "renew") {
      const r = renew(this.book, m.shard, m.report, m.need, this.sizing);
      if (!r) {
        this.#answer(m.shard, m.report.seq, 0); // stale: nothing for it
        return;
      }
      this.book = r.book;
      const targets = recallTargets(this.book, m.shard);
      if (r.granted > 0 || targets.length === 0) this.#answer(m.shard, m.report.seq, r.granted);
      else this.inflight.push({ kind: "recall", shard: m.shard, seq: m.report.seq, need: m.need, targets });
    } else if (m.kind === "recall") {
      // Each recall RPC may fail (bit t of n): that shard keeps counting as holding its lease.
      for (const [k, t] of m.targets.entries())
        if (((n >> k) & 1) === 0) this.book = applyReport(this.book, t, this.giveBack(t)).book;
      const r = grantMore(this.book, m.shard, m.seq, m.need, this.sizing);
      this.book = r.book;
      this.#answer(m.shard, m.seq, r.granted);
    } else if (m.kind === "report") {
      this.book = applyReport(this.book, m.shard, m.report).book;
    } else {
      this.#granted(m.shard, m.seq, m.granted);
    }
  }

  #answer(shard: number, seq: number, granted: number): void {
    this.inflight.push({ kind: "grant", shard, seq, granted });
  }

  /**
   * The answer to the shard's renew: applied only when no newer message of the shard went out since
   * (else void, and the shard asks again); then what waited is admitted, asks again, or is denied.
   */
  #granted(i: number, seq: number, granted: number): void {
    const s = this.#at(i);
    if (s.asking !== seq) return; // the shard crashed since: nobody waits for it
    s.asking = null;
    const current = seq === s.lease.seq;
    if (current) s.lease = { ...s.lease, granted: claimOf(s.lease, s.used, 0) + granted };
    const waiting = s.waiting;
    s.waiting = [];
    for (const q of waiting) {
      if (shortfall(s.lease, s.used, 0, q) === 0) {
        s.used += q;
        this.admitted += q;
      } else if (granted > 0 || !current) s.waiting.push(q); // asks again
      // else denied: the coordinator had nothing, even after recalling
    }
    this.#ask(i);
  }

  /** A crash: every message to or from the shard is lost (its SQLite state is not), and what waited. */
  crash(i: number): void {
    this.inflight = this.inflight.filter((m) => m.shard !== i || m.kind === "recall");
    this.#at(i).asking = null;
    this.#at(i).waiting = [];
  }

  /** An RPC failed: the message is gone. A shard whose renew failed denies what waited (under-admission). */
  drop(n: number): void {
    if (this.inflight.length === 0) return;
    const m = this.inflight[n % this.inflight.length];
    if (!m || m.kind === "recall") return; // the coordinator's own step; its recall RPCs fail inside it
    this.inflight.splice(n % this.inflight.length, 1);
    const seq = m.kind === "renew" ? m.report.seq : m.kind === "grant" ? m.seq : null;
    const s = this.#at(m.shard);
    if (seq !== null && s.asking === seq) {
      s.asking = null;
      s.waiting = [];
    }
  }

  check(): void {
    expect(heldTotal(this.book)).toBeLessThanOrEqual(this.bound);
    for (const [i, s] of this.shards.entries()) {
      expect(s.used).toBeLessThanOrEqual(s.lease.granted);
      expect(s.lease.granted).toBeLessThanOrEqual(this.book.claims[i]?.held ?? 0);
    }
    expect(this.admitted).toBeLessThanOrEqual(this.bound);
    expect(this.admitted).toBe(this.shards.reduce((t, s) => t + s.used, 0));
  }

  /** Every message delivered (recalls succeeding), in order. */
  settle(): void {
    for (let n = 0; this.inflight.length > 0 && n < 10_000; n++) this.deliver(0);
    expect(this.inflight).toEqual([]);
  }
}

const action = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant("consume" as const), i: fc.nat(), q: fc.integer({ min: 1, max: 9 }) }),
  },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("deliver" as const), n: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop" as const), n: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("crash" as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("expire" as const), i: fc.nat() }) },
);

describe("the lease protocol, over random interleavings", () => {
  it("never over-admits, and admits exactly the bound once demand exceeds it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 120 }),
        fc.array(action, { maxLength: 200 }),
        (shards, bound, actions) => {
          const m = new Model(bound, { shards, minChunk: 2, maxChunk: 20 });
          for (const a of actions) {
            if (a.kind === "consume") m.consume(a.i % shards, a.q);
            else if (a.kind === "deliver") m.deliver(a.n);
            else if (a.kind === "drop") m.drop(a.n);
            else if (a.kind === "crash") m.crash(a.i % shards);
            else if (a.kind === "expire") m.expire(a.i % shards);
            m.check();
          }
          // The end of the period's demand: everything delivered, every shard reports, then one unit at
          // a time on each shard in turn until the bound is reached. Nothing was lost on the way.
          m.settle();
          for (let i = 0; i < shards; i++) m.expire(i);
          m.settle();
          for (let round = 0; m.admitted < bound && round < bound + 1; round++) {
            m.consume(round % shards, 1);
            m.settle();
            m.check();
          }
          expect(m.admitted).toBe(bound);
          m.consume(0, 1);
          m.settle();
          m.check();
          expect(m.admitted).toBe(bound);
        },
      ),
      { numRuns: 200 },
    );
  }, 60_000);

  it("starts over at a period rollover: a lease is for one period", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 80 }), fc.nat({ max: 79 }), (qs, at) => {
        let m = new Model(50, SIZING);
        let admittedBefore = 0;
        for (const [n, q] of qs.entries()) {
          if (n === at) {
            m.settle();
            admittedBefore = m.admitted;
            m = new Model(50, SIZING); // the new period's book and leases
          }
          m.consume(n % 4, q);
          m.settle();
          m.check();
        }
        expect(admittedBefore).toBeLessThanOrEqual(50);
        expect(m.admitted).toBeLessThanOrEqual(50);
      }),
    );
  });
});
