// The scheduled (cron) handler: due lifecycle changes are recorded in D1 (rows, audit by "system",
// recompiled snapshots), bounded per run and idempotent. Driven with createScheduledController and
// the injected clock; nothing sleeps.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createKey, customerWith, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { auditOf, markProviderManaged, parsed, subscriptionRow } from "./helpers/d1";
import { DAY_MS, HOUR_MS, iso, T0 } from "./helpers/time";
import { checker, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  checkKey = await createKey(w, ["check"]);
});

async function runCron(bindings: Cloudflare.Env = env) {
  const controller = createScheduledController({ scheduledTime: new Date(w.clock.now()), cron: "*/5 * * * *" });
  const ctx = createExecutionContext();
  await w.worker.scheduled(controller, bindings, ctx);
  await waitOnExecutionContext(ctx);
}

const check = checker(w, () => checkKey);
/** The audit rows the cron wrote for a subscription (actor "system"), oldest first. */
const systemAudits = async (id: string) => (await auditOf("subscription", id)).filter((a) => a.actor === "system");

describe("bounded work", () => {
  // First in the file, so no other test's subscription is due at this instant.
  it("changes at most SCHEDULED_MAX_CHANGES subscriptions per run; the next runs continue", async () => {
    const subs = await Promise.all(
      Array.from({ length: 5 }, () => customerWith(w, { planId: "pro", cancelAt: iso(T0 + HOUR_MS) })),
    );
    const limited = { ...env, SCHEDULED_MAX_CHANGES: "2" };
    const canceled = async () =>
      (await Promise.all(subs.map((s) => subscriptionRow(s.subId)))).filter((r) => r!.status === "canceled").length;
    await w.at(T0 + HOUR_MS, async () => {
      await runCron(limited);
      expect(await canceled()).toBe(2);
      await runCron(limited);
      expect(await canceled()).toBe(4);
      await runCron(limited);
      expect(await canceled()).toBe(5);
      await runCron(limited);
    });
    for (const s of subs) expect((await systemAudits(s.subId)).map((a) => a.action)).toEqual(["subscription.canceled"]);
  });
});

describe("due changes are recorded", () => {
  it("a downgrade scheduled for the period end becomes the plan; the period renews; checks agree before and after", async () => {
    const start = Date.parse("2026-03-01T00:00:00Z");
    const end = Date.parse("2026-04-01T00:00:00Z");
    const { customerId, subId } = await customerWith(w, {
      planId: "pro",
      startedAt: iso(start),
      currentPeriodEnd: iso(end),
    });
    await subscriptionAction(w, subId, "change-plan", { planId: "free", when: "at_period_end" });

    await w.at(end - 1, async () => {
      await runCron();
      expect(await subscriptionRow(subId)).toMatchObject({ plan_id: "pro", scheduled_plan_id: "free" });
      expect(await systemAudits(subId)).toEqual([]);
    });

    await w.at(end, async () => {
      // The snapshot already denies on time, before anything is recorded.
      const before = await check(customerId, "audit_export");
      expect(before.allowed).toBe(false);
      await runCron();
      expect(await subscriptionRow(subId)).toMatchObject({
        plan_id: "free",
        scheduled_plan_id: null,
        scheduled_change_at: null,
        current_period_start: end,
        current_period_end: Date.parse("2026-05-01T00:00:00Z"),
        updated_at: end,
      });
      const audits = await systemAudits(subId);
      expect(audits.map((a) => [a.action, a.actor_type, a.reason])).toEqual([
        ["subscription.plan_changed", "system", `due at ${iso(end)}`],
        ["subscription.renewed", "system", `due at ${iso(end)}`],
      ]);
      expect(parsed(audits[0]!.before)).toMatchObject({ planId: "pro", scheduledPlanId: "free" });
      expect(parsed(audits[0]!.after)).toMatchObject({ planId: "free", scheduledPlanId: null });
      // Recompiled from the record: only the free plan is left, so the answer is plainly not_entitled.
      const after = await check(customerId, "audit_export");
      expect(after).toMatchObject({ allowed: false, reason: "not_entitled" });
      expect(after.snapshotVersion).toBeGreaterThan(before.snapshotVersion);
      expect((await check(customerId, "api_calls")).limit).toBe(100);

      // Idempotent: a second run records nothing more.
      await runCron();
      expect(await systemAudits(subId)).toHaveLength(2);
    });
  });

  it("a cancellation at period end becomes status canceled, ended at cancel_at", async () => {
    const end = T0 + 3 * DAY_MS;
    const { customerId, subId } = await customerWith(w, { planId: "pro", currentPeriodEnd: iso(end) });
    await subscriptionAction(w, subId, "cancel", { when: "at_period_end", reason: "customer asked" });
    await w.at(end + 2 * HOUR_MS, async () => {
      await runCron();
      expect(await subscriptionRow(subId)).toMatchObject({
        status: "canceled",
        ended_at: end,
        cancel_at: end,
        current_period_end: end,
      });
      expect((await systemAudits(subId)).map((a) => a.action)).toEqual(["subscription.canceled"]);
      expect(await check(customerId, "audit_export")).toMatchObject({
        allowed: false,
        reason: "subscription_inactive",
      });
    });
  });

  it("an unconverted trial expires at trial_end, with the same answer before and after the cron records it", async () => {
    const trialEnd = T0 + 14 * DAY_MS;
    const lapsed = await customerWith(w, { planId: "pro", status: "trialing", trialEnd: iso(trialEnd) });
    await w.at(trialEnd, async () => {
      expect(await check(lapsed.customerId, "audit_export")).toMatchObject({ allowed: false, reason: "trial_expired" });
      await runCron();
      expect(await subscriptionRow(lapsed.subId)).toMatchObject({
        status: "expired",
        ended_at: trialEnd,
        trial_end: trialEnd,
      });
      expect((await systemAudits(lapsed.subId)).map((a) => a.action)).toEqual(["subscription.trial_expired"]);
      expect(await check(lapsed.customerId, "audit_export")).toMatchObject({ allowed: false, reason: "trial_expired" });
    });
  });

  it("a converted trial does not expire at its old trial_end", async () => {
    const trialEnd = T0 + 14 * DAY_MS;
    const converted = await customerWith(w, { planId: "pro", status: "trialing", trialEnd: iso(trialEnd) });
    await subscriptionAction(w, converted.subId, "convert-trial", {});
    await w.at(trialEnd, async () => {
      await runCron();
      expect(await subscriptionRow(converted.subId)).toMatchObject({ status: "active" });
      expect(await systemAudits(converted.subId)).toEqual([]);
      expect((await check(converted.customerId, "audit_export")).allowed).toBe(true);
    });
  });

  it("past_due beyond the grace period becomes canceled, ended at grace_until", async () => {
    const { customerId, subId } = await customerWith(w, { planId: "pro" });
    await subscriptionAction(w, subId, "past-due", {});
    const graceEnd = T0 + 7 * DAY_MS;
    await w.at(graceEnd - 1, async () => {
      await runCron();
      expect(await subscriptionRow(subId)).toMatchObject({ status: "past_due", grace_until: graceEnd });
      expect((await check(customerId, "audit_export")).allowed).toBe(true);
    });
    await w.at(graceEnd, async () => {
      await runCron();
      expect(await subscriptionRow(subId)).toMatchObject({ status: "canceled", ended_at: graceEnd });
      expect((await systemAudits(subId)).map((a) => a.action)).toEqual(["subscription.grace_ended"]);
      expect((await check(customerId, "audit_export")).reason).toBe("subscription_inactive");
    });
  });

  it("renews periods of subscriptions without a billing provider; leaves provider-managed ones alone", async () => {
    const start = Date.parse("2026-01-31T09:00:00Z");
    // Created when they started (a period already over cannot be created), renewed by the cron later.
    const sub = { planId: "pro", startedAt: iso(start), currentPeriodEnd: iso(Date.parse("2026-02-28T09:00:00Z")) };
    const own = await w.at(start, () => customerWith(w, sub));
    const stripe = await w.at(start, () => customerWith(w, { ...sub, cancelAt: iso(T0) }));
    await markProviderManaged(stripe.subId, uid("sub_stripe"));
    const stripeBefore = await subscriptionRow(stripe.subId);
    await w.at(T0 + DAY_MS, async () => {
      await runCron();
      // Feb 28 -> Mar 31 (the 31st anchor, not Mar 28), then Mar 31 -> Apr 30 is still ahead of now.
      expect(await subscriptionRow(own.subId)).toMatchObject({
        status: "active",
        current_period_start: Date.parse("2026-02-28T09:00:00Z"),
        current_period_end: Date.parse("2026-03-31T09:00:00Z"),
      });
      expect((await systemAudits(own.subId)).map((a) => a.action)).toEqual(["subscription.renewed"]);
      expect(await subscriptionRow(stripe.subId)).toEqual(stripeBefore);
      expect(await systemAudits(stripe.subId)).toEqual([]);
    });
  });

  it("two overlapping runs record a change once", async () => {
    const { subId } = await customerWith(w, { planId: "pro", cancelAt: iso(T0 + 20 * DAY_MS) });
    await w.at(T0 + 20 * DAY_MS, async () => {
      await Promise.all([runCron(), runCron()]);
      expect(await subscriptionRow(subId)).toMatchObject({ status: "canceled" });
      expect((await systemAudits(subId)).map((a) => a.action)).toEqual(["subscription.canceled"]);
    });
  });
});
