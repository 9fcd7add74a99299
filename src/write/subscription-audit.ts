// Audit records for subscription changes, shared by the admin routes and the cron handler, so a
// change reads the same in the audit log whoever made it.
import type { DueStep } from "../domain/lifecycle";
import { iso } from "../domain/time";
import { type SubscriptionRecord, subscriptionAudit } from "../store/subscriptions";
import type { AuditEntry } from "./commit";

/** One record per due event (e.g. "subscription.trial_expired"), with the instant it was due. */
export function dueAudits(steps: DueStep<SubscriptionRecord>[]): AuditEntry[] {
  return steps.map((step) => ({
    action: `subscription.${step.event}`,
    entityType: "subscription",
    entityId: step.before.id,
    customerId: step.before.customerId,
    before: subscriptionAudit(step.before),
    after: subscriptionAudit(step.after),
    reason: `due at ${iso(step.at)}`,
  }));
}

export function subscriptionChangeAudit(
  action: string,
  before: SubscriptionRecord | null,
  after: SubscriptionRecord,
  reason?: string | null,
): AuditEntry {
  return {
    action: `subscription.${action}`,
    entityType: "subscription",
    entityId: after.id,
    customerId: after.customerId,
    before: before ? subscriptionAudit(before) : null,
    after: subscriptionAudit(after),
    reason: reason ?? null,
  };
}
