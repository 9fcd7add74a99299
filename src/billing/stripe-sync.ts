// How a Stripe event changes Tollgate's subscription rows. Pure: the rows, the price mappings and the
// event in; the rows to insert and update (or why nothing happens) out. D1 is stripe-webhook.ts's job.
//
// One Stripe subscription becomes one row per mapped item: the first item whose price maps to a base
// plan is the row with external_id = the Stripe subscription id; every add-on item is a row with
// external_id = "<subscription id>/<item id>". An item that disappears ends its row. A customer has one
// base plan at a time: a further base-plan item of the same subscription is skipped (named in the
// audit reason, like an unmapped price), and a Stripe base plan that is live replaces the customer's
// other current base plan (a manual one, or another Stripe subscription's), which ends with this event.
import { isLive } from "../domain/lifecycle";
import type { SubscriptionStatus } from "../domain/types";
import type { SubscriptionRecord } from "../store/subscriptions";
import type { InvoiceEventType, StripeSubscription, SubscriptionEventType } from "./stripe-events";

export interface MappedPlan {
  planId: string;
  kind: "base" | "addon";
}

export interface RowUpdate {
  before: SubscriptionRecord;
  after: SubscriptionRecord;
  /** False when only the provider timestamp moved: no audit record, no recompile. */
  relevant: boolean;
  /** Another base plan of the customer, ended because this subscription's base plan takes its place. */
  replaced?: boolean;
}

export type SyncPlan =
  | { outcome: "stale" } // older than what the rows already reflect
  | { outcome: "unmapped"; prices: string[] } // no item maps to a plan: refuse, so the provider retries
  | {
      outcome: "apply";
      inserts: SubscriptionRecord[];
      updates: RowUpdate[];
      unmapped: string[];
      /** Prices of further base-plan items of the subscription, skipped: one base plan at a time. */
      extraBase: string[];
      /** The subscription's base plan is live after the event: the customer's one base plan. */
      basePlanLive: boolean;
    };

export interface SyncContext {
  /** The event's `created`, in ms. */
  eventMs: number;
  /** Rows already linked to this Stripe subscription (base and add-ons). */
  existing: SubscriptionRecord[];
  graceMs: number;
  /** The customer's current base-plan subscriptions not linked to this Stripe subscription. */
  otherBases?: SubscriptionRecord[];
}

export const addonExternalId = (subscriptionId: string, itemId: string) => `${subscriptionId}/${itemId}`;
const ms = (s: number | null | undefined) => (s === null || s === undefined ? null : s * 1000);

/**
 * Out-of-order guard of subscription events: one older than the newest subscription event applied to
 * these rows never rolls them back. Invoice events do not move this watermark (they carry no
 * subscription state), so a subscription change delivered after a newer invoice still applies.
 */
export function isStale(eventMs: number, rows: SubscriptionRecord[]): boolean {
  return rows.some((r) => r.externalUpdatedAt !== null && r.externalUpdatedAt > eventMs);
}

/**
 * Invoice events have their own watermark: one older than the newest invoice applied is stale (an old
 * payment_failed never undoes a newer paid), and so is one older than the newest subscription event,
 * whose state already reflects it.
 */
function isStaleInvoice(eventMs: number, rows: SubscriptionRecord[]): boolean {
  return isStale(eventMs, rows) || rows.some((r) => r.invoiceUpdatedAt !== null && r.invoiceUpdatedAt > eventMs);
}

export function planSubscriptionEvent(
  type: SubscriptionEventType,
  sub: StripeSubscription,
  customerId: string,
  prices: Record<string, MappedPlan>,
  ctx: SyncContext,
  newId: () => string,
): SyncPlan {
  // "created" is the first state a subscription has: once any later event has created the rows, it is old news.
  if (isStale(ctx.eventMs, ctx.existing) || (type === "customer.subscription.created" && ctx.existing.length > 0))
    return { outcome: "stale" };
  const ending =
    type === "customer.subscription.deleted" || sub.status === "canceled" || sub.status === "incomplete_expired";
  const wanted = new Map<string, string>(); // external id -> plan id
  const unmapped: string[] = [];
  const extraBase: string[] = [];
  for (const item of sub.items.data) {
    const plan = prices[item.price.id] ?? (item.price.product ? prices[item.price.product] : undefined);
    if (!plan) unmapped.push(item.price.id);
    else if (plan.kind === "addon") wanted.set(addonExternalId(sub.id, item.id), plan.planId);
    else if (!wanted.has(sub.id)) wanted.set(sub.id, plan.planId);
    else extraBase.push(item.price.id);
  }
  // Without a mapping Tollgate cannot know what the customer bought; ending needs no mapping.
  if (!ending && wanted.size === 0 && unmapped.length > 0) return { outcome: "unmapped", prices: unmapped };

  const byExternal = new Map(ctx.existing.flatMap((r) => (r.externalId === null ? [] : [[r.externalId, r] as const])));
  const inserts: SubscriptionRecord[] = [];
  const updates: RowUpdate[] = [];
  let basePlanLive = false;
  for (const [externalId, planId] of wanted) {
    const prev = byExternal.get(externalId);
    const state = stateOf(sub, ctx, prev, ending);
    if (externalId === sub.id) basePlanLive = isLive(state.status);
    if (prev) updates.push(update(prev, { ...prev, planId, ...state }));
    else {
      const startedAt = ms(sub.start_date) ?? ctx.eventMs;
      inserts.push({
        id: newId(),
        customerId,
        planId,
        startedAt,
        billingAnchor: ms(sub.billing_cycle_anchor) ?? startedAt,
        invoiceUpdatedAt: null,
        externalId,
        ...state,
        createdAt: ctx.eventMs,
        updatedAt: ctx.eventMs,
      });
    }
  }
  // Rows whose item is gone (or the whole subscription, when it ends) stop granting now.
  for (const prev of ctx.existing) {
    if (prev.externalId !== null && wanted.has(prev.externalId)) continue;
    const ended = prev.status === "canceled" || prev.status === "expired";
    const after = ended
      ? { ...prev, externalUpdatedAt: ctx.eventMs }
      : { ...prev, status: "canceled" as const, endedAt: ctx.eventMs, externalUpdatedAt: ctx.eventMs };
    updates.push(update(prev, after));
  }
  // One base plan at a time: the billing provider's word is the latest, so the others end now.
  if (basePlanLive) {
    for (const other of ctx.otherBases ?? []) {
      const after = {
        ...other,
        status: "canceled" as const,
        endedAt: ctx.eventMs,
        scheduledPlanId: null,
        scheduledChangeAt: null,
      };
      updates.push({ ...update(other, after), replaced: true });
    }
  }
  return { outcome: "apply", inserts, updates, unmapped, extraBase, basePlanLive };
}

/** invoice.payment_failed: live rows become past_due (grace from now); invoice.paid: past_due rows recover. */
export function planInvoiceEvent(type: InvoiceEventType, ctx: SyncContext): SyncPlan {
  if (isStaleInvoice(ctx.eventMs, ctx.existing)) return { outcome: "stale" };
  const updates = ctx.existing.map((prev) => {
    let after: SubscriptionRecord = { ...prev, invoiceUpdatedAt: ctx.eventMs };
    if (type === "invoice.payment_failed" && (prev.status === "active" || prev.status === "trialing"))
      after = { ...after, status: "past_due", graceUntil: ctx.eventMs + ctx.graceMs };
    if (type === "invoice.paid" && prev.status === "past_due") after = { ...after, status: "active", graceUntil: null };
    return update(prev, after);
  });
  return { outcome: "apply", inserts: [], updates, unmapped: [], extraBase: [], basePlanLive: false };
}

type State = Pick<
  SubscriptionRecord,
  | "status"
  | "trialEnd"
  | "currentPeriodStart"
  | "currentPeriodEnd"
  | "cancelAt"
  | "graceUntil"
  | "endedAt"
  | "scheduledPlanId"
  | "scheduledChangeAt"
  | "externalUpdatedAt"
>;

/**
 * Stripe status -> Tollgate status:
 *   trialing, active -> the same;  past_due -> past_due with grace (kept from the first past_due event);
 *   unpaid, paused, incomplete -> past_due with no grace left (no access; a later "active" restores it);
 *   canceled -> canceled;  incomplete_expired -> expired.
 */
function stateOf(
  sub: StripeSubscription,
  ctx: SyncContext,
  prev: SubscriptionRecord | undefined,
  ending: boolean,
): State {
  const item = sub.items.data[0];
  const currentPeriodEnd = ms(sub.current_period_end ?? item?.current_period_end);
  const prevGrace = prev?.status === "past_due" ? prev.graceUntil : null;
  let status: SubscriptionStatus = "active";
  let graceUntil: number | null = null;
  let endedAt: number | null = null;
  if (ending) {
    status = sub.status === "incomplete_expired" ? "expired" : "canceled";
    endedAt = ms(sub.ended_at ?? sub.canceled_at) ?? ctx.eventMs;
  } else if (sub.status === "trialing" || sub.status === "active") status = sub.status;
  else if (sub.status === "past_due") [status, graceUntil] = ["past_due", prevGrace ?? ctx.eventMs + ctx.graceMs];
  else [status, graceUntil] = ["past_due", Math.min(prevGrace ?? ctx.eventMs, ctx.eventMs)]; // unpaid, paused, incomplete
  return {
    status,
    trialEnd: ms(sub.trial_end),
    currentPeriodStart: ms(sub.current_period_start ?? item?.current_period_start),
    currentPeriodEnd,
    cancelAt: ms(sub.cancel_at) ?? (sub.cancel_at_period_end ? currentPeriodEnd : null),
    graceUntil,
    endedAt,
    // Stripe schedules its own changes and tells us when they happen; nothing is scheduled here.
    scheduledPlanId: null,
    scheduledChangeAt: null,
    externalUpdatedAt: ctx.eventMs,
  };
}

const STATE_FIELDS = [
  "planId",
  "status",
  "trialEnd",
  "currentPeriodStart",
  "currentPeriodEnd",
  "billingAnchor",
  "cancelAt",
  "graceUntil",
  "endedAt",
  "scheduledPlanId",
  "scheduledChangeAt",
] as const;

function update(before: SubscriptionRecord, after: SubscriptionRecord): RowUpdate {
  return { before, after, relevant: STATE_FIELDS.some((f) => before[f] !== after[f]) };
}
