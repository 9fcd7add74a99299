// The scheduled (cron) handler: due lifecycle changes are recorded in D1 (rows, audit by "system",
// recompiled snapshots), bounded per run and idempotent. Driven with createScheduledController and
// the injected clock; nothing sleeps.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP, createCustomer, createKey, DAY, iso, loadTestCatalog, T0, testWorker, uid } from "./helpers";

const w = testWorker();
let checkKey: string;
const HOUR = 3_600_000;

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

const check = async (customerId: string, feature: string) =>
  (await w.call("POST", "/v1/check", { key: checkKey, body: { customerId, feature } })).json;
const row = (id: string) =>
  env.DB.prepare("SELECT * FROM subscriptions WHERE id = ?1").bind(id).first<Record<string, any>>();
const systemAudits = async (id: string) =>
  (
    await env.DB.prepare(
      "SELECT action, actor, actor_type, before, after, reason FROM audit_log WHERE entity_id = ?1 AND actor = 'system' ORDER BY id",
    )
      .bind(id)
      .all<Record<string, any>>()
  ).results;
const act = (id: string, action: string, body: Record<string, unknown>) =>
  w.call("POST", `/admin/v1/subscriptions/${id}/${action}`, { key: BOOTSTRAP, body });

async function customerWith(sub: Record<string, unknown>) {
  const c = await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), ...sub }] });
  return { customerId: c.id, subId: c.subscriptions[0]! };
}

/** Moves the clock for one test and back afterwards. */
async function at<T>(t: number, fn: () => Promise<T>): Promise<T> {
  w.clock.set(t);
  try {
    return await fn();
  } finally {
    w.clock.set(T0);
  }
}

describe("bounded work", () => {
  // First in the file, so no other test's subscription is due at this instant.
  it("changes at most SCHEDULED_MAX_CHANGES subscriptions per run; the next runs continue", async () => {
    const subs = await Promise.all(
      Array.from({ length: 5 }, () => customerWith({ planId: "pro", cancelAt: iso(T0 + HOUR) })),
    );
    const limited = { ...env, SCHEDULED_MAX_CHANGES: "2" };
    const canceled = async () =>
      (await Promise.all(subs.map((s) => row(s.subId)))).filter((r) => r!.status === "canceled").length;
    await at(T0 + HOUR, async () => {
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
    const { customerId, subId } = await customerWith({
      planId: "pro",
      startedAt: iso(start),
      currentPeriodEnd: iso(end),
    });
    await act(subId, "change-plan", { planId: "free", when: "at_period_end" });

    await at(end - 1, async () => {
      await runCron();
      expect(await row(subId)).toMatchObject({ plan_id: "pro", scheduled_plan_id: "free" });
      expect(await systemAudits(subId)).toEqual([]);
    });

    await at(end, async () => {
      // The snapshot already denies on time, before anything is recorded.
      const before = await check(customerId, "audit_export");
      expect(before.allowed).toBe(false);
      await runCron();
      expect(await row(subId)).toMatchObject({
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
      expect(JSON.parse(audits[0]!.before)).toMatchObject({ planId: "pro", scheduledPlanId: "free" });
      expect(JSON.parse(audits[0]!.after)).toMatchObject({ planId: "free", scheduledPlanId: null });
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
    const end = T0 + 3 * DAY;
    const { customerId, subId } = await customerWith({ planId: "pro", currentPeriodEnd: iso(end) });
    await act(subId, "cancel", { when: "at_period_end", reason: "customer asked" });
    await at(end + 2 * HOUR, async () => {
      await runCron();
      expect(await row(subId)).toMatchObject({
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

  it("an unconverted trial expires at trial_end; a converted one does not", async () => {
    const trialEnd = T0 + 14 * DAY;
    const lapsed = await customerWith({ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) });
    const converted = await customerWith({ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) });
    await act(converted.subId, "convert-trial", {});
    await at(trialEnd, async () => {
      expect(await check(lapsed.customerId, "audit_export")).toMatchObject({ allowed: false, reason: "trial_expired" });
      await runCron();
      expect(await row(lapsed.subId)).toMatchObject({ status: "expired", ended_at: trialEnd, trial_end: trialEnd });
      expect((await systemAudits(lapsed.subId)).map((a) => a.action)).toEqual(["subscription.trial_expired"]);
      // The same reason before and after the cron recorded it.
      expect(await check(lapsed.customerId, "audit_export")).toMatchObject({ allowed: false, reason: "trial_expired" });
      expect(await row(converted.subId)).toMatchObject({ status: "active" });
      expect(await systemAudits(converted.subId)).toEqual([]);
      expect((await check(converted.customerId, "audit_export")).allowed).toBe(true);
    });
  });

  it("past_due beyond the grace period becomes canceled, ended at grace_until", async () => {
    const { customerId, subId } = await customerWith({ planId: "pro" });
    await act(subId, "past-due", {});
    const graceEnd = T0 + 7 * DAY;
    await at(graceEnd - 1, async () => {
      await runCron();
      expect(await row(subId)).toMatchObject({ status: "past_due", grace_until: graceEnd });
      expect((await check(customerId, "audit_export")).allowed).toBe(true);
    });
    await at(graceEnd, async () => {
      await runCron();
      expect(await row(subId)).toMatchObject({ status: "canceled", ended_at: graceEnd });
      expect((await systemAudits(subId)).map((a) => a.action)).toEqual(["subscription.grace_ended"]);
      expect((await check(customerId, "audit_export")).reason).toBe("subscription_inactive");
    });
  });

  it("renews periods of subscriptions without a billing provider; leaves provider-managed ones alone", async () => {
    const start = Date.parse("2026-01-31T09:00:00Z");
    const own = await customerWith({
      planId: "pro",
      startedAt: iso(start),
      currentPeriodEnd: iso(Date.parse("2026-02-28T09:00:00Z")),
    });
    const stripe = await customerWith({
      planId: "pro",
      startedAt: iso(start),
      currentPeriodEnd: iso(Date.parse("2026-02-28T09:00:00Z")),
      cancelAt: iso(T0),
    });
    await env.DB.prepare("UPDATE subscriptions SET external_id = ?2 WHERE id = ?1")
      .bind(stripe.subId, uid("sub_stripe"))
      .run();
    const stripeBefore = await row(stripe.subId);
    await at(T0 + DAY, async () => {
      await runCron();
      // Feb 28 -> Mar 31 (the 31st anchor, not Mar 28), then Mar 31 -> Apr 30 is still ahead of now.
      expect(await row(own.subId)).toMatchObject({
        status: "active",
        current_period_start: Date.parse("2026-02-28T09:00:00Z"),
        current_period_end: Date.parse("2026-03-31T09:00:00Z"),
      });
      expect((await systemAudits(own.subId)).map((a) => a.action)).toEqual(["subscription.renewed"]);
      expect(await row(stripe.subId)).toEqual(stripeBefore);
      expect(await systemAudits(stripe.subId)).toEqual([]);
    });
  });

  it("two overlapping runs record a change once", async () => {
    const { subId } = await customerWith({ planId: "pro", cancelAt: iso(T0 + 20 * DAY) });
    await at(T0 + 20 * DAY, async () => {
      await Promise.all([runCron(), runCron()]);
      expect(await row(subId)).toMatchObject({ status: "canceled" });
      expect((await systemAudits(subId)).map((a) => a.action)).toEqual(["subscription.canceled"]);
    });
  });
});
