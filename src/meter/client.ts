// The Worker's side of the meter: one RPC per call to the customer's Durable Object.
import type { Snapshot } from "../domain/types";
import type { Env } from "../env";
import type { UsageReader } from "../services";
import { meterStub } from "./locate";

/** A check of metered features reads the usage of all of them in one Durable Object call. */
export const meterReader: UsageReader = {
  async used(env: Env, snapshot: Snapshot, items, now) {
    return meterStub(env, snapshot.customerId, snapshot.residency).peek(snapshot.customerId, items, now);
  },
};
