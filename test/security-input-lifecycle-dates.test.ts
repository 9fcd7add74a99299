// Lifecycle dates that cannot be (a trial that ends before it starts, a period that ends before it
// starts or is already over, a cancellation or grace before the subscription began) are refused with
// a 400 validation problem naming the field, on every write that takes them: they used to be stored
// and then recorded as expired or canceled by the first catch-up. "Now" is the injected clock.
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, customerWith, loadTestCatalog, subscriptionAction } from "./helpers/admin";
import { subscriptionRow } from "./helpers/d1";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();

beforeAll(async () => {
  await loadTestCatalog(w);
});

const subscribe = async (sub: Record<string, unknown>) => {
  const customerId = (await createCustomer(w, { id: uid() })).id;
  const id = uid("sub");
  const res = await w.call("POST", "/admin/v1/subscriptions", {
    key: BOOTSTRAP,
    body: { customerId, id, planId: "pro", ...sub },
  });
  return { res, id, customerId };
};

/** The 400 names the field, and nothing was written. */
async function expectRefused(
  res: Awaited<ReturnType<typeof w.call>>,
  path: string,
  subId: string | null,
  message: RegExp,
) {
  const p = expectProblem(res, 400, "validation");
  expect(p.errors).toContainEqual({ path, message: expect.stringMatching(message) });
  expect(p.detail).toContain(path);
  if (subId) expect(await subscriptionRow(subId)).toBeNull();
}

describe("POST /admin/v1/subscriptions", () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "a trial that ends before it starts",
      { status: "trialing", startedAt: iso(T0 + 10 * DAY_MS), trialEnd: iso(T0 + 5 * DAY_MS) },
      "trialEnd",
      /after startedAt/,
    ],
    [
      "a trial that is already over",
      { status: "trialing", startedAt: iso(T0 - 30 * DAY_MS), trialEnd: iso(T0 - DAY_MS) },
      "trialEnd",
      /future/,
    ],
    ["a current period that ended already", { currentPeriodEnd: iso(T0 - DAY_MS) }, "currentPeriodEnd", /future/],
    [
      "a period that ends before it starts",
      { currentPeriodStart: iso(T0 + 10 * DAY_MS), currentPeriodEnd: iso(T0 + 5 * DAY_MS) },
      "currentPeriodEnd",
      /after currentPeriodStart/,
    ],
    ["a cancellation in the past", { cancelAt: iso(T0 - DAY_MS) }, "cancelAt", /future/],
    [
      "a grace period that ended",
      { status: "past_due", startedAt: iso(T0 - 20 * DAY_MS), graceUntil: iso(T0 - DAY_MS) },
      "graceUntil",
      /future/,
    ],
    [
      "a cancellation before the subscription started (even a canceled one)",
      { status: "canceled", startedAt: iso(T0 - DAY_MS), cancelAt: iso(T0 - 2 * DAY_MS) },
      "cancelAt",
      /after startedAt/,
    ],
  ];
  for (const [what, sub, field, message] of cases) {
    it(`refuses ${what}: 400 naming json.${field}`, async () => {
      const { res, id } = await subscribe(sub);
      await expectRefused(res, `json.${field}`, id, message);
    });
  }

  it("still takes dates that can be: a trial ending later, a period ahead, a history of a canceled one", async () => {
    const trial = await subscribe({ status: "trialing", trialEnd: iso(T0 + 14 * DAY_MS) });
    expect(trial.res.status).toBe(201);
    expect(trial.res.json.subscription).toMatchObject({ status: "trialing", trialEnd: iso(T0 + 14 * DAY_MS) });
    const period = await subscribe({ currentPeriodStart: iso(T0 - DAY_MS), currentPeriodEnd: iso(T0 + DAY_MS) });
    expect(period.res.status).toBe(201);
    // A subscription that is over may carry past dates: nothing is due on it.
    const over = await subscribe({
      status: "canceled",
      startedAt: iso(T0 - 60 * DAY_MS),
      currentPeriodEnd: iso(T0 - 30 * DAY_MS),
      cancelAt: iso(T0 - 30 * DAY_MS),
    });
    expect(over.res.status).toBe(201);
  });

  it("judges 'in the past' against the injected clock", async () => {
    const end = iso(T0 + DAY_MS);
    expect((await subscribe({ currentPeriodEnd: end })).res.status).toBe(201);
    const later = await w.at(T0 + 2 * DAY_MS, () => subscribe({ currentPeriodEnd: end }));
    await expectRefused(later.res, "json.currentPeriodEnd", later.id, /future/);
  });
});

describe("subscriptions inside POST /admin/v1/customers", () => {
  it("refuses the impossible one by its index, and creates neither the customer nor any subscription", async () => {
    const id = uid();
    const ok = uid("sub");
    const bad = uid("sub");
    const res = await w.call("POST", "/admin/v1/customers", {
      key: BOOTSTRAP,
      body: {
        id,
        subscriptions: [
          { id: ok, planId: "pro" },
          { id: bad, planId: "pro", status: "trialing", trialEnd: iso(T0 - DAY_MS) },
        ],
      },
    });
    await expectRefused(res, "json.subscriptions.1.trialEnd", bad, /future/);
    expect(await subscriptionRow(ok)).toBeNull();
    expect((await w.call("GET", `/admin/v1/customers/${id}`, { key: BOOTSTRAP })).status).toBe(404);
  });
});

describe("lifecycle actions", () => {
  it("convert-trial with a currentPeriodEnd in the past is a 400 naming the field; the trial is untouched", async () => {
    const { subId } = await customerWith(w, { planId: "pro", status: "trialing", trialEnd: iso(T0 + 7 * DAY_MS) });
    const res = await subscriptionAction(w, subId, "convert-trial", { currentPeriodEnd: iso(T0 - DAY_MS) });
    await expectRefused(res, "json.currentPeriodEnd", null, /future/);
    expect(await subscriptionRow(subId)).toMatchObject({ status: "trialing" });
    const now = await subscriptionAction(w, subId, "convert-trial", { currentPeriodEnd: iso(T0) });
    await expectRefused(now, "json.currentPeriodEnd", null, /future/);
    const fine = await subscriptionAction(w, subId, "convert-trial", { currentPeriodEnd: iso(T0 + 30 * DAY_MS) });
    expect(fine.status).toBe(200);
    expect(fine.json.subscription).toMatchObject({ status: "active", currentPeriodEnd: iso(T0 + 30 * DAY_MS) });
  });
});
