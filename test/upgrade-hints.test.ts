// Upsell hints on the demo catalog: for every demo plan, a denial with not_entitled or limit_reached
// lists exactly the plans and add-ons that would allow that check, lowest tier first; only when asked.
import { beforeAll, describe, expect, it } from "vitest";
import demoCatalog from "../scripts/demo/catalog.json";
import { createCustomer, createKey } from "./helpers/admin";
import { BOOTSTRAP, postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;

beforeAll(async () => {
  const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: demoCatalog });
  if (res.status !== 200) throw new Error(res.text);
  key = await createKey(w, ["check", "usage"]);
});

const customerOn = async (...plans: string[]) =>
  (await createCustomer(w, { id: uid(), subscriptions: plans.map((planId) => ({ planId })) })).id;
const hints = async (customerId: string, feature: string, extra: Record<string, unknown> = {}) => {
  const d = (await postCheck(w, key, { customerId, feature, include: ["upgrade"], ...extra })).json;
  return {
    reason: d.reason,
    upgrade: d.upgrade?.map((h: any) => (h.limit === undefined ? h.planId : `${h.planId}:${h.limit}`)),
  };
};
const use = (customerId: string, feature: string, amount: number) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature, amount } });

describe("upgrade hints (demo catalog)", () => {
  it("free: what each denied feature would need", async () => {
    const id = await customerOn("free");
    expect(await hints(id, "sso", { role: "owner" })).toEqual({
      reason: "not_entitled",
      upgrade: ["pro", "enterprise"],
    });
    // Pro's SSO is for owners and admins: a member would still be denied there.
    expect(await hints(id, "sso", { role: "member" })).toEqual({ reason: "not_entitled", upgrade: ["enterprise"] });
    expect(await hints(id, "eu_data_residency", { country: "US" })).toEqual({ reason: "not_entitled", upgrade: [] });
    expect(await hints(id, "eu_data_residency", { country: "DE" })).toEqual({
      reason: "not_entitled",
      upgrade: ["pro", "enterprise"],
    });
    expect(await hints(id, "ai_assistant", { country: "US" })).toEqual({
      reason: "not_entitled",
      upgrade: ["ai-pack", "pro", "enterprise"],
    });
    expect(await hints(id, "ai_credits")).toEqual({
      reason: "not_entitled",
      upgrade: ["ai-pack:1000", "pro:500", "enterprise:5000"],
    });
    await use(id, "seats", 3);
    expect(await hints(id, "seats")).toEqual({
      reason: "limit_reached",
      upgrade: ["extra-seats:13", "pro:25", "enterprise:500"],
    });
    await use(id, "api_calls", 1000);
    expect(await hints(id, "api_calls")).toEqual({
      reason: "limit_reached",
      upgrade: ["pro:100000", "enterprise:null"],
    });
  });

  it("pro (with extra seats, like acme): only what goes beyond it", async () => {
    const id = await customerOn("pro", "extra-seats");
    await use(id, "ai_credits", 500);
    expect(await hints(id, "ai_credits")).toEqual({
      reason: "limit_reached",
      upgrade: ["ai-pack:1500", "enterprise:5000"],
    });
    await use(id, "seats", 35);
    expect(await hints(id, "seats")).toEqual({ reason: "limit_reached", upgrade: ["enterprise:510"] });
    // Denials of other kinds carry no hints: a role rule is not a plan question.
    expect(await hints(id, "sso", { role: "member" })).toEqual({ reason: "role_denied", upgrade: undefined });
  });

  it("enterprise: a full add-on is the only step left", async () => {
    const id = await customerOn("enterprise");
    await use(id, "seats", 500);
    expect(await hints(id, "seats")).toEqual({ reason: "limit_reached", upgrade: ["extra-seats:510"] });
    expect(await hints(id, "sso")).toEqual({ reason: "ok", upgrade: undefined });
  });

  it("only when asked, on the check, GET check and OFREP", async () => {
    const id = await customerOn("free");
    const plain = await postCheck(w, key, { customerId: id, feature: "sso", role: "owner" });
    expect(plain.json.upgrade).toBeUndefined();
    const get = await w.call("GET", `/v1/check?customerId=${id}&feature=sso&role=owner&include=upgrade`, { key });
    expect(get.json.upgrade.map((h: any) => h.planId)).toEqual(["pro", "enterprise"]);
    const ofrep = await w.call("POST", "/ofrep/v1/evaluate/flags/sso", {
      key,
      body: { context: { targetingKey: id, role: "owner", include: "upgrade" } },
    });
    expect(ofrep.json.metadata).toMatchObject({ reason: "not_entitled", upgrade: "pro,enterprise" });
    const bad = await postCheck(w, key, { customerId: id, feature: "sso", include: ["everything"] });
    expect(bad.status).toBe(400);
  });
});
