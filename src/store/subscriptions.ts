// Subscriptions in D1: read one, write a lifecycle change with an optimistic guard, and the wire form.
import type { LifecycleSubscription } from "../domain/lifecycle";
import { isoOrNull } from "../domain/time";
import { type SubscriptionDbRow, toSubscriptionRow } from "./customer-rows";

/** A subscription row with everything the lifecycle, the webhooks and the wire need. */
export interface SubscriptionRecord extends LifecycleSubscription {
  customerId: string;
  externalUpdatedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export const toSubscriptionRecord = (r: SubscriptionDbRow): SubscriptionRecord => ({
  ...toSubscriptionRow(r),
  customerId: r.customer_id,
  externalId: r.external_id,
  externalUpdatedAt: r.external_updated_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export async function readSubscription(db: D1Database, id: string): Promise<SubscriptionRecord | null> {
  const row = await db.prepare("SELECT * FROM subscriptions WHERE id = ?1").bind(id).first<SubscriptionDbRow>();
  return row ? toSubscriptionRecord(row) : null;
}

// Every column a change may touch, paired with the record field that holds it.
const MUTABLE: [column: string, field: keyof SubscriptionRecord][] = [
  ["plan_id", "planId"],
  ["status", "status"],
  ["trial_end", "trialEnd"],
  ["current_period_start", "currentPeriodStart"],
  ["current_period_end", "currentPeriodEnd"],
  ["billing_anchor", "billingAnchor"],
  ["cancel_at", "cancelAt"],
  ["grace_until", "graceUntil"],
  ["ended_at", "endedAt"],
  ["scheduled_plan_id", "scheduledPlanId"],
  ["scheduled_change_at", "scheduledChangeAt"],
  ["external_updated_at", "externalUpdatedAt"],
];

/**
 * Writes `after` over `before`, only if the row still holds exactly `before` (compare-and-set on every
 * mutable column). Two writers that read the same row (an operator and the cron, two webhook
 * deliveries) cannot both win: the loser's whole D1 batch, audit record included, rolls back with a
 * WriteConflict (see isWriteConflict). Put both statements in the same batch, in this order.
 */
export function updateSubscriptionStatements(
  db: D1Database,
  before: SubscriptionRecord,
  after: SubscriptionRecord,
  now: number,
): D1PreparedStatement[] {
  const n = MUTABLE.length;
  const set = MUTABLE.map(([col], i) => `${col} = ?${i + 2}`).join(", ");
  const same = MUTABLE.map(([col], i) => `${col} IS ?${i + 2 + n}`).join(" AND ");
  const update = db
    .prepare(`UPDATE subscriptions SET ${set}, updated_at = ?${2 + 2 * n} WHERE id = ?1 AND ${same}`)
    .bind(before.id, ...MUTABLE.map(([, f]) => after[f] ?? null), ...MUTABLE.map(([, f]) => before[f] ?? null), now);
  return [update, conflictGuard(db)];
}

/**
 * Fails the batch (so D1 rolls all of it back) when the statement before it changed no row. SQLite's
 * RAISE() only works inside triggers, so the failure is a NOT NULL violation that can only happen here.
 */
export function conflictGuard(db: D1Database): D1PreparedStatement {
  return db.prepare("INSERT INTO meta (key, value) SELECT 'write_conflict_guard', NULL WHERE changes() = 0");
}

/** The error D1 reports when conflictGuard fired: someone else changed the row first. */
export function isWriteConflict(err: unknown): boolean {
  return /NOT NULL constraint failed: meta\.value/.test(
    String(err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : err),
  );
}

/** The wire form: instants as ISO-8601 strings. */
export function subscriptionWire(s: SubscriptionRecord) {
  return {
    id: s.id,
    customerId: s.customerId,
    planId: s.planId,
    status: s.status,
    startedAt: isoOrNull(s.startedAt)!,
    trialEnd: isoOrNull(s.trialEnd),
    currentPeriodStart: isoOrNull(s.currentPeriodStart),
    currentPeriodEnd: isoOrNull(s.currentPeriodEnd),
    billingAnchor: isoOrNull(s.billingAnchor),
    cancelAt: isoOrNull(s.cancelAt),
    graceUntil: isoOrNull(s.graceUntil),
    endedAt: isoOrNull(s.endedAt),
    scheduledPlanId: s.scheduledPlanId,
    scheduledChangeAt: isoOrNull(s.scheduledChangeAt),
    externalId: s.externalId,
    createdAt: isoOrNull(s.createdAt)!,
    updatedAt: isoOrNull(s.updatedAt)!,
  };
}

/** What the audit log records for a subscription: the wire form without the bookkeeping timestamps. */
export function subscriptionAudit(s: SubscriptionRecord) {
  const { createdAt: _c, updatedAt: _u, ...rest } = subscriptionWire(s);
  return rest;
}
