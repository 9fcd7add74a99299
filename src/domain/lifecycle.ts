// Subscription lifecycle: the state-transition rules, pure. (subscription, action, now, config) in,
// the new subscription or a refusal reason out. No bindings, no clock reads: routes and the cron
// handler load the row, call this, and write what it returns.
//
// Two kinds of change:
// - actions an operator asks for (change plan, cancel, resume, convert a trial, mark past due, ...);
// - due events that time alone brings (a scheduled plan change, a scheduled cancellation, a trial
//   end, a grace period end, a period end). Snapshots already enforce these as time windows
//   (compile.ts); applyDue() makes the source of record say the same thing, in time order.
import type { SubscriptionRow } from "./compile";
import { periodAt } from "./periods";
import type { SubscriptionStatus } from "./types";

/** A subscription as the lifecycle sees it: the compiler's row plus who manages it. */
export interface LifecycleSubscription extends SubscriptionRow {
  /** The billing provider's id: such a subscription is changed by the provider's webhooks only. */
  externalId: string | null;
}

export interface LifecycleConfig {
  /** How long a past_due subscription keeps access (PAST_DUE_GRACE_DAYS). */
  pastDueGraceMs: number;
}

export const DEFAULT_PAST_DUE_GRACE_DAYS = 7;

export type When = "immediately" | "at_period_end";

export type LifecycleAction =
  | { type: "change_plan"; planId: string; when: When }
  | { type: "undo_scheduled_change" }
  | { type: "cancel"; when: When }
  | { type: "resume" }
  | { type: "convert_trial"; currentPeriodEnd: number | null }
  | { type: "mark_past_due" }
  | { type: "recover" };

export type Refusal =
  | "invalid_transition" // the action makes no sense in the subscription's (current) status
  | "managed_externally" // a billing provider owns this subscription: change it there
  | "same_plan"
  | "no_period_end" // "at period end" needs a current period that ends in the future
  | "cancel_pending" // a cancellation is scheduled at or before the period end
  | "nothing_scheduled"
  | "invalid_period"; // a period end that is not after now

export type DueEvent = "canceled" | "trial_expired" | "grace_ended" | "plan_changed" | "renewed";

export interface DueStep<S extends LifecycleSubscription> {
  event: DueEvent;
  /** When the event was due (not when it was recorded). */
  at: number;
  before: S;
  after: S;
}

export type Transition<S extends LifecycleSubscription> =
  | { ok: true; row: S; due: DueStep<S>[] }
  | { ok: false; reason: Refusal; detail: string };

/** The statuses in which a subscription gives access (store/catalog.ts asks D1 the same question). */
export const LIVE_STATUSES: ReadonlySet<SubscriptionStatus> = new Set(["trialing", "active", "past_due"]);
export const isLive = (status: SubscriptionStatus) => LIVE_STATUSES.has(status);

/**
 * Whether a subscription still counts at `now` (for the one-base-plan rule): not ended and not
 * cancelled, counting an end that is due but not yet recorded (a trial or grace period run out, a
 * cancellation whose time has come: applyDue). One scheduled to end later still counts: it is replaced
 * by changing its plan. store/subscriptions.ts asks D1 the same question (CURRENT_SQL).
 */
export function isCurrentAt(s: LifecycleSubscription, now: number): boolean {
  const { row } = applyDue(s, now);
  return (
    isLive(row.status) && (row.endedAt === null || row.endedAt > now) && (row.cancelAt === null || row.cancelAt > now)
  );
}

/** At most this many due events per call: a subscription left alone for years renews once per period. */
export const MAX_DUE_STEPS = 400;

/**
 * Applies an operator's action. The subscription first catches up with time (applyDue), so an action
 * is judged on the state the snapshot already enforces, not on a record the cron has not reached yet.
 */
export function transition<S extends LifecycleSubscription>(
  sub: S,
  action: LifecycleAction,
  now: number,
  config: LifecycleConfig,
): Transition<S> {
  if (sub.externalId !== null)
    return refuse("managed_externally", "A billing provider manages this subscription; change it there.");
  const { row: s, steps: due } = applyDue(sub, now);
  const result = applyAction(s, action, now, config);
  return typeof result === "string" ? refuse(result, explain(result, s, action)) : { ok: true, row: result, due };
}

/** The action itself, on a subscription that is up to date with time: the changed row, or why not. */
function applyAction<S extends LifecycleSubscription>(
  s: S,
  action: LifecycleAction,
  now: number,
  config: LifecycleConfig,
): S | Refusal {
  const live = isLive(s.status);
  switch (action.type) {
    case "change_plan": {
      if (!live) return "invalid_transition";
      if (action.planId === s.planId) return "same_plan";
      if (action.when === "immediately")
        return { ...s, planId: action.planId, scheduledPlanId: null, scheduledChangeAt: null };
      const end = periodEnd(s, now);
      if (end === null) return "no_period_end";
      if (s.cancelAt !== null && s.cancelAt <= end) return "cancel_pending";
      return { ...s, scheduledPlanId: action.planId, scheduledChangeAt: end };
    }
    case "undo_scheduled_change":
      if (!live) return "invalid_transition";
      return s.scheduledPlanId === null
        ? "nothing_scheduled"
        : { ...s, scheduledPlanId: null, scheduledChangeAt: null };
    case "cancel": {
      if (!live) return "invalid_transition";
      if (action.when === "immediately")
        return { ...s, status: "canceled", endedAt: now, scheduledPlanId: null, scheduledChangeAt: null };
      const end = periodEnd(s, now);
      if (end === null) return "no_period_end";
      if (s.cancelAt !== null && s.cancelAt <= end) return "cancel_pending";
      return { ...s, cancelAt: end };
    }
    case "resume":
      if (!live) return "invalid_transition";
      return s.cancelAt === null ? "nothing_scheduled" : { ...s, cancelAt: null };
    case "convert_trial":
      if (s.status !== "trialing") return "invalid_transition";
      if (action.currentPeriodEnd !== null && action.currentPeriodEnd <= now) return "invalid_period";
      // trial_end is kept as history: the compiler only reads it while the status is trialing.
      return { ...s, status: "active", currentPeriodStart: now, currentPeriodEnd: action.currentPeriodEnd };
    case "mark_past_due":
      if (s.status !== "active") return "invalid_transition";
      return { ...s, status: "past_due", graceUntil: now + config.pastDueGraceMs };
    case "recover":
      if (s.status !== "past_due") return "invalid_transition";
      return { ...s, status: "active", graceUntil: null };
  }
}

/** The end of the current period, if it is still ahead. */
function periodEnd(s: LifecycleSubscription, now: number): number | null {
  return s.currentPeriodEnd !== null && s.currentPeriodEnd > now ? s.currentPeriodEnd : null;
}

/**
 * Applies every event due at or before `now`, earliest first (ties: endings before changes, the
 * order compile.ts uses: a plan change at or after the end never takes effect). Subscriptions a
 * billing provider manages are left alone: the provider's webhooks record their changes.
 */
export function applyDue<S extends LifecycleSubscription>(
  sub: S,
  now: number,
  maxSteps = MAX_DUE_STEPS,
): { row: S; steps: DueStep<S>[] } {
  const steps: DueStep<S>[] = [];
  if (sub.externalId !== null) return { row: sub, steps };
  let s = sub;
  for (let i = 0; i < maxSteps; i++) {
    const next = nextDue(s);
    if (next === null || next.at > now) break;
    const after = applyEvent(s, next.event, next.at);
    steps.push({ event: next.event, at: next.at, before: s, after });
    s = after;
  }
  return { row: s, steps };
}

/** The earliest event this subscription is waiting for, or null. */
export function nextDue(s: LifecycleSubscription): { event: DueEvent; at: number } | null {
  if (!isLive(s.status)) return null;
  // Listed in tie-break order.
  const candidates: [DueEvent, number | null][] = [
    ["canceled", s.cancelAt],
    ["trial_expired", s.status === "trialing" ? s.trialEnd : null],
    // Mirrors compile.ts: past_due without grace_until has no access from the start.
    ["grace_ended", s.status === "past_due" ? (s.graceUntil ?? s.startedAt) : null],
    ["plan_changed", s.scheduledPlanId !== null ? s.scheduledChangeAt : null],
    ["renewed", s.status === "active" && nextPeriodEnd(s) !== null ? s.currentPeriodEnd : null],
  ];
  let best: { event: DueEvent; at: number } | null = null;
  for (const [event, at] of candidates) if (at !== null && (best === null || at < best.at)) best = { event, at };
  return best;
}

function applyEvent<S extends LifecycleSubscription>(s: S, event: DueEvent, at: number): S {
  switch (event) {
    case "canceled":
      return { ...s, status: "canceled", endedAt: at };
    case "trial_expired":
      return { ...s, status: "expired", endedAt: at };
    case "grace_ended":
      // Non-payment past the grace period ends the subscription the way a billing provider's dunning
      // does (Stripe cancels): "canceled", not "expired", which is kept for trials that ran out.
      return { ...s, status: "canceled", endedAt: at };
    case "plan_changed":
      return { ...s, planId: s.scheduledPlanId ?? s.planId, scheduledPlanId: null, scheduledChangeAt: null };
    case "renewed":
      return { ...s, currentPeriodStart: s.currentPeriodEnd, currentPeriodEnd: nextPeriodEnd(s) };
  }
}

/**
 * The end of the period after the current one. A period that is exactly one calendar month (or year)
 * on the billing anchor renews by calendar months (or years) on that anchor (periods.ts clamps the
 * 31st to short months without drifting); any other period renews with the same length in ms.
 * Null when there is nothing to renew (no period, or a period that does not move forward).
 */
export function nextPeriodEnd(
  s: Pick<SubscriptionRow, "currentPeriodStart" | "currentPeriodEnd" | "billingAnchor">,
): number | null {
  const { currentPeriodStart: start, currentPeriodEnd: end } = s;
  if (start === null || end === null || end <= start) return null;
  const anchor = s.billingAnchor ?? start;
  for (const reset of ["month", "year"] as const) {
    const p = periodAt(reset, "billing", anchor, start);
    if (p.start === start && p.end === end) return periodAt(reset, "billing", anchor, end).end;
  }
  return end + (end - start);
}

function refuse(reason: Refusal, detail: string): { ok: false; reason: Refusal; detail: string } {
  return { ok: false, reason, detail };
}

function explain(reason: Refusal, s: LifecycleSubscription, action: LifecycleAction): string {
  switch (reason) {
    case "invalid_transition":
      return `Cannot ${action.type.replaceAll("_", " ")} a subscription that is ${s.status}.`;
    case "same_plan":
      return `The subscription is already on plan '${s.planId}'.`;
    case "no_period_end":
      return "The subscription has no current period ending in the future; choose 'immediately'.";
    case "cancel_pending":
      return "A cancellation is scheduled at or before the period end; resume the subscription first.";
    case "nothing_scheduled":
      return action.type === "resume" ? "No cancellation is scheduled." : "No plan change is scheduled.";
    case "invalid_period":
      return "currentPeriodEnd must be after now.";
    case "managed_externally":
      return "A billing provider manages this subscription.";
  }
}

/** The dates of a subscription as an operator writes them (instants in ms; null when not set). */
export type SubscriptionDates = Pick<
  SubscriptionRow,
  "status" | "startedAt" | "trialEnd" | "currentPeriodStart" | "currentPeriodEnd" | "cancelAt" | "graceUntil"
>;

/**
 * The dates of a new subscription that cannot be, field by field (empty when they all can): an end
 * at or before its start (trial, period, cancellation and grace come after startedAt; a period ends
 * after it starts), and an ending that is already over at `now` on a subscription it would end (a
 * live one's period or cancellation, a trial's end, a past_due grace): the first catch-up would
 * record it as expired or canceled. A subscription that is over (canceled, expired) may carry past
 * dates: it is history, nothing is due on it.
 */
export function impossibleDates(s: SubscriptionDates, now: number): DateError[] {
  const out: DateError[] = [];
  const live = isLive(s.status);
  const check = (field: DateError["field"], due: boolean) => {
    const at = s[field];
    if (at === null) return;
    if (due && at <= now) out.push({ field, message: "must be in the future (after now)" });
    else if (at <= s.startedAt) out.push({ field, message: "must be after startedAt" });
  };
  check("trialEnd", s.status === "trialing");
  const { currentPeriodStart: start, currentPeriodEnd: end } = s;
  if (start !== null && end !== null && end <= start && !(live && end <= now))
    out.push({ field: "currentPeriodEnd", message: "must be after currentPeriodStart" });
  else check("currentPeriodEnd", live);
  check("cancelAt", live);
  check("graceUntil", s.status === "past_due");
  return out;
}

export interface DateError {
  field: "trialEnd" | "currentPeriodEnd" | "cancelAt" | "graceUntil";
  message: string;
}
