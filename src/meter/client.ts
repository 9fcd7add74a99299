// The Worker's side of the meter: one Durable Object RPC per call to the customer's CustomerMeter.
// Both paths use it: the check path reads usage (peek), the usage routes consume, record, reserve,
// settle and release. No route builds a meter stub itself (meter/locate.ts does, for this client);
// only /readyz pings a fixed probe object directly.
//
// Every call also carries the customer id, although the object is addressed by it: the meter writes
// that id into every ledger row it flushes to D1, also from its alarm, which no caller drives, so
// it keeps the id it is told first (MeterClock.observe). Runtimes since March 2026 expose the name
// as `ctx.id.name` inside the object; moving to it is left for a change of its own, checked on
// jurisdiction namespaces, in the tests' and the bench's workerd and with meters that already exist.
import { shardOf } from "../domain/leases";
import type { Residency } from "../domain/types";
import type { Env } from "../env";
import { meterStub } from "./locate";
import type {
  EntityLimit,
  EntityRead,
  FeatureUsage,
  LeaseRoute,
  MeterResult,
  PeekAnswer,
  PeekExtra,
  PeekItem,
  ReserveCall,
  SeatCall,
  SeatResult,
  SettleCall,
  UsageCall,
} from "./protocol";
import type { TermsVersion } from "./terms-version";

/** Whose meter: the id names the object, the residency picks its jurisdiction. A Snapshot is one. */
export interface MeterOwner {
  customerId: string;
  residency: Residency | null;
  /** A sharded customer's shard meters (domain/leases.ts); absent or 1: one meter. */
  meterShards?: number;
}

type Call<T> = Omit<T, "customerId">;

export class MeterClient {
  /**
   * Usage of the current period of each feature, in one call (a check of many features reads them at
   * once), and the newest terms version the meter holds; `termsVersion` is the reader's snapshot's.
   */
  peek(
    env: Env,
    owner: MeterOwner,
    items: PeekItem[],
    now: number,
    termsVersion?: TermsVersion,
    extra?: PeekExtra,
  ): Promise<PeekAnswer> {
    if (shardsOf(owner) === 1) return stub(env, owner).peek(owner.customerId, items, now, termsVersion, extra);
    // Sharded: one peek per shard, in parallel; usage is their sum, the terms the newest any has seen.
    // Entities live on shard 0 (see usage), so only shard 0 is asked the extras.
    return Promise.all(
      everyShard(owner).map((i) =>
        stub(env, owner, i).peek(owner.customerId, items, now, termsVersion, i === 0 ? extra : undefined),
      ),
    ).then(sumPeeks);
  }

  /**
   * consume (atomic check-and-increment) or record (already happened). Sharded: the idempotency key
   * picks the shard (so a retry reaches the one that remembers it), no key a random one; a gauge
   * stays on shard 0, unleased (low rate, negative amounts), and so does a call that draws on a credit
   * balance (or consumes a credits feature): balances are not leased, so they live on shard 0 alone and
   * one balance decides, never one per shard. A call for an entity goes to shard 0, leased like any
   * shard's: an entity's counters and seats live there, so its bound and the pooled one decide together.
   */
  usage(env: Env, owner: MeterOwner, call: Call<UsageCall>): Promise<MeterResult> {
    const unleased = call.gauge || call.credit !== undefined || call.topUps !== undefined;
    const lease = unleased ? undefined : leaseRoute(owner, call.idempotencyKey, call.entity ? 0 : undefined);
    return stub(env, owner, lease?.shard).usage({ customerId: owner.customerId, ...call, lease });
  }

  /** Assigns a seat to an entity, on shard 0 (where a sharded customer's entities live). */
  assignSeat(env: Env, owner: MeterOwner, call: Call<SeatCall>): Promise<SeatResult> {
    return stub(env, owner).assignSeat({ customerId: owner.customerId, ...call });
  }

  releaseSeat(env: Env, owner: MeterOwner, call: Call<SeatCall>): Promise<SeatResult> {
    return stub(env, owner).releaseSeat({ customerId: owner.customerId, ...call });
  }

  /** An entity's seats and its usage against the given per-entity limits. */
  entity(env: Env, owner: MeterOwner, id: string, limits: EntityLimit[], now: number): Promise<EntityRead> {
    return stub(env, owner).entity(owner.customerId, id, limits, now);
  }

  reserve(env: Env, owner: MeterOwner, call: Call<ReserveCall>): Promise<MeterResult> {
    // A gauge's reservations stay with its counter, on shard 0, unleased (as its consumes).
    const lease = call.terms.reset === "none" ? undefined : leaseRoute(owner, call.idempotencyKey);
    return stub(env, owner, lease?.shard).reserve({ customerId: owner.customerId, ...call, lease });
  }

  /** Settles on the shard the reservation id names (meter/customer-meter.ts reservationPrefix). */
  settle(env: Env, owner: MeterOwner, call: Call<SettleCall>): Promise<MeterResult> {
    return stub(env, owner, reservationShard(call.reservationId)).settle({ customerId: owner.customerId, ...call });
  }

  release(env: Env, owner: MeterOwner, call: Call<SettleCall>): Promise<MeterResult> {
    return stub(env, owner, reservationShard(call.reservationId)).release({ customerId: owner.customerId, ...call });
  }

  /** A write changed the customer's terms: every shard refuses calls with older ones from now on. */
  async advanceTerms(env: Env, owner: MeterOwner, version: TermsVersion, now: number): Promise<TermsVersion> {
    const all = everyShard(owner).map((i) => stub(env, owner, i).advanceTerms(owner.customerId, version, now));
    return newestOf(await Promise.all(all));
  }

  /** The customer was deleted: a customer created again under its id starts its revisions from 1. */
  async forgetCustomerTerms(env: Env, owner: MeterOwner, now: number): Promise<TermsVersion> {
    const all = everyShard(owner).map((i) => stub(env, owner, i).forgetCustomerTerms(now));
    return newestOf(await Promise.all(all));
  }
}

const stub = (env: Env, owner: MeterOwner, shard = 0) => meterStub(env, owner.customerId, owner.residency, shard);

const shardsOf = (owner: MeterOwner): number => Math.max(1, owner.meterShards ?? 1);
const everyShard = (owner: MeterOwner): number[] => Array.from({ length: shardsOf(owner) }, (_, i) => i);

/** The shard a leased call goes to: `shard` when the call needs that one, else the key's (no key: a random one). */
function leaseRoute(owner: MeterOwner, key: string | null, shard?: number): LeaseRoute | undefined {
  const shards = shardsOf(owner);
  if (shards === 1) return undefined;
  return { shard: shard ?? shardOf(key, shards, Math.random()), shards, residency: owner.residency };
}

/** res_s<i>_...: made on shard i; any other id on shard 0 (unsharded customers, and ids from before). */
export function reservationShard(id: string): number {
  const m = /^res_s(\d{1,2})_/.exec(id);
  return m ? Number(m[1]) : 0;
}

function sumPeeks(answers: PeekAnswer[]): PeekAnswer {
  const usage: Record<string, FeatureUsage> = {};
  for (const a of answers)
    for (const [feature, u] of Object.entries(a.usage)) {
      const had = usage[feature] ?? { used: 0, reserved: 0 };
      usage[feature] = { used: had.used + u.used, reserved: had.reserved + u.reserved };
    }
  const { entity, seats } = answers[0] ?? {};
  return {
    usage,
    termsVersion: newestOf(answers.map((a) => a.termsVersion)),
    ...(entity ? { entity } : {}),
    ...(seats ? { seats } : {}),
  };
}

/** The newest of versions, part by part (a version is older when either part is lower). */
function newestOf(versions: TermsVersion[]): TermsVersion {
  return versions.reduce((a, b) => ({
    customer: Math.max(a.customer, b.customer),
    catalog: Math.max(a.catalog, b.catalog),
  }));
}
