// Seeds a benchmark catalog through the admin API, exactly as an operator would: the catalog with
// PUT /admin/v1/catalog, every customer with POST /admin/v1/customers (each write compiles the
// customer's snapshot and writes it to KV, so snapshots exist before any check), and one API key
// with scopes check + usage via POST /admin/v1/api-keys.

/** Feature keys and types: half boolean, a quarter config, a quarter metered (f000, f001, ...). */
export function benchFeatures(count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const type = i % 4 === 3 ? "metered" : i % 4 === 2 ? "config" : "boolean";
    out.push({ key: `f${String(i).padStart(4, "0")}`, type });
  }
  return out;
}

export const HOT_FEATURE = "hot_calls";
export const HOT_CUSTOMER = "hot";
/**
 * usage-hot-sharded's customer: its consumes spread over shard meters (allowance leases), on a plan of
 * its own whose limit (--hot-sharded-limit) is low enough to be reached during the run.
 */
export const HOT_SHARDED_CUSTOMER = "hot-sharded";
export const customerId = (i) => `c${i}`;

/** One base plan entitles every feature, with a few region and role rules so the evaluator does real work. */
export function benchCatalog(features, hotLimit, hotShardedLimit = hotLimit) {
  const entitlements = {};
  features.forEach((f, i) => {
    if (f.type === "boolean")
      entitlements[f.key] = i % 5 === 0 ? { enabled: true, regions: { deny: ["SANCTIONED"] } } : true;
    else if (f.type === "config") entitlements[f.key] = { value: { tier: "gold", n: i } };
    // A per-entity limit too (docs/model.md, Entities): only calls that name an entity (check-entity) meet it.
    else entitlements[f.key] = { limit: 1e12, reset: "month", perEntity: { limit: 1e9, reset: "day" } };
  });
  return {
    regionGroups: { SANCTIONED: ["KP", "IR"] },
    features: {
      ...Object.fromEntries(features.map((f) => [f.key, { type: f.type }])),
      [HOT_FEATURE]: { type: "metered" },
    },
    plans: {
      bench: { name: "Bench", entitlements },
      hot: { name: "Hot meter", entitlements: { [HOT_FEATURE]: { limit: hotLimit, reset: "month" } } },
      "hot-sharded": {
        name: "Hot sharded meter",
        entitlements: { [HOT_FEATURE]: { limit: hotShardedLimit, reset: "month" } },
      },
    },
  };
}

async function call(url, key, method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

/** Runs `fn(i)` for i in [0, n) with `concurrency` in flight. */
async function pool(n, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** Returns the API key and what was seeded. */
export async function seed({
  url,
  adminKey,
  customers,
  features,
  hotLimit,
  hotShards = 4,
  hotShardedLimit = hotLimit,
  concurrency = 8,
}) {
  const list = benchFeatures(features);
  const started = Date.now();
  await call(url, adminKey, "PUT", "/admin/v1/catalog", benchCatalog(list, hotLimit, hotShardedLimit));
  await pool(customers, concurrency, (i) =>
    call(url, adminKey, "POST", "/admin/v1/customers", { id: customerId(i), subscriptions: [{ planId: "bench" }] }),
  );
  await call(url, adminKey, "POST", "/admin/v1/customers", { id: HOT_CUSTOMER, subscriptions: [{ planId: "hot" }] });
  await call(url, adminKey, "POST", "/admin/v1/customers", {
    id: HOT_SHARDED_CUSTOMER,
    subscriptions: [{ planId: "hot-sharded" }],
  });
  await call(url, adminKey, "PATCH", `/admin/v1/customers/${HOT_SHARDED_CUSTOMER}`, { meterShards: hotShards });
  const { key } = await call(url, adminKey, "POST", "/admin/v1/api-keys", {
    name: "bench",
    scopes: ["check", "usage"],
  });
  return {
    apiKey: key,
    features: list,
    seconds: (Date.now() - started) / 1000,
    method: "admin API (PUT /admin/v1/catalog, POST /admin/v1/customers each, POST /admin/v1/api-keys)",
  };
}

export { call as adminCall };
