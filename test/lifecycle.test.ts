// The pure subscription lifecycle rules: no bindings, no clock.
import { describe, expect, it } from "vitest";
import { subscriptionWindows } from "../src/domain/compile";
import { applyDue, type LifecycleSubscription, nextDue, nextPeriodEnd, transition } from "../src/domain/lifecycle";
import { DAY_MS, T0 } from "./helpers/time";

const MAR1 = Date.parse("2026-03-01T00:00:00.000Z");
const APR1 = Date.parse("2026-04-01T00:00:00.000Z");
const MAY1 = Date.parse("2026-05-01T00:00:00.000Z");
const config = { pastDueGraceMs: 7 * DAY_MS };

function sub(over: Partial<LifecycleSubscription> = {}): LifecycleSubscription {
  return {
    id: "sub_1",
    planId: "pro",
    status: "active",
    startedAt: MAR1,
    trialEnd: null,
    currentPeriodStart: MAR1,
    currentPeriodEnd: APR1,
    billingAnchor: MAR1,
    cancelAt: null,
    graceUntil: null,
    endedAt: null,
    scheduledPlanId: null,
    scheduledChangeAt: null,
    externalId: null,
    ...over,
  };
}

const ok = (t: ReturnType<typeof transition>) => {
  if (!t.ok) throw new Error(`refused: ${t.reason}`);
  return t.row;
};

describe("transition: plan changes", () => {
  it("changes the plan immediately and drops a scheduled change", () => {
    const row = ok(
      transition(
        sub({ scheduledPlanId: "free", scheduledChangeAt: APR1 }),
        { type: "change_plan", planId: "team", when: "immediately" },
        T0,
        config,
      ),
    );
    expect(row).toMatchObject({ planId: "team", scheduledPlanId: null, scheduledChangeAt: null, status: "active" });
  });

  it("schedules a change at the period end, which the compiler turns into two windows", () => {
    const row = ok(transition(sub(), { type: "change_plan", planId: "free", when: "at_period_end" }, T0, config));
    expect(row).toMatchObject({ planId: "pro", scheduledPlanId: "free", scheduledChangeAt: APR1 });
    expect(subscriptionWindows(row).map((w) => [w.planId, w.from, w.until])).toEqual([
      ["pro", MAR1, APR1],
      ["free", APR1, null],
    ]);
  });

  it("refuses: same plan, no period end ahead, a cancellation first, an ended subscription", () => {
    expect(transition(sub(), { type: "change_plan", planId: "pro", when: "immediately" }, T0, config)).toMatchObject({
      ok: false,
      reason: "same_plan",
    });
    expect(
      transition(
        sub({ currentPeriodEnd: null }),
        { type: "change_plan", planId: "free", when: "at_period_end" },
        T0,
        config,
      ),
    ).toMatchObject({ ok: false, reason: "no_period_end" });
    expect(
      transition(sub({ cancelAt: APR1 }), { type: "change_plan", planId: "free", when: "at_period_end" }, T0, config),
    ).toMatchObject({ ok: false, reason: "cancel_pending" });
    for (const status of ["canceled", "expired"] as const) {
      const t = transition(
        sub({ status, endedAt: T0 - DAY_MS }),
        { type: "change_plan", planId: "free", when: "immediately" },
        T0,
        config,
      );
      expect(t).toMatchObject({ ok: false, reason: "invalid_transition" });
      if (!t.ok) expect(t.detail).toMatch(status);
    }
  });

  it("undoes a scheduled change, or says there is none", () => {
    expect(
      ok(
        transition(
          sub({ scheduledPlanId: "free", scheduledChangeAt: APR1 }),
          { type: "undo_scheduled_change" },
          T0,
          config,
        ),
      ),
    ).toMatchObject({ scheduledPlanId: null, scheduledChangeAt: null });
    expect(transition(sub(), { type: "undo_scheduled_change" }, T0, config)).toMatchObject({
      ok: false,
      reason: "nothing_scheduled",
    });
  });
});

describe("transition: cancel and resume", () => {
  it("cancels immediately: canceled, ended now", () => {
    expect(ok(transition(sub(), { type: "cancel", when: "immediately" }, T0, config))).toMatchObject({
      status: "canceled",
      endedAt: T0,
    });
  });

  it("cancels at period end (cancel_at), and resume undoes it", () => {
    const canceling = ok(transition(sub(), { type: "cancel", when: "at_period_end" }, T0, config));
    expect(canceling).toMatchObject({ status: "active", cancelAt: APR1 });
    expect(transition(canceling, { type: "cancel", when: "at_period_end" }, T0, config)).toMatchObject({
      ok: false,
      reason: "cancel_pending",
    });
    expect(ok(transition(canceling, { type: "resume" }, T0, config))).toMatchObject({
      status: "active",
      cancelAt: null,
    });
    expect(transition(sub(), { type: "resume" }, T0, config)).toMatchObject({ ok: false, reason: "nothing_scheduled" });
  });

  it("cannot resume once the cancellation took effect, even before the cron recorded it", () => {
    const t = transition(sub({ cancelAt: APR1 }), { type: "resume" }, APR1, config);
    expect(t).toMatchObject({ ok: false, reason: "invalid_transition" });
  });

  it("refuses anything on a subscription a billing provider manages", () => {
    expect(
      transition(sub({ externalId: "sub_stripe" }), { type: "cancel", when: "immediately" }, T0, config),
    ).toMatchObject({ ok: false, reason: "managed_externally" });
  });
});

describe("transition: trials and past due", () => {
  const trial = sub({ status: "trialing", trialEnd: T0 + 5 * DAY_MS, currentPeriodEnd: null });

  it("converts a trial: active, a new period from now", () => {
    const row = ok(transition(trial, { type: "convert_trial", currentPeriodEnd: T0 + 30 * DAY_MS }, T0, config));
    expect(row).toMatchObject({
      status: "active",
      currentPeriodStart: T0,
      currentPeriodEnd: T0 + 30 * DAY_MS,
      trialEnd: T0 + 5 * DAY_MS,
    });
    expect(transition(trial, { type: "convert_trial", currentPeriodEnd: T0 }, T0, config)).toMatchObject({
      ok: false,
      reason: "invalid_period",
    });
    expect(transition(sub(), { type: "convert_trial", currentPeriodEnd: null }, T0, config)).toMatchObject({
      ok: false,
      reason: "invalid_transition",
    });
  });

  it("a trial past its end has expired: converting it is refused", () => {
    expect(transition(trial, { type: "convert_trial", currentPeriodEnd: null }, T0 + 5 * DAY_MS, config)).toMatchObject(
      {
        ok: false,
        reason: "invalid_transition",
      },
    );
  });

  it("past_due gets the configured grace, and cannot be marked past_due again", () => {
    const late = ok(transition(sub(), { type: "mark_past_due" }, T0, config));
    expect(late).toMatchObject({ status: "past_due", graceUntil: T0 + 7 * DAY_MS });
    expect(transition(late, { type: "mark_past_due" }, T0, config)).toMatchObject({
      ok: false,
      reason: "invalid_transition",
    });
  });

  it("recover makes a past_due subscription active and clears its grace", () => {
    const late = ok(transition(sub(), { type: "mark_past_due" }, T0, config));
    expect(ok(transition(late, { type: "recover" }, T0 + DAY_MS, config))).toMatchObject({
      status: "active",
      graceUntil: null,
    });
  });

  it("a grace of zero ends at once", () => {
    expect(ok(transition(sub(), { type: "mark_past_due" }, T0, { pastDueGraceMs: 0 }))).toMatchObject({
      graceUntil: T0,
    });
  });

  it("records events that were already due before judging the action", () => {
    const t = transition(
      sub({ scheduledPlanId: "free", scheduledChangeAt: APR1 }),
      { type: "change_plan", planId: "team", when: "immediately" },
      APR1 + DAY_MS,
      config,
    );
    if (!t.ok) throw new Error(t.reason);
    expect(t.due.map((d) => d.event)).toEqual(["plan_changed", "renewed"]);
    expect(t.row).toMatchObject({ planId: "team", currentPeriodStart: APR1, currentPeriodEnd: MAY1 });
  });
});

describe("applyDue: what time alone brings, in time order", () => {
  it("nothing due: unchanged, no steps", () => {
    const s = sub();
    expect(applyDue(s, T0)).toEqual({ row: s, steps: [] });
  });

  it("a scheduled plan change at the period end, then the renewal", () => {
    const { row, steps } = applyDue(sub({ scheduledPlanId: "free", scheduledChangeAt: APR1 }), APR1);
    expect(steps.map((s) => [s.event, s.at])).toEqual([
      ["plan_changed", APR1],
      ["renewed", APR1],
    ]);
    expect(row).toMatchObject({
      planId: "free",
      scheduledPlanId: null,
      currentPeriodStart: APR1,
      currentPeriodEnd: MAY1,
    });
  });

  it("a cancellation at the same instant as a plan change wins (as in compile.ts), and ends at cancel_at", () => {
    const { row, steps } = applyDue(
      sub({ cancelAt: APR1, scheduledPlanId: "free", scheduledChangeAt: APR1 }),
      APR1 + 3 * DAY_MS,
    );
    expect(steps.map((s) => s.event)).toEqual(["canceled"]);
    expect(row).toMatchObject({ status: "canceled", endedAt: APR1, planId: "pro" });
  });

  it("a trial expires at trial_end, not before", () => {
    expect(applyDue(sub({ status: "trialing", trialEnd: T0 }), T0).row).toMatchObject({
      status: "expired",
      endedAt: T0,
    });
    expect(applyDue(sub({ status: "trialing", trialEnd: T0 }), T0 - 1).steps).toEqual([]);
  });

  it("a past_due subscription is canceled at grace_until", () => {
    expect(applyDue(sub({ status: "past_due", graceUntil: T0 }), T0).row).toMatchObject({
      status: "canceled",
      endedAt: T0,
    });
  });

  it("a past_due subscription without grace_until has no access at all (compile.ts): it ends at once", () => {
    expect(applyDue(sub({ status: "past_due", graceUntil: null }), T0).row).toMatchObject({
      status: "canceled",
      endedAt: MAR1,
    });
  });

  it("renews period by period until the current period holds now", () => {
    const { row, steps } = applyDue(sub(), Date.parse("2026-06-15T00:00:00Z"));
    expect(steps.map((s) => s.event)).toEqual(["renewed", "renewed", "renewed"]);
    expect(row).toMatchObject({
      currentPeriodStart: Date.parse("2026-06-01T00:00:00Z"),
      currentPeriodEnd: Date.parse("2026-07-01T00:00:00Z"),
    });
  });

  it("a trial or a past_due subscription does not renew", () => {
    expect(applyDue(sub({ status: "trialing", trialEnd: null }), MAY1).steps).toEqual([]);
    expect(applyDue(sub({ status: "past_due", graceUntil: MAY1 + DAY_MS }), MAY1).steps).toEqual([]);
  });

  it("renews, then cancels at a cancel_at two periods later", () => {
    const { row, steps } = applyDue(sub({ cancelAt: MAY1 }), MAY1 + DAY_MS);
    expect(steps.map((s) => s.event)).toEqual(["renewed", "canceled"]);
    expect(row).toMatchObject({ status: "canceled", endedAt: MAY1, currentPeriodStart: APR1, currentPeriodEnd: MAY1 });
  });

  it("is idempotent: applying again changes nothing", () => {
    const once = applyDue(sub({ scheduledPlanId: "free", scheduledChangeAt: APR1, cancelAt: MAY1 }), MAY1);
    expect(applyDue(once.row, MAY1)).toEqual({ row: once.row, steps: [] });
  });

  it("leaves provider-managed and ended subscriptions alone, and stops after maxSteps", () => {
    expect(applyDue(sub({ externalId: "sub_x", cancelAt: T0 }), T0 + DAY_MS).steps).toEqual([]);
    expect(nextDue(sub({ status: "canceled", cancelAt: T0 }))).toBeNull();
    const daily = sub({ currentPeriodStart: MAR1, currentPeriodEnd: MAR1 + DAY_MS });
    const { steps, row } = applyDue(daily, MAR1 + 1000 * DAY_MS, 10);
    expect(steps).toHaveLength(10);
    expect(nextDue(row)).toEqual({ event: "renewed", at: MAR1 + 11 * DAY_MS });
  });
});

describe("nextPeriodEnd", () => {
  it("monthly on the anchor, clamping the 31st without drifting", () => {
    const jan31 = Date.parse("2026-01-31T09:00:00Z");
    const feb28 = Date.parse("2026-02-28T09:00:00Z");
    expect(nextPeriodEnd({ currentPeriodStart: jan31, currentPeriodEnd: feb28, billingAnchor: jan31 })).toBe(
      Date.parse("2026-03-31T09:00:00Z"),
    );
  });

  it("yearly on the anchor", () => {
    const y1 = Date.parse("2026-02-01T00:00:00Z");
    const y2 = Date.parse("2027-02-01T00:00:00Z");
    expect(nextPeriodEnd({ currentPeriodStart: y1, currentPeriodEnd: y2, billingAnchor: y1 })).toBe(
      Date.parse("2028-02-01T00:00:00Z"),
    );
  });

  it("a period of any other length repeats its length", () => {
    expect(nextPeriodEnd({ currentPeriodStart: T0, currentPeriodEnd: T0 + 14 * DAY_MS, billingAnchor: null })).toBe(
      T0 + 28 * DAY_MS,
    );
  });

  it("nothing to renew without a period, or with an empty one", () => {
    expect(nextPeriodEnd({ currentPeriodStart: T0, currentPeriodEnd: null, billingAnchor: null })).toBeNull();
    expect(nextPeriodEnd({ currentPeriodStart: T0, currentPeriodEnd: T0, billingAnchor: null })).toBeNull();
  });
});
