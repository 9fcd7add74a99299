// CustomerMeter: one Durable Object per customer, the only writer of that customer's usage and the
// only place a consume is decided. SQLite storage; every decision runs synchronously (no await
// between reading and writing a counter), so concurrent requests are serialised and exact.
//
// What it stores (meter/schema.ts): counters (one per metered feature and period definition, for
// that definition's current period; see #counter),
// idempotency keys (meter/idempotency.ts), reservations (meter/reservations.ts), an outbox of
// ledger entries not yet in R2 (meter/ledger.ts), the period totals not yet in D1
// (meter/period-totals.ts), and the newest version of the customer's terms it
// has seen (meter/terms-version.ts): a consume, record or reserve whose terms are older is refused
// with stale_terms, so no decision is made on a limit the meter knows was replaced. An alarm flushes
// the outbox to R2 at least once, as immutable objects named by (customer, day, meter, seq range), so
// a retried flush rewrites the same object and never double counts, nor collides with another meter
// object of the same customer; D1 gets only the period totals, at most once per
// METER_TOTALS_INTERVAL_MS and when a period closes. A failed flush or totals write is retried with
// backoff until it lands. The class holds the decisions; the tables
// are behind those helpers. RPC contract: meter/protocol.ts; the Worker's side: meter/client.ts.
import { DurableObject } from "cloudflare:workers";
import { configOf } from "../config";
import { creditsFor } from "../domain/credits";
import { entityView } from "../domain/entities";
import { type Allowance, fits, headroom } from "../domain/evaluate";
import { leaseBound, type ShardReport, shortfall } from "../domain/leases";
import { periodAt, periodDefinition } from "../domain/periods";
import type { DeniedBy, TopUp } from "../domain/types";
import { formatVersion } from "../domain/version";
import type { Env } from "../env";
import { Entities, type EntityState } from "./entities";
import { IdempotencyKeys } from "./idempotency";
import { LedgerOutbox } from "./ledger";
import { coordinatorStub } from "./locate";
import { MeterClock, MeterMeta } from "./meter-clock";
import { PeriodTotals } from "./period-totals";
import type {
  CounterView,
  CreditAnswer,
  CreditCall,
  EntityLimit,
  EntityPeek,
  EntityRead,
  FeatureUsage,
  LeaseKey,
  LeaseRoute,
  MeterPeriod,
  MeterResult,
  PeekAnswer,
  PeekExtra,
  PeekItem,
  PeriodTerms,
  RenewAnswer,
  ReserveCall,
  SeatCall,
  SeatResult,
  SettleCall,
  UsageAnswer,
  UsageCall,
} from "./protocol";
import { type ClosedState, Reservations } from "./reservations";
import { Rollovers } from "./rollovers";
import { LEDGER_UNNAMED_THROUGH, migrateMeterSchema, UNRECORDED_DEFINITION } from "./schema";
import { LEASE_TTL_MS, type LeaseRow, ShardLeases } from "./shard-leases";
import { type TermsVersion, TermsWatermark } from "./terms-version";
import { type TopUpSplit, TopUps } from "./top-ups";
import { UsageAlerts } from "./usage-alerts";

const COLLECT_INTERVAL_MS = 60_000;
const MAX_BACKOFF_MS = 5 * 60_000;
const CLOSED_RESERVATION_TTL_MS = 7 * 24 * 3600_000;

/** A feature's counter under one period definition, in that definition's current period. */
type Counter = { definition: string; used: number; periodStart: number; periodEnd: number | null };
type Outcome = Pick<UsageAnswer, "allowed" | "reason" | "used" | "deniedBy">;

export class CustomerMeter extends DurableObject<Env> {
  /** The totals' database. A field (not env.DB directly) so a test can inject a failing D1. */
  ledger: D1Database;
  /** The raw ledger's bucket. A field (not env.LEDGER directly) so a test can inject a failing R2. */
  ledgerBucket: R2Bucket;
  readonly #sql: SqlStorage;
  readonly #meta: MeterMeta;
  readonly #clock: MeterClock;
  readonly #outbox: LedgerOutbox;
  readonly #totals: PeriodTotals;
  readonly #keys: IdempotencyKeys;
  readonly #reservations: Reservations;
  readonly #terms: TermsWatermark;
  readonly #alerts: UsageAlerts;
  readonly #topUps: TopUps;
  readonly #rollovers: Rollovers;
  readonly #entities: Entities;
  // The alarm this object has set, kept in memory so a busy meter does not read it back on every
  // call (undefined: not known since the object started; null: none set).
  #alarmAt: number | null | undefined = undefined;
  /** When the alarm last collected garbage (old idempotency keys and closed reservations). */
  #collectedAt = 0;
  /** The coordinator's namespace. A field (not env.QUOTA directly) so a test can make renews fail. */
  coordinator: Env["QUOTA"];
  readonly #leases: ShardLeases;
  /** The renew in flight per lease (JSON of its key): later calls wait for it instead of asking again. */
  readonly #asking = new Map<string, Promise<void>>();
  /** Units the calls short of each lease are waiting for (JSON of its key). */
  readonly #demand = new Map<string, number>();
  /** When the coordinator last said a lease's allowance is all used (JSON of its key; memory only). */
  readonly #exhaustedAt = new Map<string, number>();
  /** Set by #withLease for its step: the coordinator had nothing more, so what does not fit is denied. */
  #leaseShort = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.ledger = env.DB;
    this.ledgerBucket = env.LEDGER;
    this.coordinator = env.QUOTA;
    this.#leases = new ShardLeases(ctx.storage.sql);
    this.#sql = ctx.storage.sql;
    this.#meta = new MeterMeta(this.#sql);
    this.#clock = new MeterClock(this.#meta);
    this.#totals = new PeriodTotals(this.#sql, this.#meta);
    this.#outbox = new LedgerOutbox(this.#sql, this.#meta, this.#totals);
    this.#keys = new IdempotencyKeys(this.#sql);
    this.#reservations = new Reservations(this.#sql);
    this.#terms = new TermsWatermark(this.#sql);
    this.#alerts = new UsageAlerts(this.#sql);
    this.#topUps = new TopUps(this.#sql);
    this.#rollovers = new Rollovers(this.#sql, this.#topUps);
    this.#entities = new Entities(this.#sql);
    void ctx.blockConcurrencyWhile(async () => migrateMeterSchema(this.#sql));
  }

  // ---- RPC methods (every call names the customer: meter/client.ts says why) ---------------------

  /**
   * consume: atomic check-and-increment. record: always recorded, says whether now over the limit.
   * On a sharded customer's shard (call.lease), a consume admits only from the shard's lease; one that
   * does not fit asks the coordinator for more before it is denied (#withLease).
   */
  async usage(call: UsageCall): Promise<MeterResult> {
    return this.#withLease(call, call.mode === "consume", (short) => {
      const p = this.#prelude(call, short);
      if ("early" in p) return p.early;
      const { at, counter, reserved } = p;
      const draw = this.#draw(call, at);
      const entity = this.#entityOf(call, at, reserved);
      const ownTopUps = this.#balances(call.feature, call.topUps, at);
      // A credits feature consumed directly: its open top-ups are drawn first, the rest from the period.
      const split = ownTopUps && call.amount > 0 ? this.#topUps.split(call.feature, ownTopUps, call.amount, at) : null;
      const own = split ? { ...call, amount: split.rest } : call;
      const outcome =
        call.mode === "record"
          ? this.#record(own, counter, reserved, draw, entity)
          : this.#consume(own, counter, reserved, draw, entity);
      if (split && (call.mode === "record" || outcome.allowed)) this.#takeTopUps(call, call.feature, split);
      this.#raiseAlerts(call, counter, outcome);
      const base = this.#leaseAnswer(call, this.#answer(outcome, reserved, call.allowance, counter), counter);
      this.#drawnTopUps(draw, at);
      const full = { ...base, ...this.#topUpAnswer(call.feature, ownTopUps, base, at), ...drawAnswer(draw) };
      const answer = entityAnswer(full, entity, call.feature);
      this.#keys.remember(call.idempotencyKey, call.fingerprint, answer, call.now);
      return { ok: true as const, answer };
    }).then(async (r) => {
      await this.#ensureAlarm(this.#outbox.flushDelay());
      return r;
    });
  }

  /** Holds `amount` units for `ttlSeconds`; they count against the allowance until settled or released. */
  async reserve(call: ReserveCall): Promise<MeterResult> {
    const result = await this.#withLease({ ...call, gauge: false }, true, (short) => {
      const p = this.#prelude(call, short);
      if ("early" in p) return p.early;
      const { at, counter, reserved } = p;
      const entity = this.#entityOf(call, at, reserved);
      const seatless = entity?.seat?.held === false;
      const pooled = fits(call.allowance, counter.used + reserved, call.amount) && !this.#leaseShort;
      const entityOver = entity !== null && !this.#entities.fits(entity);
      const ok = call.entitled && !seatless && pooled && !entityOver;
      const reason = !call.entitled || seatless ? "not_entitled" : ok ? "ok" : "limit_reached";
      const deniedBy: DeniedBy | undefined = !call.entitled
        ? undefined
        : seatless
          ? "seat"
          : pooled && entityOver
            ? "entity_limit"
            : undefined;
      const opened = ok ? this.#reservations.open(call, reservationPrefix(call.lease)) : {};
      const nowReserved = ok ? reserved + call.amount : reserved;
      if (ok && entity) for (const b of entity.bounds) b.reserved += b.amount;
      const outcome = { allowed: ok, reason, used: counter.used, ...(deniedBy ? { deniedBy } : {}) } as const;
      const base = { ...this.#answer(outcome, nowReserved, call.allowance, counter), ...opened };
      const answer = entityAnswer(this.#leaseAnswer({ ...call, gauge: false }, base, counter), entity, call.feature);
      this.#keys.remember(call.idempotencyKey, call.fingerprint, answer, call.now);
      return { ok: true, answer };
    });
    await this.#ensureAlarm(result.ok && result.answer.allowed ? call.ttlSeconds * 1000 : null);
    return result;
  }

  /**
   * What usage() and reserve() do before deciding: observe the caller's clock, replay a known key, refuse
   * stale terms, open the feature's counter with its held reservations, and on a shard ask for more lease
   * when that is short. Either the answer to give now (`early`) or what the decision starts from.
   */
  #prelude(
    call: UsageCall | ReserveCall,
    short: ShortOf,
  ): { early: MeterResult | Need } | { at: number; counter: Counter; reserved: number } {
    const at = this.#clock.observe(call.customerId, call.now);
    const replay = this.#keys.replay(call.idempotencyKey, call.fingerprint, call.now);
    if (replay) return { early: replay };
    const stale = this.#staleTerms(call.termsVersion, call.now);
    if (stale) return { early: stale };
    const counter = this.#counter(call.feature, call.terms, at);
    const reserved = this.#reservations.held(call.feature, call.now);
    const need = short(counter, reserved);
    return need ? { early: need } : { at, counter, reserved };
  }

  /**
   * The coordinator recalls the unused part of this shard's lease (another shard needs it): handed
   * back now, and the answer says what this shard still holds. Null: no lease of that key here.
   */
  async recall(customerId: string, key: LeaseKey): Promise<ShardReport | null> {
    const now = this.#clock.observe(customerId, this.#clock.now());
    const usage = this.#leaseUsage(key, now);
    return usage ? this.#leases.giveBack(key, usage.used, usage.reserved, false) : null;
  }

  /** Charges the actual amount (at most the reserved one) and frees the rest. Settling twice returns the first answer. */
  async settle(call: SettleCall): Promise<MeterResult> {
    return this.#close(call, "settled");
  }

  /** Frees a reservation without charging. Idempotent. */
  async release(call: SettleCall): Promise<MeterResult> {
    return this.#close(call, "released");
  }

  /**
   * A write changed the customer's terms (write/commit.ts pushes its new version): from now on a
   * call with older terms is refused. Only ever advances; answers the newest version held.
   */
  async advanceTerms(customerId: string, version: TermsVersion, now: number): Promise<TermsVersion> {
    this.#clock.observe(customerId, now);
    return this.#terms.observe(version, now).newest;
  }

  /** The customer was deleted: its id may be created again with revisions from 1 (the catalog's are kept). */
  async forgetCustomerTerms(now: number): Promise<TermsVersion> {
    this.#terms.resetCustomer(now);
    return this.#terms.newest;
  }

  /** The newest terms version seen, for tests and debugging; no route calls it. */
  async termsVersion(): Promise<TermsVersion> {
    return this.#terms.newest;
  }

  /**
   * Current usage of the given features: a check's read, and GET /v1/usage's. Rolls counters over
   * lazily like any touch. The reader's snapshot version teaches the meter (a check on newer terms
   * than any consume), and the answer says the newest the meter holds, so a reader on older terms
   * can read its snapshot again.
   */
  async peek(
    customerId: string,
    items: PeekItem[],
    now: number,
    termsVersion?: TermsVersion,
    extra?: PeekExtra,
  ): Promise<PeekAnswer> {
    const at = this.#clock.observe(customerId, now);
    const newest = termsVersion ? this.#terms.observe(termsVersion, now).newest : this.#terms.newest;
    const queued = this.#outbox.added;
    const out: Record<string, FeatureUsage> = {};
    for (const { feature, terms, topUps } of items)
      out[feature] = {
        used: this.#counter(feature, terms, at).used,
        reserved: this.#reservations.held(feature, now),
        ...this.#peekTopUps(feature, terms, topUps, at),
      };
    // A rollover queued the closed period's total: like any ledger entry, it needs a flush (the
    // alarm), or it would wait for the customer's next consume. A read that queued nothing sets none.
    if (this.#outbox.added !== queued) await this.#ensureAlarm(this.#outbox.flushDelay());
    const entity = extra?.entity ? { entity: this.#peekEntity(extra.entity, at) } : {};
    const seats = extra?.seatCounts
      ? { seats: Object.fromEntries(extra.seatCounts.map((f) => [f, this.#entities.assigned(f)])) }
      : {};
    return { usage: out, termsVersion: newest, ...entity, ...seats };
  }

  // ---- entities (meter/entities.ts): seats assigned to named entities, per-entity usage ----------

  /** Assigns a seat of a seats feature to an entity, if one is free; refused on stale terms like a consume. */
  async assignSeat(call: SeatCall): Promise<SeatResult> {
    const at = this.#clock.observe(call.customerId, call.now);
    const stale = this.#staleTerms(call.termsVersion, call.now);
    if (stale && !stale.ok) return { ok: false, error: "stale_terms", detail: stale.detail, newest: stale.newest };
    return { ok: true, answer: this.#entities.assign(call.feature, call.entityId, call.limit, call.entitled, at) };
  }

  /** Frees an entity's seat of a seats feature (idempotent). */
  async releaseSeat(call: SeatCall): Promise<SeatResult> {
    this.#clock.observe(call.customerId, call.now);
    return { ok: true, answer: this.#entities.release(call.feature, call.entityId, call.limit) };
  }

  /** An entity as this meter holds it: its seats, and its usage against the given per-entity limits. */
  async entity(customerId: string, id: string, limits: EntityLimit[], now: number): Promise<EntityRead> {
    const at = this.#clock.observe(customerId, now);
    const usage: EntityRead["usage"] = {};
    for (const [feature, b] of Object.entries(this.#entities.read(id, limits, at)))
      usage[feature] = { used: b.used, periodStart: b.period.start, resetsAt: b.period.end };
    return { seats: this.#entities.seatsOf(id), usage };
  }

  /** Every counter as stored, none rolled over. For tests and debugging: no route calls it (reads use peek). */
  async counters(now: number): Promise<CounterView[]> {
    return this.#sql
      .exec("SELECT feature, definition, used, period_start, period_end FROM counters ORDER BY feature, definition")
      .toArray()
      .map((r) => ({
        feature: String(r.feature),
        definition: String(r.definition),
        used: Number(r.used),
        reserved: this.#reservations.held(String(r.feature), now),
        periodStart: Number(r.period_start),
        periodEnd: r.period_end === null ? null : Number(r.period_end),
      }));
  }

  /**
   * Flushes the outbox and writes the totals now, whatever the interval, for tests (the alarm does
   * the same on its own, the totals at most once per interval); no route calls it.
   */
  async flush(): Promise<{ flushed: number; pending: number }> {
    const flushed = await this.#flush(true);
    return { flushed, pending: this.#outbox.pending() };
  }

  /** Ledger entries not yet in R2, for tests (a failed flush keeps them); no route calls it. */
  async pending(): Promise<number> {
    return this.#outbox.pending();
  }

  /** Liveness probe for /readyz. */
  async ping(): Promise<number> {
    return 1;
  }

  /** Alarms may run more than once: everything here is idempotent. */
  override async alarm(): Promise<void> {
    this.#alarmAt = null; // this one is running; a new one is set below when needed
    const now = this.#clock.now();
    this.#reservations.expire(now);
    this.#collect(now);
    await this.#returnLeases(now);
    if (!(await this.#flushOrRetry())) return;
    // The next reservation to expire, lease to hand back, or totals write (the interval's end); never
    // later than an alarm a call set while this one awaited its flush (ensureAlarm keeps the earlier).
    const due = [this.#reservations.nextExpiry(), this.#leases.nextDue(now), this.#totals.dueAt(now)].filter(
      (t) => t !== null,
    );
    if (due.length > 0) await this.#ensureAlarm(Math.max(0, Math.min(...due) - now));
  }

  // ---- leases (a sharded customer's shard; domain/leases.ts, meter/shard-leases.ts) -------------

  /**
   * Runs `step` (synchronous: replay, terms, counter, decision) until it decides. `step` calls
   * `short(counter, reserved)`, which answers a Need when the call is leased and does not fit in the
   * shard's lease; then the coordinator is asked (the one ask in flight per lease is shared) and the
   * step runs again on the state as it is after the await. When the coordinator has nothing more
   * (or cannot be reached: under-admission, never over), the step runs once more with
   * #leaseShort set, and denies what still does not fit.
   */
  async #withLease(
    call: LeasedCall,
    leased: boolean,
    step: (short: ShortOf) => MeterResult | Need,
  ): Promise<MeterResult> {
    let [mayAsk, asks, waitingFor] = [true, 0, null as string | null];
    try {
      for (let round = 0; ; round++) {
        const ask = mayAsk && asks < MAX_LEASE_ASKS && round < MAX_LEASE_ROUNDS;
        const out = this.#leaseStep(call, leased, ask, step);
        if (!("need" in out)) return out;
        const id = JSON.stringify(out.need.key);
        if (waitingFor === null) {
          // What every call short of this lease needs, so one renew asks for all of them (funnel mode grants exactly that).
          waitingFor = id;
          this.#demand.set(id, (this.#demand.get(id) ?? 0) + call.amount);
        }
        const r = await this.#ask(call, out.need);
        mayAsk = r.again;
        if (r.asked) asks++;
      }
    } finally {
      if (waitingFor !== null) {
        const left = (this.#demand.get(waitingFor) ?? 0) - call.amount;
        if (left > 0) this.#demand.set(waitingFor, left);
        else this.#demand.delete(waitingFor);
      }
    }
  }

  /** One synchronous step of #withLease: `step` with `short` answering whether the call must ask first. */
  #leaseStep(call: LeasedCall, leased: boolean, ask: boolean, step: (short: ShortOf) => MeterResult | Need) {
    {
      this.#leaseShort = false;
      const out = step((counter, reserved) => {
        const key = leased ? this.#leaseKey(call, counter) : null;
        if (!key) return null;
        const lease = this.#leases.get(key.key);
        const fits =
          lease !== null && lease.bound === key.bound && shortfall(lease, counter.used, reserved, call.amount) === 0;
        if (fits) return null;
        if (ask && !this.#exhausted(key, lease, call.now)) return { need: key };
        this.#leaseShort = true;
        return null;
      });
      return out;
    }
  }

  /**
   * The coordinator said, within EXHAUSTED_RECHECK_MS, that nothing is unleased and no reachable shard
   * holds unused allowance: past the limit, a denial does not ask again (one RPC, as unsharded). Only
   * a reservation released or expired on another shard frees anything, and that waits for the recheck.
   */
  #exhausted(need: LeaseNeed, lease: LeaseRow | null, now: number): boolean {
    const at = this.#exhaustedAt.get(JSON.stringify(need.key));
    return at !== undefined && lease?.bound === need.bound && now - at < EXHAUSTED_RECHECK_MS;
  }

  /** The lease a call counts against; null when it is not leased (unsharded, a gauge, unbounded, not entitled). */
  #leaseKey(call: LeasedCall, counter: Counter): LeaseNeed | null {
    if (!call.lease || call.gauge || !call.entitled || call.amount <= 0) return null;
    const bound = leaseBound(call.allowance);
    if (bound === null) return null;
    return { key: { feature: call.feature, definition: counter.definition, periodStart: counter.periodStart }, bound };
  }

  /**
   * Asks the coordinator for what the calls short of this lease lack, or waits for the ask already in
   * flight. again: look again, and ask if still short; false: decide now (deny what does not fit).
   */
  async #ask(call: LeasedCall, need: LeaseNeed): Promise<{ again: boolean; asked: boolean }> {
    const id = JSON.stringify(need.key);
    const inFlight = this.#asking.get(id);
    if (inFlight) {
      await inFlight;
      return { again: true, asked: false };
    }
    const asked = this.#askNow(call, need, this.#demand.get(id) ?? call.amount);
    this.#asking.set(
      id,
      asked.then(() => undefined),
    );
    try {
      return { again: await asked, asked: true };
    } finally {
      this.#asking.delete(id);
    }
  }

  async #askNow(call: LeasedCall, { key, bound }: LeaseNeed, demand: number): Promise<boolean> {
    const route = call.lease;
    const usage = this.#leaseUsage(key, call.now);
    if (!route || !usage) return true; // the period rolled over meanwhile: decide again
    const { report, need } = this.#leases.prepare(
      key,
      route,
      bound,
      usage.used,
      usage.reserved,
      Math.max(demand, call.amount),
    );
    if (need <= 0) return true;
    let answer: RenewAnswer;
    try {
      const coordinator = coordinatorStub(this.coordinator, configOf(this.env), call.customerId, route.residency);
      answer = await coordinator.renew({ customerId: call.customerId, route, key, bound, report, need });
    } catch (err) {
      console.error(JSON.stringify({ msg: "lease renew failed; denying", error: String(err) }));
      return false;
    }
    const applied = this.#leases.applyGrant(key, report, answer, call.now);
    if (applied && answer.granted > 0) await this.#ensureAlarm(LEASE_TTL_MS);
    if (applied && answer.exhausted) this.#exhaustedAt.set(JSON.stringify(key), call.now);
    // Not applied: a recall went out since, so this answer is void; ask again. Nothing granted while
    // other shards still hold unused allowance (they took what a recall freed): ask again too.
    return !applied || answer.granted > 0 || answer.retry;
  }

  /** The counter of a lease's period as it stands (null: the period is over), and what is reserved. */
  #leaseUsage(key: LeaseKey, now: number): { used: number; reserved: number } | null {
    const row = this.#sql
      .exec(
        "SELECT used FROM counters WHERE feature = ? AND definition = ? AND period_start = ?",
        key.feature,
        key.definition,
        key.periodStart,
      )
      .toArray()[0];
    const lease = this.#leases.get(key);
    if (!row && !lease) return null;
    return { used: row ? Number(row.used) : 0, reserved: this.#reservations.held(key.feature, now) };
  }

  /**
   * A leased answer speaks of the whole customer, as far as this shard knows: used adds what the other
   * shards had reported at its last renew, and remaining is a lower bound (what no shard held then,
   * plus what this shard still holds), exact in funnel mode.
   */
  #leaseAnswer(call: LeasedCall, answer: UsageAnswer, counter: Counter): UsageAnswer {
    const need = this.#leaseKey(call, counter);
    const lease = need ? this.#leases.get(need.key) : null;
    if (!lease || answer.limit === null) return answer;
    const used = answer.used + lease.othersUsed;
    const own = Math.max(0, lease.granted - answer.used - answer.reserved);
    const remaining = Math.max(0, Math.min(answer.limit - used - answer.reserved, lease.unleased + own));
    return { ...answer, used, remaining, overage: Math.max(0, used - answer.limit) };
  }

  /** The alarm: leases past their time are handed back, and hand-backs not acknowledged are sent again. */
  async #returnLeases(now: number): Promise<void> {
    for (const row of this.#leases.due(now)) {
      const usage = this.#leaseUsage(row.key, now);
      if (!usage) continue;
      const report = row.expiresAt > 0 ? this.#leases.giveBack(row.key, usage.used, usage.reserved, true) : null;
      const send = report ?? { seq: row.seq, claim: row.granted, used: usage.used };
      try {
        const coordinator = coordinatorStub(
          this.coordinator,
          configOf(this.env),
          String(this.#meta.get("customer_id")),
          row.route.residency,
        );
        await coordinator.giveBack({
          customerId: String(this.#meta.get("customer_id")),
          route: row.route,
          key: row.key,
          report: send,
        });
        this.#leases.acknowledged(row.key, send.seq);
      } catch (err) {
        console.error(JSON.stringify({ msg: "lease hand-back failed; will retry", error: String(err) }));
      }
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  /** A refusal when `v` is older than the newest terms seen (learning what is newer in it); else null. */
  #staleTerms(v: TermsVersion, now: number): MeterResult | null {
    const { current, newest } = this.#terms.observe(v, now);
    if (current) return null;
    const [had, held] = [formatVersion(v.customer, v.catalog), formatVersion(newest.customer, newest.catalog)];
    return { ok: false, error: "stale_terms", detail: `Terms ${had} are older than ${held}.`, newest };
  }

  /** Usage alerts of this call (outbound webhooks): in the same synchronous step as the counter. */
  #raiseAlerts(call: UsageCall, counter: Counter, outcome: Outcome): void {
    const { limit } = call.allowance;
    const c = { feature: call.feature, ...counter };
    const thresholds = configOf(this.env).events.usageThresholds;
    this.#alerts.moved(call.customerId, c, limit, counter.used, outcome.used, thresholds, call.now);
    if (outcome.reason === "limit_reached")
      this.#alerts.limitReached(call.customerId, c, limit, outcome.used, call.now);
  }

  #record(call: UsageCall, counter: Counter, reserved: number, draw: Draw | null, entity: EntityState | null): Outcome {
    let used = counter.used;
    const seatless = entity?.seat?.held === false;
    const entityOver = entity !== null && !this.#entities.fits(entity);
    if (call.occurredAt < counter.periodStart) {
      // Late report for a closed period: it goes to the ledger of that period, not to today's counter.
      const { reset, anchor, anchorAt } = call.terms;
      const occurred = periodAt(reset, anchor, anchorAt, call.occurredAt);
      this.#outbox.add("late", call.feature, call.amount, occurred, call.occurredAt, call.idempotencyKey);
    } else {
      used = this.#apply(call, counter);
      if (entity) this.#entities.apply(entity); // a late record's entity period is over too
    }
    if (draw) this.#applyDraw(call, draw);
    const entitled = call.entitled && (!draw || draw.call.entitled) && !seatless;
    const pooled = fits(call.allowance, used + reserved, 0) && (!draw || fits(draw.call.allowance, draw.after, 0));
    const allowed = entitled && pooled && !entityOver;
    const reason = !entitled ? "not_entitled" : allowed ? "ok" : "limit_reached";
    const deniedBy = seatless ? "seat" : entitled && pooled && entityOver ? "entity_limit" : undefined;
    return { allowed, reason, used, ...(deniedBy ? { deniedBy } : {}) };
  }

  #consume(
    call: UsageCall,
    counter: Counter,
    reserved: number,
    draw: Draw | null,
    entity: EntityState | null,
  ): Outcome {
    if (!call.entitled || (draw && !draw.call.entitled))
      return { allowed: false, reason: "not_entitled", used: counter.used };
    if (entity?.seat?.held === false)
      return { allowed: false, reason: "not_entitled", used: counter.used, deniedBy: "seat" };
    if (this.#leaseShort && call.amount >= 0) return { allowed: false, reason: "limit_reached", used: counter.used };
    // A negative amount (a gauge going down) always fits.
    if (call.amount >= 0 && !fits(call.allowance, counter.used + reserved, call.amount))
      return { allowed: false, reason: "limit_reached", used: counter.used };
    // The credit balance decides in the same synchronous step: both fit, or nothing is applied.
    if (draw && draw.split.rest > 0 && !fits(draw.call.allowance, draw.counter.used + draw.reserved, draw.split.rest))
      return { allowed: false, reason: "limit_reached", used: counter.used };
    // The entity's own limits, in the same step too: the pooled and the per-entity bound hold together.
    if (entity && !this.#entities.fits(entity))
      return { allowed: false, reason: "limit_reached", used: counter.used, deniedBy: "entity_limit" };
    const used = this.#apply(call, counter);
    if (draw) this.#applyDraw(call, draw);
    if (entity) this.#entities.apply(entity);
    return { allowed: true, reason: "ok", used };
  }

  /**
   * The call's entity, with what the call adds to each of its per-entity limits and what the entity's open
   * reservations hold of the call's feature (asked only when the feature has any open: `reserved`); null:
   * the call names none.
   */
  #entityOf(call: UsageCall | ReserveCall, at: number, reserved: number): EntityState | null {
    const e = call.entity;
    if (!e) return null;
    const amounts: Record<string, number> = { [call.feature]: call.amount };
    if (call.credit) amounts[call.credit.feature] = creditsFor(call.amount, call.credit.cost);
    const reservedOf = (f: string) =>
      f === call.feature && reserved > 0 ? this.#reservations.heldBy(f, e.id, call.now) : 0;
    return this.#entities.state(e, amounts, at, reservedOf);
  }

  /** What an entity's open reservations hold of a feature (read only when the feature has any open). */
  #entityHeld(feature: string, id: string, now: number): number {
    return this.#reservations.held(feature, now) > 0 ? this.#reservations.heldBy(feature, id, now) : 0;
  }

  /** A read's entity: the seats it holds, and its usage against each per-entity limit asked about. */
  #peekEntity(e: EntityPeek, at: number): NonNullable<PeekAnswer["entity"]> {
    const seats = Object.fromEntries(e.seats.map((f) => [f, this.#entities.holds(f, e.id)]));
    const used: NonNullable<PeekAnswer["entity"]>["used"] = {};
    for (const [feature, b] of Object.entries(this.#entities.read(e.id, e.limits, at)))
      used[feature] = { used: b.used, reserved: this.#entityHeld(feature, e.id, at), resetsAt: b.period.end };
    return { seats, used };
  }

  /** The credit balance a call with a credit cost draws from, before the draw; null without one. */
  #draw(call: UsageCall, at: number): Draw | null {
    const c = call.credit;
    if (!c) return null;
    const counter = this.#counter(c.feature, c.terms, at);
    const reserved = this.#reservations.held(c.feature, call.now);
    const amount = creditsFor(call.amount, c.cost);
    const topUps = this.#balances(c.feature, c.topUps, at);
    const split =
      topUps && amount > 0 ? this.#topUps.split(c.feature, topUps, amount, at) : { takes: [], rest: amount };
    return { topUps, call: c, counter, reserved, amount, split, after: counter.used, topUpLeft: 0, drawn: 0 };
  }

  /** Draws a split's credits from its top-ups, each into the ledger with the top-up's window as its period. */
  #takeTopUps(call: UsageCall, feature: string, split: TopUpSplit): void {
    this.#topUps.apply(feature, split);
    for (const { topUp, take } of split.takes)
      this.#outbox.add(
        call.mode,
        feature,
        take,
        { start: topUp.from, end: topUp.until },
        call.now,
        call.idempotencyKey,
        { entityId: call.entity?.id },
      );
  }

  /** A credits feature's answer with its top-ups: what is left of them, counted in `remaining` too. */
  #topUpAnswer(feature: string, topUps: TopUp[] | undefined, a: UsageAnswer, now: number) {
    if (!topUps) return {};
    const topUpRemaining = this.#topUps.left(feature, topUps, now);
    return { topUpRemaining, remaining: a.remaining === null ? null : a.remaining + topUpRemaining };
  }

  /**
   * Draws the call's credits from the balance (floored at zero when a gauge gives units back), into the
   * ledger under the credits feature with the call's idempotency key, so the R2 ledger and D1's period
   * totals show every credit drawn in the period it was drawn.
   */
  #applyDraw(call: UsageCall, d: Draw): void {
    if (d.split.takes.length > 0) this.#takeTopUps(call, d.call.feature, d.split);
    const next = Math.max(0, d.counter.used + d.split.rest);
    const update = "UPDATE counters SET used = ? WHERE feature = ? AND definition = ?";
    this.#sql.exec(update, next, d.call.feature, d.counter.definition);
    if (next !== d.counter.used)
      this.#outbox.add(
        call.mode,
        d.call.feature,
        next - d.counter.used,
        periodOf(d.counter),
        call.now,
        call.idempotencyKey,
        { entityId: call.entity?.id },
      );
    d.after = next;
    d.drawn = next - d.counter.used + d.split.takes.reduce((s, t) => s + t.take, 0);
  }

  /** The balance's top-ups left after the call (for its answer). */
  #drawnTopUps(d: Draw | null, now: number): void {
    if (d?.topUps) d.topUpLeft = this.#topUps.left(d.call.feature, d.topUps, now);
  }

  /**
   * What is drawn before a period's allowance: the snapshot's top-ups and the carried balances the meter
   * holds, soonest expiry first (undefined: neither).
   */
  #balances(feature: string, topUps: TopUp[] | undefined, now: number): TopUp[] | undefined {
    const carried = this.#rollovers.open(feature, now);
    if (carried.length === 0) return topUps;
    return [...(topUps ?? []), ...carried].sort((a, b) => (a.until ?? Infinity) - (b.until ?? Infinity));
  }

  /** A read's top-up and carried balances (the counter was touched first, so carries are made). */
  #peekTopUps(feature: string, terms: PeriodTerms, topUps: TopUp[] | undefined, now: number) {
    const carried = terms.rollover ? this.#rollovers.open(feature, now) : [];
    const all = this.#balances(feature, topUps, now);
    if (!all) return {};
    const rolledOver = carried.length > 0 ? { rolledOver: this.#topUps.left(feature, carried, now) } : {};
    return { topUpLeft: this.#topUps.left(feature, all, now), ...rolledOver };
  }

  /**
   * The counter of a feature under the definition of `terms`, in its period at `now`. Counters are
   * rolled over lazily, at the first touch of their feature after their period ended: the closed
   * period's total goes to the ledger and the row goes away. So usage follows the definition: a
   * definition whose period is still open continues its counter (month -> day -> month within one
   * month keeps the month to date), one without an open counter starts from 0, and every unit is
   * counted, and reaches the ledger, in the period of the definition in force when it was used.
   * A counter migrated from meter schema version 1 (no definition recorded) is continued by the
   * first definition whose current period is exactly its period.
   */
  #counter(feature: string, terms: PeriodTerms, now: number): Counter {
    const definition = periodDefinition(terms.reset, terms.anchor, terms.anchorAt);
    const period = periodAt(terms.reset, terms.anchor, terms.anchorAt, now);
    let own: Counter | null = null;
    let unrecorded: Counter | null = null;
    for (const c of this.#counters(feature)) {
      if (c.periodEnd !== null && c.periodEnd <= now) {
        this.#closeCounter(feature, c, now);
        // Unused allowance carries over, under the definition it was counted in (meter/rollovers.ts).
        if (terms.rollover && c.definition === definition)
          this.#rollovers.carry(feature, { start: c.periodStart, end: c.periodEnd, used: c.used }, terms, now);
      } else if (c.definition === definition)
        own = c; // its period, or a later one (a restart lost `now`)
      else if (c.definition === UNRECORDED_DEFINITION && c.periodStart === period.start && c.periodEnd === period.end)
        unrecorded = c;
    }
    if (own) return own;
    if (unrecorded) {
      const adopt = "UPDATE counters SET definition = ? WHERE feature = ? AND definition = ?";
      this.#sql.exec(adopt, definition, feature, UNRECORDED_DEFINITION);
      return { ...unrecorded, definition };
    }
    const insert = "INSERT INTO counters (feature, definition, period_start, period_end, used) VALUES (?, ?, ?, ?, 0)";
    this.#sql.exec(insert, feature, definition, period.start, period.end);
    return { definition, used: 0, periodStart: period.start, periodEnd: period.end };
  }

  #counters(feature: string): Counter[] {
    return this.#sql
      .exec("SELECT definition, used, period_start, period_end FROM counters WHERE feature = ?", feature)
      .toArray()
      .map((r) => ({
        definition: String(r.definition),
        used: Number(r.used),
        periodStart: Number(r.period_start),
        periodEnd: r.period_end === null ? null : Number(r.period_end),
      }));
  }

  /** A counter whose period ended: its total to the ledger (labelled with its own period), the row away. */
  #closeCounter(feature: string, c: Counter, now: number): void {
    this.#outbox.add("close", feature, c.used, periodOf(c), now, null);
    this.#sql.exec("DELETE FROM counters WHERE feature = ? AND definition = ?", feature, c.definition);
    this.#leases.dropBefore(feature, c.definition, c.periodStart + 1); // a lease is for one period
  }

  /** Adds the amount to the counter (gauges floor at zero) and records exactly what was applied. */
  #apply(call: UsageCall, counter: Counter): number {
    const used = counter.used;
    const next = call.gauge ? Math.max(0, used + call.amount) : used + call.amount;
    this.#sql.exec(
      "UPDATE counters SET used = ? WHERE feature = ? AND definition = ?",
      next,
      call.feature,
      counter.definition,
    );
    if (next !== used)
      this.#outbox.add(call.mode, call.feature, next - used, periodOf(counter), call.occurredAt, call.idempotencyKey, {
        entityId: call.entity?.id,
      });
    return next;
  }

  async #close(call: SettleCall, to: ClosedState): Promise<MeterResult> {
    const at = this.#clock.observe(call.customerId, call.now);
    const id = call.reservationId;
    const held = this.#reservations.closable(id, to, call.now);
    if ("ok" in held) return held;
    const amount = to === "settled" ? (call.amount ?? held.amount) : 0;
    const { feature, terms } = held;
    // The amount rules of consume (meter/terms.ts checkAmount); the route cannot apply them, as a
    // settle names the reservation, not the feature.
    if (terms.wholeUnits === true && !Number.isInteger(amount))
      return { ok: false, error: "amount_not_whole", detail: "this feature counts whole units" };
    if (amount > held.amount)
      return { ok: false, error: "amount_exceeds_reservation", detail: `Settle at most the reserved ${held.amount}.` };
    // Charged to the period in which it settles, under the definition it was reserved under: a
    // reservation open across a reset is carried over.
    const counter = this.#counter(feature, terms, at);
    const used = counter.used + amount;
    // A reservation for an entity charges its counter too (what it held fitted its limit when reserved).
    const entity = terms.entity ? this.#entities.state(terms.entity, { [feature]: amount }, at) : null;
    if (amount > 0) {
      const charge = "UPDATE counters SET used = ? WHERE feature = ? AND definition = ?";
      this.#sql.exec(charge, used, feature, counter.definition);
      this.#outbox.add("settle", feature, amount, periodOf(counter), call.now, id, { entityId: terms.entity?.id });
      if (entity) this.#entities.apply(entity);
    }
    this.#reservations.close(id, to, call.now);
    const reserved = this.#reservations.held(feature, call.now);
    const base = this.#answer({ allowed: true, reason: "ok", used }, reserved, terms.allowance, counter);
    const answer = { ...entityAnswer(base, entity, feature), reservationId: id, settled: amount, feature };
    this.#reservations.remember(id, answer);
    await this.#ensureAlarm(this.#outbox.flushDelay());
    return { ok: true, answer };
  }

  #answer({ allowed, reason, used, deniedBy }: Outcome, reserved: number, a: Allowance, counter: Counter): UsageAnswer {
    const { remaining, overage } = headroom(a.limit, used, reserved);
    const period = { periodStart: counter.periodStart, resetsAt: counter.periodEnd };
    const denied = deniedBy ? { deniedBy } : {};
    return { allowed, reason, used, reserved, limit: a.limit, remaining, ...period, overage, ...denied };
  }

  // Garbage collection at most once a minute: a busy meter's alarm runs every few seconds. Each
  // clean-up reads only expired rows (idempotency by its created_at index, meter schema v6).
  #collect(now: number): void {
    if (now - this.#collectedAt < COLLECT_INTERVAL_MS) return;
    this.#reservations.deleteClosedBefore(now - CLOSED_RESERVATION_TTL_MS);
    this.#keys.collect(now);
    this.#alerts.collect(now);
    this.#topUps.collect(now);
    this.#rollovers.collect(now - CLOSED_RESERVATION_TTL_MS);
    this.#entities.collect(now);
    this.#collectedAt = now;
  }

  /** The alarm's flush. On failure, a retry alarm with exponential backoff; false: nothing more to do now. */
  async #flushOrRetry(): Promise<boolean> {
    try {
      await this.#flush();
      this.#meta.set("flush_failures", 0);
      return true;
    } catch (err) {
      const failures = Number(this.#meta.get("flush_failures") ?? 0) + 1;
      this.#meta.set("flush_failures", failures);
      const pending = this.#outbox.pending();
      console.error(JSON.stringify({ msg: "ledger flush failed; will retry", failures, pending, error: String(err) }));
      await this.#setAlarm(Date.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 12)));
      return false;
    }
  }

  /**
   * The ledger's objects and totals name the customer, which the meter learnt from its first call
   * (MeterClock.observe), and this meter object (its id), since the sequence numbers are its own.
   * The outbox goes to R2 first; the totals to D1 when due (a period closed, or the interval passed),
   * or now when `forced`.
   */
  async #flush(forced = false): Promise<number> {
    const id = this.#meta.get("customer_id");
    if (id === null) return 0;
    const [customerId, meterId, now] = [String(id), this.ctx.id.toString(), this.#clock.now()];
    const unnamedThrough = Number(this.#meta.get(LEDGER_UNNAMED_THROUGH) ?? 0);
    const flushed = await this.#outbox.flush(this.ledgerBucket, { customerId, meterId, unnamedThrough }, now);
    const due = this.#totals.dueAt(now);
    if (due !== null && (forced || due <= now)) await this.#totals.write(this.ledger, customerId, meterId, now);
    await this.#alerts.flush(this.env, this.ledger, now);
    return flushed;
  }

  async #ensureAlarm(inMs: number | null): Promise<void> {
    if (inMs === null) return;
    const at = Date.now() + inMs;
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt === null || this.#alarmAt > at) await this.#setAlarm(at);
  }

  async #setAlarm(at: number): Promise<void> {
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}

const periodOf = (c: Counter): MeterPeriod => ({ start: c.periodStart, end: c.periodEnd });

/** Renews per call at most: past them the call is decided on what the shard holds (no livelock under recalls). */
const MAX_LEASE_ASKS = 16;
const EXHAUSTED_RECHECK_MS = 1000;
/** Steps per call at most, waits for another call's renew included. */
const MAX_LEASE_ROUNDS = 256;

/** What a leased decision reads of a consume or reserve call. */
type LeasedCall = Pick<
  UsageCall,
  "customerId" | "feature" | "amount" | "allowance" | "entitled" | "gauge" | "lease" | "now"
>;
type LeaseNeed = { key: LeaseKey; bound: number };
type Need = { need: LeaseNeed };
type ShortOf = (counter: Counter, reserved: number) => Need | null;

/** A reservation made on shard i > 0 names it (res_s<i>_...), so settle and release reach it (meter/client.ts). */
const reservationPrefix = (lease: LeaseRoute | undefined): string =>
  lease && lease.shard > 0 ? `res_s${lease.shard}_` : "res_";

/** A call's draw on a credit balance: the balance's counter and held credits, the credits asked, the balance after. */
type Draw = {
  call: CreditCall;
  /** The balance's top-ups and carried balances, drawn first. */
  topUps: TopUp[] | undefined;
  counter: Counter;
  reserved: number;
  amount: number;
  /** The credits asked, split over the open top-ups (first) and the period's allowance (`rest`). */
  split: TopUpSplit;
  after: number;
  topUpLeft: number;
  /** Credits the call drew (top-ups and period together); 0 until applied. */
  drawn: number;
};

/**
 * An answer for an entity: what it says of the entity (its seat, its usage of the call's feature against
 * its own limit), and `remaining` the smaller of the entity's and the customer's.
 */
function entityAnswer(a: UsageAnswer, e: EntityState | null, feature: string): UsageAnswer {
  if (!e) return a;
  const b = e.bounds.find((x) => x.feature === feature);
  const view = entityView(e.id, e.seat, b && { ...b, resetsAt: b.period.end });
  const left = view.remaining;
  if (left === undefined) return { ...a, entity: view };
  return { ...a, entity: view, remaining: a.remaining === null ? left : Math.min(a.remaining, left) };
}

/** The balance part of an answer (`credits`), or nothing for a feature without a credit cost. */
function drawAnswer(d: Draw | null): { credits?: CreditAnswer } {
  if (!d) return {};
  const { remaining: left, overage } = headroom(d.call.allowance.limit, d.after, d.reserved);
  const remaining = left === null ? null : left + d.topUpLeft;
  const { feature, cost } = d.call;
  const limit = d.call.allowance.limit;
  const period = { periodStart: d.counter.periodStart, resetsAt: d.counter.periodEnd };
  const topUps = d.topUps ? { topUpRemaining: d.topUpLeft } : {};
  const used = d.after;
  return { credits: { feature, cost, drawn: d.drawn, used, limit, remaining, overage, ...period, ...topUps } };
}
