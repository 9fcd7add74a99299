// The scenarios as request templates both load generators understand: a method, a path and a body
// in which `{c}` is replaced per request by a random customer of a range and `{f}` by a random
// feature of a list. Each scenario names the baseline it is compared with.
import { HOT_CUSTOMER, HOT_FEATURE, HOT_SHARDED_CUSTOMER } from "./seed.mjs";

/** Requests under this path go to the bench's second Worker (rpc-caller.mjs), which calls Tollgate over RPC. */
export const RPC_CALLER_PREFIX = "/rpc-caller/";

const CHECK_BODY = '{"customerId":"{c}","feature":"{f}"}';

/**
 * @param {{ features: {key: string, type: string}[], warm: number, customers: number }} s
 */
export function scenarios(s) {
  const keys = (pred) => s.features.filter(pred).map((f) => f.key);
  const plain = keys((f) => f.type !== "metered");
  const metered = keys((f) => f.type === "metered");
  const warm = { prefix: "c", count: s.warm };
  return [
    {
      name: "baseline",
      what: "constant JSON from the same app (request id, services, CORS, body limit, content type; no auth, no binding)",
      method: "POST",
      path: "/v1/__bench/baseline",
      body: CHECK_BODY,
      customers: warm,
      features: plain,
    },
    {
      name: "check-warm",
      baseline: "baseline",
      what: "POST /v1/check, boolean + config features, customers that fit the isolate cache",
      method: "POST",
      path: "/v1/check",
      body: CHECK_BODY,
      customers: warm,
      features: plain,
    },
    {
      name: "check-warm-no-analytics",
      what: "check-warm with analytics off (through /v1/__bench/analytics-off/check)",
      method: "POST",
      path: "/v1/__bench/analytics-off/check",
      body: CHECK_BODY,
      customers: warm,
      features: plain,
    },
    {
      name: "check-warm-analytics",
      baseline: "check-warm-no-analytics",
      what: "check-warm with a point per check to Analytics Engine, as in production (ANALYTICS_MODE engine)",
      method: "POST",
      path: "/v1/__bench/analytics-engine/check",
      body: CHECK_BODY,
      customers: warm,
      features: plain,
    },
    {
      name: "check-warm-rollups",
      baseline: "check-warm-no-analytics",
      what: "check-warm with local analytics: counters per isolate, flushed to D1 rollups every 60 s (npm start's mode)",
      method: "POST",
      path: "/v1/__bench/analytics-local/check",
      body: CHECK_BODY,
      customers: warm,
      features: plain,
    },
    {
      name: "check-rpc",
      baseline: "baseline",
      what: "the check-warm checks from a second Worker through its service binding (TollgateRpc.check: no HTTP, no key lookup)",
      method: "POST",
      path: `${RPC_CALLER_PREFIX}check`,
      body: CHECK_BODY,
      customers: warm,
      features: plain,
    },
    {
      name: "check-metered",
      baseline: "baseline",
      what: "POST /v1/check, metered features far from their limit (the isolate's usage summary, the meter when stale)",
      method: "POST",
      path: "/v1/check",
      body: CHECK_BODY,
      customers: warm,
      features: metered,
    },
    {
      name: "check-metered-exact",
      baseline: "baseline",
      what: "check-metered with maxUsageAgeMs: 0 (no usage summary: every check asks the meter)",
      method: "POST",
      path: "/v1/check",
      body: '{"customerId":"{c}","feature":"{f}","maxUsageAgeMs":0}',
      customers: warm,
      features: metered,
    },
    {
      name: "check-entity",
      baseline: "baseline",
      what: "check-metered for an entity inside the customer (entityId; a per-entity limit): every check reads the meter once",
      method: "POST",
      path: "/v1/check",
      body: '{"customerId":"{c}","feature":"{f}","entityId":"user_7"}',
      customers: warm,
      features: metered,
    },
    {
      name: "check-cold",
      baseline: "baseline",
      what: "POST /v1/check over every customer (more than the isolate cache holds)",
      method: "POST",
      path: "/v1/check",
      body: CHECK_BODY,
      customers: { prefix: "c", count: s.customers },
      features: plain,
    },
    {
      name: "entitlements",
      baseline: "baseline",
      what: "GET /v1/entitlements/{id}: every feature, one meter read",
      method: "GET",
      path: "/v1/entitlements/{c}",
      body: null,
      customers: warm,
      features: plain,
    },
    {
      name: "usage-baseline",
      what: "one bare Durable Object RPC (BenchCustomerMeter.increment) on the customer's meter, through the same app",
      method: "POST",
      path: "/v1/__bench/usage-baseline",
      body: '{"customerId":"{c}"}',
      customers: warm,
      features: metered,
    },
    {
      name: "usage-spread",
      baseline: "usage-baseline",
      what: "POST /v1/usage consume, amount 1, over many customers",
      method: "POST",
      path: "/v1/usage",
      body: '{"customerId":"{c}","feature":"{f}","amount":1}',
      customers: warm,
      features: metered,
    },
    {
      name: "usage-entity",
      baseline: "usage-baseline",
      what: "usage-spread for an entity (entityId): the pooled and the per-entity counter in one meter decision",
      method: "POST",
      path: "/v1/usage",
      body: '{"customerId":"{c}","feature":"{f}","amount":1,"entityId":"user_7"}',
      customers: warm,
      features: metered,
    },
    {
      name: "usage-hot",
      baseline: "usage-baseline",
      what: `POST /v1/usage consume on one customer ('${HOT_CUSTOMER}', ${HOT_FEATURE}, finite limit)`,
      method: "POST",
      path: "/v1/usage",
      body: `{"customerId":"${HOT_CUSTOMER}","feature":"${HOT_FEATURE}","amount":1}`,
      customers: { prefix: "c", count: 1 },
      features: [HOT_FEATURE],
      countAdmitted: true,
    },
    {
      // Paired with the bare RPC like usage-hot (whose customer is past its limit by then), and set
      // against usage-hot by the two ratios (run.mjs).
      name: "usage-hot-sharded",
      baseline: "usage-baseline",
      what: `the same on '${HOT_SHARDED_CUSTOMER}' (a lower limit), spread over ${s.hotShards ?? 4} shard meters with allowance leases`,
      method: "POST",
      path: "/v1/usage",
      body: `{"customerId":"${HOT_SHARDED_CUSTOMER}","feature":"${HOT_FEATURE}","amount":1}`,
      customers: { prefix: "c", count: 1 },
      features: [HOT_FEATURE],
      countAdmitted: true,
    },
  ];
}

/** Splits a template into literal strings and the names of the variables between them. */
export function templateParts(template) {
  return template.split(/\{([cf])\}/);
}

/** A function that draws one request (path and body) from a scenario (for autocannon). */
export function filler(spec) {
  const path = templateParts(spec.path);
  const body = spec.body === null ? null : templateParts(spec.body);
  const fill = (parts, c, f) => {
    let out = "";
    for (let i = 0; i < parts.length; i++) out += i % 2 === 0 ? parts[i] : parts[i] === "c" ? c : f;
    return out;
  };
  return () => {
    const c = spec.customers.prefix + Math.floor(Math.random() * spec.customers.count);
    const f = spec.features[Math.floor(Math.random() * spec.features.length)];
    return { path: fill(path, c, f), body: body && fill(body, c, f) };
  };
}
