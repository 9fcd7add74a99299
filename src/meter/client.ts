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
import type { Residency } from "../domain/types";
import type { Env } from "../env";
import { meterStub } from "./locate";
import type { MeterResult, PeekAnswer, PeekItem, ReserveCall, SettleCall, UsageCall } from "./protocol";
import type { TermsVersion } from "./terms-version";

/** Whose meter: the id names the object, the residency picks its jurisdiction. A Snapshot is one. */
export interface MeterOwner {
  customerId: string;
  residency: Residency | null;
}

type Call<T> = Omit<T, "customerId">;

export class MeterClient {
  /**
   * Usage of the current period of each feature, in one call (a check of many features reads them at
   * once), and the newest terms version the meter holds; `termsVersion` is the reader's snapshot's.
   */
  peek(env: Env, owner: MeterOwner, items: PeekItem[], now: number, termsVersion?: TermsVersion): Promise<PeekAnswer> {
    return stub(env, owner).peek(owner.customerId, items, now, termsVersion);
  }

  /** consume (atomic check-and-increment) or record (already happened). */
  usage(env: Env, owner: MeterOwner, call: Call<UsageCall>): Promise<MeterResult> {
    return stub(env, owner).usage({ customerId: owner.customerId, ...call });
  }

  reserve(env: Env, owner: MeterOwner, call: Call<ReserveCall>): Promise<MeterResult> {
    return stub(env, owner).reserve({ customerId: owner.customerId, ...call });
  }

  settle(env: Env, owner: MeterOwner, call: Call<SettleCall>): Promise<MeterResult> {
    return stub(env, owner).settle({ customerId: owner.customerId, ...call });
  }

  release(env: Env, owner: MeterOwner, call: Call<SettleCall>): Promise<MeterResult> {
    return stub(env, owner).release({ customerId: owner.customerId, ...call });
  }

  /** A write changed the customer's terms: the meter refuses calls with older ones from now on. */
  advanceTerms(env: Env, owner: MeterOwner, version: TermsVersion, now: number): Promise<TermsVersion> {
    return stub(env, owner).advanceTerms(owner.customerId, version, now);
  }

  /** The customer was deleted: a customer created again under its id starts its revisions from 1. */
  forgetCustomerTerms(env: Env, owner: MeterOwner, now: number): Promise<TermsVersion> {
    return stub(env, owner).forgetCustomerTerms(now);
  }
}

const stub = (env: Env, owner: MeterOwner) => meterStub(env, owner.customerId, owner.residency);
