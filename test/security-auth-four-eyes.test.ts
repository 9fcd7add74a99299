// Security review H2: four eyes compares people, not credentials. An API key stands for the person
// who created it (api_keys.created_by, an identity like the grants' proposedBy), so proposing through
// a key you made and approving with your own token is still one person. The bootstrap key (and a key
// it made) stands for nobody in particular: it cannot propose an elevated grant at all, and, like any
// API key, it never approves one.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { displayPrefix, generateApiKey, hashApiKey } from "../src/auth/api-keys";
import { insertApiKeyStatement } from "../src/store/api-keys";
import { insertGrantStatement } from "../src/store/grants";
import {
  BOOTSTRAP,
  createCustomer,
  DAY_MS as DAY,
  expectProblem,
  iso,
  loadTestCatalog,
  T0,
  testWorker,
  uid,
} from "./helpers";
import { operatorToken } from "./helpers/operators";

const w = testWorker();
let alice: string;
let bob: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  alice = await operatorToken("admin", "alice-four-eyes");
  bob = await operatorToken("approver", "bob-four-eyes");
});

const freeCustomer = async () => (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] })).id;
const elevated = (customerId: string) => ({
  customerId,
  feature: "sso",
  spec: { enabled: true },
  reason: "pilot",
  expiresAt: iso(T0 + 7 * DAY),
});
const propose = (key: string, body: Record<string, unknown>) => w.call("POST", "/admin/v1/grants", { key, body });
const approve = (key: string, id: string) =>
  w.call("POST", `/admin/v1/grants/${id}/approve`, { key, body: { reason: "ok" } });
async function mintKey(by: string): Promise<{ id: string; key: string }> {
  const res = await w.call("POST", "/admin/v1/api-keys", { key: by, body: { name: "automation", scopes: ["admin"] } });
  expect(res.status).toBe(201);
  return res.json;
}

describe("four eyes: a key counts as the person who created it", () => {
  it("a key records its creator as a four-eyes identity, also through a key that person made", async () => {
    const k1 = await mintKey(alice);
    const k2 = await mintKey(k1.key);
    for (const k of [k1, k2])
      expect((await w.call("GET", `/admin/v1/api-keys/${k.id}`, { key: bob })).json.createdBy).toBe(
        "operator:alice-four-eyes",
      );
    expect(
      (await w.call("GET", `/admin/v1/api-keys/${(await mintKey(BOOTSTRAP)).id}`, { key: bob })).json.createdBy,
    ).toBe("bootstrap");
  });

  it("an elevated grant proposed with alice's key: alice's own token cannot approve it, another person can", async () => {
    const { key } = await mintKey(alice);
    const proposed = await propose(key, elevated(await freeCustomer()));
    expect(proposed.status).toBe(201);
    expect(proposed.json.grant).toMatchObject({
      status: "pending",
      elevated: true,
      proposedBy: "operator:alice-four-eyes",
    });
    const self = expectProblem(await approve(alice, proposed.json.grant.id), 403);
    expect(self.detail).toMatch(/Four eyes/);
    expect((await approve(bob, proposed.json.grant.id)).json.grant).toMatchObject({
      status: "active",
      decidedBy: "operator:bob-four-eyes",
    });
  });

  it("the same through a key made with alice's key", async () => {
    const { key } = await mintKey((await mintKey(alice)).key);
    const proposed = await propose(key, elevated(await freeCustomer()));
    expectProblem(await approve(alice, proposed.json.grant.id), 403);
  });

  it("rows written before: a key whose created_by is a bare sub, a pending grant proposed by key:<id>", async () => {
    const key = generateApiKey();
    const keyId = `key_${crypto.randomUUID()}`;
    await insertApiKeyStatement(env.DB, {
      id: keyId,
      hash: await hashApiKey(key),
      prefix: displayPrefix(key),
      name: "old automation",
      scopes: JSON.stringify(["admin"]),
      customer_id: null,
      created_by: "lee-legacy",
      created_at: T0,
    }).run();
    const customerId = await freeCustomer();
    const grantId = `grant_${crypto.randomUUID()}`;
    await insertGrantStatement(env.DB, {
      id: grantId,
      customer_id: customerId,
      feature_key: "sso",
      mode: "add",
      spec: JSON.stringify({ enabled: true }),
      reason: "old proposal",
      starts_at: null,
      expires_at: T0 + 7 * DAY,
      status: "pending",
      elevated: 1,
      proposed_by: `key:${keyId}`,
      decided_by: null,
      decided_at: null,
      created_at: T0,
      updated_at: T0,
    }).run();
    const lee = await operatorToken("approver", "lee-legacy");
    expect(expectProblem(await approve(lee, grantId), 403).detail).toMatch(/Four eyes/);
    // Its key proposes as lee too.
    const proposed = await propose(key, elevated(customerId));
    expect(proposed.json.grant.proposedBy).toBe("operator:lee-legacy");
    expect((await approve(bob, grantId)).status).toBe(200);
  });
});

describe("four eyes: the bootstrap key is nobody's second pair of eyes", () => {
  it("the bootstrap key, and a key it made, cannot propose an elevated grant (403)", async () => {
    const customerId = await freeCustomer();
    for (const key of [BOOTSTRAP, (await mintKey(BOOTSTRAP)).key]) {
      const refused = expectProblem(await propose(key, elevated(customerId)), 403);
      expect(refused.detail).toMatch(/person/);
    }
    const grants = await w.call("GET", `/admin/v1/grants?customerId=${customerId}`, { key: bob });
    expect(grants.json.items).toEqual([]);
    // What is not elevated still applies at once.
    const plain = await propose(BOOTSTRAP, {
      customerId,
      feature: "api_calls",
      mode: "replace",
      spec: { limit: 10 },
      reason: "abuse",
      expiresAt: iso(T0 + DAY),
    });
    expect(plain.json.grant).toMatchObject({ status: "active", elevated: false, proposedBy: "bootstrap" });
  });

  it("API keys and the bootstrap key never approve an elevated grant (already so before H2's fix)", async () => {
    const support = await operatorToken("support", "sue-four-eyes");
    const proposed = await propose(support, elevated(await freeCustomer()));
    for (const key of [BOOTSTRAP, (await mintKey(alice)).key])
      expect(expectProblem(await approve(key, proposed.json.grant.id), 403).detail).toMatch(/person/);
  });
});
