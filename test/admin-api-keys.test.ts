// API keys: listed without hashes, revoked through D1 and KV so the check path refuses them: at once
// in the revoking isolate, after the 30 s key cache elsewhere.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../src/auth/api-keys";
import { KEY_CACHE_TTL_MS } from "../src/store/api-key-store";
import { createCustomer, loadTestCatalog } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { kvApiKey, kvApiKeyKey } from "./helpers/kv";
import { operatorToken } from "./helpers/operators";
import { BOOTSTRAP, expectProblem, postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let admin: string;
let customerId: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  admin = await operatorToken("admin", "kim-admin");
  customerId = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;
});

const mint = async (body: Record<string, unknown>) =>
  (await w.call("POST", "/admin/v1/api-keys", { key: admin, body })).json as { id: string; key: string };

describe("API keys", () => {
  it("lists keys without their hashes, filtered and paged", async () => {
    const bound = await mint({ name: "bound", scopes: ["check"], customerId });
    await mint({ name: "bound 2", scopes: ["check", "usage"], customerId });
    const first = await w.call("GET", `/admin/v1/api-keys?customerId=${customerId}&limit=1`, {
      key: await operatorToken("viewer"),
    });
    expect(first.status).toBe(200);
    expect(first.json.items).toHaveLength(1);
    const second = await w.call(
      "GET",
      `/admin/v1/api-keys?customerId=${customerId}&limit=1&cursor=${first.json.nextCursor}`,
      { key: admin },
    );
    expect(second.json.nextCursor).toBeNull();
    const items = [...first.json.items, ...second.json.items];
    expect(items.map((k: { name: string }) => k.name).sort()).toEqual(["bound", "bound 2"]);
    const hash = await hashApiKey(bound.key);
    for (const k of items) {
      expect(Object.keys(k).sort()).toEqual([
        "createdAt",
        "createdBy",
        "customerId",
        "id",
        "name",
        "prefix",
        "revokedAt",
        "scopes",
      ]);
      expect(JSON.stringify(k)).not.toContain(hash);
    }
    expect((await w.call("GET", `/admin/v1/api-keys/${bound.id}`, { key: admin })).json).toMatchObject({
      id: bound.id,
      prefix: bound.key.slice(0, 10),
      createdBy: "operator:kim-admin",
      revokedAt: null,
    });
  });

  it("revocation: 401 at once here and for a fresh isolate; an isolate that cached the key stops within 30 s", async () => {
    const { id, key } = await mint({ name: "to revoke", scopes: ["check"] });
    const other = testWorker(); // another isolate, same KV and D1
    expect((await postCheck(w, key, { customerId, feature: "audit_export" })).status).toBe(200);
    expect((await postCheck(other, key, { customerId, feature: "audit_export" })).status).toBe(200); // now cached there

    const res = await w.call("POST", `/admin/v1/api-keys/${id}/revoke`, {
      key: admin,
      headers: { "X-Audit-Reason": "leaked in a log" },
    });
    expect(res.status).toBe(200);
    expect(res.json.revokedAt).toBe(new Date(w.clock.now()).toISOString());

    expectProblem(await postCheck(w, key, { customerId, feature: "audit_export" }), 401);
    expectProblem(await postCheck(testWorker(), key, { customerId, feature: "audit_export" }), 401);
    expect((await kvApiKey(key))!.revokedAt).toBe(w.clock.now());

    expect((await postCheck(other, key, { customerId, feature: "audit_export" })).status).toBe(200); // within its cache TTL
    other.clock.advance(KEY_CACHE_TTL_MS);
    expectProblem(await postCheck(other, key, { customerId, feature: "audit_export" }), 401);

    const [audit] = (await auditOf("api_key", id)).filter((a) => a.action === "api_key.revoke");
    expect(audit).toMatchObject({ actor: "kim-admin", actor_type: "operator", reason: "leaked in a log" });
    expect(parsed(audit!.before).revokedAt).toBeNull();
    expect(parsed(audit!.after).revokedAt).toBe(res.json.revokedAt);
    expect(audit!.after).not.toContain(await hashApiKey(key));
  });

  it("revoking again is harmless: same answer, no second audit entry, KV republished", async () => {
    const { id, key } = await mint({ scopes: ["check"] });
    const first = await w.call("POST", `/admin/v1/api-keys/${id}/revoke`, { key: admin });
    await env.SNAPSHOTS.delete(await kvApiKeyKey(key)); // as if the first KV write had been lost
    w.clock.advance(1000);
    const again = await w.call("POST", `/admin/v1/api-keys/${id}/revoke`, { key: admin });
    expect(again.json.revokedAt).toBe(first.json.revokedAt);
    expect((await auditOf("api_key", id)).map((a) => a.action)).toEqual(["api_key.create", "api_key.revoke"]);
    expect(await kvApiKey(key)).toMatchObject({
      revokedAt: Date.parse(first.json.revokedAt),
    });
    expectProblem(await w.call("POST", "/admin/v1/api-keys/key_nope/revoke", { key: admin }), 404);
  });

  it("a revoked admin key loses the admin API too, and the list can show only revoked keys", async () => {
    const { id, key } = await mint({ scopes: ["admin"] });
    expect((await w.call("GET", "/admin/v1/features", { key })).status).toBe(200);
    await w.call("POST", `/admin/v1/api-keys/${id}/revoke`, { key: BOOTSTRAP });
    expectProblem(await w.call("GET", "/admin/v1/features", { key }), 401);
    const revoked = await w.call("GET", "/admin/v1/api-keys?revoked=true&limit=200", { key: admin });
    expect(revoked.json.items.every((k: { revokedAt: string | null }) => k.revokedAt !== null)).toBe(true);
    expect(revoked.json.items.map((k: { id: string }) => k.id)).toContain(id);
  });
});
