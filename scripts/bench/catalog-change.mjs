// The catalog-change figure (issue 12): N customers on one plan, batch-inserted into local D1 (the admin
// API would compile each one on the way), then one change to that plan through the admin API that moves
// its subscribers at once (migrate=now: with the default, stay, they would keep their version). Reported:
// the KV writes and D1 rows the change made (counted by the bench's instrumented bindings; D1 counts
// index entries as rows written), next to the same change made to a copy of the plan that nobody is
// on (so "O(1)" is measured: the same writes whatever the number of subscribers), and the seconds until
// a second isolate (/__bench/second: the same app with caches of its own, over the same KV and D1)
// answers with the change. That isolate checks one
// customer every 50 ms; its catalog cache looks at KV's pointer at most once per CATALOG_CACHE_TTL_MS.
import { adminCall, benchFeatures, customerId } from "./seed.mjs";

const PLAN = "bench";

export async function measureCatalogChange({ server, seeded, adminKey, customers, features }) {
  const db = await server.d1();
  const started = Date.now();
  const prefix = "cc";
  const seq = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)";
  const now = Date.now();
  await db.batch([
    db
      .prepare(
        `INSERT INTO customers (id, name, rev, created_at, updated_at) ${seq} SELECT '${prefix}' || i, '', 1, ?2, ?2 FROM n`,
      )
      .bind(customers, now),
    db
      .prepare(
        `INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, created_at, updated_at) ${seq}
         SELECT 'sub-${prefix}' || i, '${prefix}' || i, ?3, 'active', ?2, ?2, ?2 FROM n`,
      )
      .bind(customers, now, PLAN),
  ]);
  const seedSeconds = (Date.now() - started) / 1000;
  const subscribers = (
    await db.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE plan_id = ?1").bind(PLAN).first()
  ).n;
  // A boolean feature the plan grants (benchCatalog: every feature; f0001 has no region rule).
  const feature = benchFeatures(features).find((f, i) => f.type === "boolean" && i % 5 !== 0).key;
  const check = async (who) => {
    const res = await fetch(`${server.url}/__bench/second/v1/check`, {
      method: "POST",
      headers: { Authorization: `Bearer ${seeded.apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ customerId: who, feature }),
    });
    if (!res.ok) throw new Error(`second isolate check: ${res.status} ${await res.text()}`);
    return res.json();
  };
  // The same change on an identical plan with no subscribers: what a change costs when nobody is on it.
  const plan = await adminCall(server.url, adminKey, "GET", `/admin/v1/plans/${PLAN}`);
  const EMPTY = "bench-empty";
  await adminCall(server.url, adminKey, "POST", "/admin/v1/plans", {
    id: EMPTY,
    name: "Bench (nobody on it)",
    kind: plan.kind,
    entitlements: plan.entitlements,
  });
  await fetch(`${server.url}/__bench/reset`, { method: "POST" });
  await adminCall(server.url, adminKey, "PUT", `/admin/v1/plans/${EMPTY}/entitlements/${feature}?migrate=now`, false);
  const empty = (await (await fetch(`${server.url}/__bench/stats`)).json()).counts;
  const watched = customerId(0);
  const before = await check(watched);
  if (!before.allowed) throw new Error(`catalog-change: ${feature} is not granted before the change`);
  await fetch(`${server.url}/__bench/reset`, { method: "POST" });
  const changedAt = Date.now();
  const written = await adminCall(
    server.url,
    adminKey,
    "PUT",
    `/admin/v1/plans/${PLAN}/entitlements/${feature}?migrate=now`,
    false,
  );
  const writeMs = Date.now() - changedAt;
  const stats = await (await fetch(`${server.url}/__bench/stats`)).json();
  let seconds = null;
  for (let i = 0; i < 400; i++) {
    const d = await check(watched);
    if (!d.allowed && d.version.endsWith(`.${written.catalogRev}`)) {
      seconds = (Date.now() - changedAt) / 1000;
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Put the plan back, so a later run on the same storage starts from the same catalog.
  await adminCall(server.url, adminKey, "PUT", `/admin/v1/plans/${PLAN}/entitlements/${feature}?migrate=now`, true);
  return {
    subscribers,
    seedSeconds,
    writeMs,
    emptyPlan: { kvWrites: empty.kvWrites, d1Queries: empty.d1Queries, d1RowsWritten: empty.d1RowsWritten },
    kvWrites: stats.counts.kvWrites,
    d1Queries: stats.counts.d1Queries,
    d1RowsWritten: stats.counts.d1RowsWritten,
    secondsUntilSecondIsolate: seconds,
    catalogTtlMs: stats.catalogCache?.ttlMs ?? null,
  };
}
