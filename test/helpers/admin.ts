// Setting up state through the admin API as the bootstrap key: the catalog, customers, plans, API
// keys, and subscription lifecycle actions. Each throws when the setup itself fails.
import { env } from "cloudflare:workers";
import { testCatalog } from "../fixtures/catalog";
import { T0 } from "./time";
import { BOOTSTRAP, type TestWorker, testWorker, uid } from "./worker";

/** Applies the test catalog (idempotent). */
export async function loadTestCatalog(w: TestWorker) {
  const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: testCatalog });
  if (res.status !== 200) throw new Error(`catalog load failed: ${res.status} ${res.text}`);
}

export async function createCustomer(w: TestWorker, body: Record<string, unknown>) {
  const res = await w.call("POST", "/admin/v1/customers", { key: BOOTSTRAP, body });
  if (res.status !== 201) throw new Error(`customer create failed: ${res.status} ${res.text}`);
  return res.json as { id: string; snapshotVersion: number; version: string; subscriptions: string[] };
}

/** A new customer with one subscription made of `sub` (with a fresh id): their ids and snapshot version. */
export async function customerWith(w: TestWorker, sub: Record<string, unknown>) {
  const c = await createCustomer(w, { id: uid(), subscriptions: [{ id: uid("sub"), ...sub }] });
  return { customerId: c.id, subId: c.subscriptions[0]!, version: c.snapshotVersion };
}

/** Mints an API key with these scopes (bound to a customer when given) and returns it in clear. */
export async function createKey(w: TestWorker, scopes: string[], customerId: string | null = null) {
  const res = await w.call("POST", "/admin/v1/api-keys", {
    key: BOOTSTRAP,
    body: { scopes, customerId, name: "test" },
  });
  if (res.status !== 201) throw new Error(`key create failed: ${res.status} ${res.text}`);
  return res.json.key as string;
}

/** Creates a plan and returns it. */
export async function createPlan(
  w: TestWorker,
  id: string,
  entitlements: Record<string, unknown>,
  kind: "base" | "addon" = "base",
) {
  const res = await w.call("POST", "/admin/v1/plans", { key: BOOTSTRAP, body: { id, name: id, kind, entitlements } });
  if (res.status !== 201) throw new Error(`plan create failed: ${res.status} ${res.text}`);
  return res.json;
}

/** POST /admin/v1/subscriptions/:id/:action (cancel, resume, change-plan, ...): the whole response. */
export const subscriptionAction = (
  w: TestWorker,
  id: string,
  action: string,
  body: Record<string, unknown> = {},
  key = BOOTSTRAP,
) => w.call("POST", `/admin/v1/subscriptions/${id}/${action}`, { key, body });

/** Moves customer `id` to a newer revision (an SSO add-on) the way a write does, from another isolate. */
export async function upgradeElsewhere(id: string) {
  await env.DB.prepare(
    "INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) VALUES (?1, ?2, 'sso-addon', 'active', ?3, ?3, ?3)",
  )
    .bind(uid("sub"), id, T0)
    .run();
  await env.DB.prepare("UPDATE customers SET rev = rev + 1 WHERE id = ?1").bind(id).run();
  return (await testWorker().services().snapshots.compile(env, id, T0))!;
}
