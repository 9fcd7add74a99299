// The events time causes, from the cron: trial.ending (within the lead time), grant.expiring and
// grant.expired, each once however many runs see it; trial.ended when the cron ends the trial.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { customerWith, loadTestCatalog } from "./helpers/admin";
import { DAY_MS, HOUR_MS, iso, MINUTE_MS, T0 } from "./helpers/time";
import { createEndpoint } from "./helpers/webhooks";
import { BOOTSTRAP, testWorker } from "./helpers/worker";

const w = testWorker();

beforeAll(async () => {
  await loadTestCatalog(w);
});

async function runCron() {
  const controller = createScheduledController({ scheduledTime: new Date(w.clock.now()), cron: "*/5 * * * *" });
  const ctx = createExecutionContext();
  await w.worker.scheduled(controller, env, ctx);
  await waitOnExecutionContext(ctx);
}

const eventsOf = async (customerId: string) =>
  (
    await env.DB.prepare("SELECT id, type, data FROM outbound_events WHERE customer_id = ?1 ORDER BY seq")
      .bind(customerId)
      .all<{ id: string; type: string; data: string }>()
  ).results.map((r) => ({ id: r.id, type: r.type, data: JSON.parse(r.data) }));
const ofType = async (customerId: string, type: string) => (await eventsOf(customerId)).filter((e) => e.type === type);

describe("time-based events", () => {
  it("trial.ending once within the lead time (3 days), then trial.ended when the cron ends the trial", async () => {
    const trialEnd = T0 + 5 * DAY_MS;
    const { customerId, subId } = await customerWith(w, { planId: "pro", status: "trialing", trialEnd: iso(trialEnd) });
    await createEndpoint(w, { url: "https://app.example/trials", customerId });
    await runCron();
    expect(await ofType(customerId, "trial.ending")).toEqual([]); // 5 days out: not yet
    await w.at(trialEnd - 2 * DAY_MS, runCron);
    await w.at(trialEnd - DAY_MS, runCron);
    const ending = await ofType(customerId, "trial.ending");
    expect(ending).toHaveLength(1);
    expect(ending[0]!.data).toEqual({ subscriptionId: subId, planId: "pro", trialEnd: iso(trialEnd) });
    await w.at(trialEnd + MINUTE_MS, runCron);
    const ended = await ofType(customerId, "trial.ended");
    expect(ended).toHaveLength(1);
    expect(ended[0]!.data).toMatchObject({ subscriptionId: subId, planId: "pro", status: "expired" });
    expect(await ofType(customerId, "subscription.changed")).toHaveLength(1);
  });

  it("grant.expiring within the lead time and grant.expired after its end, each once", async () => {
    const { customerId } = await customerWith(w, { planId: "pro" });
    await createEndpoint(w, { url: "https://app.example/grants", customerId, eventTypes: ["grant.expiring"] });
    const expiresAt = T0 + 2 * DAY_MS;
    const grant = await w.call("POST", "/admin/v1/grants", {
      key: BOOTSTRAP,
      body: {
        customerId,
        feature: "beta_ai",
        spec: { enabled: false },
        reason: "pause beta",
        expiresAt: iso(expiresAt),
      },
    });
    expect(grant.status).toBe(201);
    await runCron();
    await w.at(T0 + HOUR_MS, runCron);
    const expiring = await ofType(customerId, "grant.expiring");
    expect(expiring).toHaveLength(1);
    expect(expiring[0]!.data).toEqual({ grantId: grant.json.grant.id, feature: "beta_ai", expiresAt: iso(expiresAt) });
    await w.at(expiresAt + MINUTE_MS, runCron);
    await w.at(expiresAt + HOUR_MS, runCron);
    expect(await ofType(customerId, "grant.expired")).toHaveLength(1);
  });
});
