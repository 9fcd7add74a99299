#!/usr/bin/env node
// `npm run demo:traffic`: a scripted burst of checks and consumes against the demo (`npm start`), so the
// analytics endpoints (/admin/v1/analytics/*, docs/analytics.md) have something to show: allowed and
// denied checks over several features, plans and countries, admitted and refused consumes. The same
// burst every run (no randomness), on the demo customers, leaving alone what other examples count on:
// no consume of acme's or globex's metered features is admitted (they only check, and globex's consumes
// are refused: it is not entitled). Prints a one-line summary per kind.
// Reads TOLLGATE_URL (default http://127.0.0.1:8787) and TOLLGATE_KEY (default .wrangler/demo-api-key).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const url = process.env.TOLLGATE_URL || "http://127.0.0.1:8787";
const keyFile = join(root, ".wrangler", "demo-api-key");
const key = process.env.TOLLGATE_KEY || (existsSync(keyFile) ? readFileSync(keyFile, "utf8").trim() : "");
if (!key) {
  console.error(
    "demo:traffic: no API key: set TOLLGATE_KEY or run `npm start` first (it writes .wrangler/demo-api-key)",
  );
  process.exit(1);
}

/** [customer, feature, country, times, extra body fields]: checks. */
const CHECKS = [
  ["acme", "sso", "US", 20, { role: "admin" }],
  ["acme", "sso", "US", 4, { role: "viewer" }], // role_denied: Pro gives SSO to owners and admins
  ["acme", "eu_data_residency", "DE", 10],
  ["acme", "eu_data_residency", "US", 5], // region_blocked: EU only
  ["globex", "ai_assistant", "FR", 12], // not_entitled: Free has no AI
  ["globex", "audit_log", "BR", 6], // not_entitled
  ["initech", "sso", "DE", 8],
  ["initech", "ai_assistant", "JP", 5],
  ["soylent", "ai_assistant", "DE", 10],
  ["soylent", "ai_assistant", "KP", 2], // region_blocked: EMBARGOED
  ["soylent", "eu_data_residency", "FR", 5],
];

/** [customer, feature, amount, times]: consumes (POST /v1/usage, mode consume). */
const CONSUMES = [
  ["initech", "api_calls", 40, 10],
  ["initech", "ai_credits", 100, 5],
  ["soylent", "api_calls", 25, 8],
  ["soylent", "ai_credits", 900, 1],
  ["soylent", "ai_credits", 500, 1],
  ["soylent", "ai_credits", 200, 1], // limit_reached: Pro gives 500 a day and the AI pack 1,000 more
  ["globex", "ai_credits", 10, 3], // not_entitled
];

async function post(path, body) {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (res.status !== 200) throw new Error(`${path} ${JSON.stringify(body)}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const tally = (map, d) =>
  map.set(d.allowed ? "allowed" : d.reason, (map.get(d.allowed ? "allowed" : d.reason) ?? 0) + 1);
const show = (map) => [...map].map(([k, n]) => `${n} ${k}`).join(", ");

const checks = new Map();
for (const [customerId, feature, country, times, extra = {}] of CHECKS)
  for (let i = 0; i < times; i++) tally(checks, await post("/v1/check", { customerId, feature, country, ...extra }));
const consumes = new Map();
for (const [customerId, feature, amount, times] of CONSUMES)
  for (let i = 0; i < times; i++) tally(consumes, await post("/v1/usage", { customerId, feature, amount }));
console.log(`checks:   ${show(checks)}`);
console.log(`consumes: ${show(consumes)}`);
