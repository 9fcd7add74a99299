// The events of a customer write (write/commit.ts): every write to a customer goes through commitWrite,
// whoever makes it (admin, Stripe, the cron, a migration), so this is the one place entitlements.changed,
// subscription.changed and trial.ended are derived. Before the D1 batch, the customers' snapshots as
// checks see them are read; after the recompile, the new ones; the difference is the event. Nothing is
// read while no endpoint is enabled (one D1 query per write).
import { entitlementDiff, isEmptyDiff } from "../domain/entitlement-diff";
import type { Snapshot } from "../domain/types";
import { parseMinVersion, type WriteVersion } from "../domain/version";
import type { Env } from "../env";
import type { Services } from "../services";
import type { AuditEntry } from "../store/audit";
import { anyEnabledEndpoint } from "../store/webhook-endpoints";
import { emitAfterWrite } from "./emit";
import { eventId } from "./ids";
import type { OutboundEvent } from "./types";

export interface WriteWatch {
  /** After the write's recompile: emits its events (logged, never thrown). */
  emit(versions: Record<string, WriteVersion>, audits: AuditEntry[]): Promise<void>;
}

const idle: WriteWatch = { emit: async () => {} };

/** Reads what the customers hold before the write, if anyone listens. */
export async function watchWrite(env: Env, services: Services, customers: string[], now: number): Promise<WriteWatch> {
  try {
    if (customers.length === 0 || !(await anyEnabledEndpoint(env.DB))) return idle;
    const before = new Map<string, Snapshot | null>();
    for (const id of customers) before.set(id, (await services.snapshots.read(env, id, now)).snapshot);
    return { emit: (versions, audits) => emitWriteEvents(env, services, before, versions, audits, now) };
  } catch (err) {
    console.error(JSON.stringify({ msg: "reading snapshots before a write failed; no events", error: String(err) }));
    return idle;
  }
}

async function emitWriteEvents(
  env: Env,
  services: Services,
  before: Map<string, Snapshot | null>,
  versions: Record<string, WriteVersion>,
  audits: AuditEntry[],
  now: number,
): Promise<void> {
  const events: OutboundEvent[] = [];
  for (const [customerId, was] of before) {
    const version = versions[customerId];
    if (!version) continue;
    try {
      const min = parseMinVersion(version.version) ?? undefined;
      const { snapshot } = await services.snapshots.read(env, customerId, now, { minVersion: min });
      const diff = entitlementDiff(was, snapshot, now);
      if (!isEmptyDiff(diff))
        events.push({
          id: await eventId("entitlements.changed", customerId, version.version),
          type: "entitlements.changed",
          customerId,
          at: now,
          data: {
            version: version.version,
            snapshotVersion: snapshot?.version ?? null,
            cause: { kind: "write" },
            ...diff,
          },
        });
    } catch (err) {
      console.error(JSON.stringify({ msg: "entitlement diff failed", customerId, error: String(err) }));
    }
  }
  events.push(...(await subscriptionEvents(audits, versions, now)));
  await emitAfterWrite(env, events, now);
}

type SubscriptionView = { id: string; customerId: string; planId: string; status: string; trialEnd?: string | null };

/** subscription.changed for every subscription audit; trial.ended when a trial stops being one. */
async function subscriptionEvents(audits: AuditEntry[], versions: Record<string, WriteVersion>, now: number) {
  const events: OutboundEvent[] = [];
  for (const a of audits) {
    if (a.entityType !== "subscription" || !a.customerId) continue;
    const before = (a.before ?? null) as SubscriptionView | null;
    const after = (a.after ?? null) as SubscriptionView | null;
    const cause = versions[a.customerId]?.version ?? String(now);
    events.push({
      id: await eventId("subscription.changed", a.entityId, a.action, cause),
      type: "subscription.changed",
      customerId: a.customerId,
      at: now,
      data: { subscriptionId: a.entityId, change: a.action.replace(/^subscription\./, ""), before, after },
    });
    if (before?.status === "trialing" && after && after.status !== "trialing")
      events.push({
        id: await eventId("trial.ended", a.entityId, before.trialEnd ?? ""),
        type: "trial.ended",
        customerId: a.customerId,
        at: now,
        data: {
          subscriptionId: a.entityId,
          planId: after.planId,
          trialEnd: before.trialEnd ?? null,
          status: after.status,
        },
      });
  }
  return events;
}
