#!/usr/bin/env node
// `npm start`: local Tollgate on real workerd (wrangler dev: local KV, D1 and Durable Objects).
//   1. writes .dev.vars with fresh local secrets if it is missing (never committed); an older one without
//      API_KEY_CHECKSUM_SECRET gets the development default (src/config.ts)
//   2. applies schema.sql to the local D1 database
//   3. starts `wrangler dev` and waits until it answers
//   4. loads the demo catalog with scripts/catalog.mjs, creates the demo customers and a demo API key
//   5. prints the URL, the keys and a curl that performs a check
// Flags: --port N (default 8787). Stop with Ctrl-C.
import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 8787;
const url = `http://127.0.0.1:${port}`;
const stateDir = join(root, ".wrangler");
const log = (...a) => console.log("[tollgate]", ...a);
/** A server's key: checks, usage, and signed tokens and assertions (never give `sign` to a browser). */
const DEMO_SCOPES = ["check", "usage", "sign"];

function devVars() {
  const file = join(root, ".dev.vars");
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync("ed25519");
    const jwk = {
      ...privateKey.export({ format: "jwk" }),
      kid: `local-${randomBytes(4).toString("hex")}`,
      alg: "EdDSA",
    };
    writeFileSync(
      file,
      [
        "# Local secrets for `npm start` (generated; never commit this file).",
        `ADMIN_BOOTSTRAP_KEY=tg_${randomBytes(32).toString("base64url")}`,
        `OPERATOR_JWT_SECRET=${randomBytes(32).toString("base64url")}`,
        "OPERATOR_JWT_ISSUER=https://operators.tollgate.local",
        "OPERATOR_JWT_AUDIENCE=tollgate-admin",
        `TOKEN_SIGNING_KEYS='${JSON.stringify([jwk])}'`,
        `STRIPE_WEBHOOK_SECRET=whsec_local_${randomBytes(16).toString("hex")}`,
        `API_KEY_CHECKSUM_SECRET=${randomBytes(32).toString("base64url")}`,
        "",
      ].join("\n"),
    );
    log("wrote .dev.vars with fresh local secrets");
  }
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
  }
  return vars;
}

async function waitUntilUp(child, seconds = 120) {
  for (let i = 0; i < seconds * 2; i++) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}); see .wrangler/dev.log`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no answer from ${url} after ${seconds}s; see .wrangler/dev.log`);
}

async function admin(key, method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function seedCustomers(key) {
  const customers = JSON.parse(readFileSync(join(root, "scripts/demo/customers.json"), "utf8"));
  for (const { subscriptions, ...customer } of customers) {
    const subs = subscriptions.map(({ trialEndsInDays, ...s }) =>
      trialEndsInDays ? { ...s, trialEnd: new Date(Date.now() + trialEndsInDays * 86_400_000).toISOString() } : s,
    );
    const res = await admin(key, "POST", "/admin/v1/customers", { ...customer, subscriptions: subs });
    if (res.status !== 201 && res.status !== 409)
      throw new Error(`creating ${customer.id}: ${res.status} ${JSON.stringify(res.json)}`);
  }
  return customers.map((c) => c.id);
}

/**
 * The demo key lives in .wrangler/demo-api-key (like the local D1 it belongs to); recreated if it stopped
 * working, or if it lacks a scope (the probe mints a token: scope sign) or the checksum (older demos).
 */
async function demoKey(bootstrap) {
  const file = join(stateDir, "demo-api-key");
  if (existsSync(file)) {
    const key = readFileSync(file, "utf8").trim();
    const probe = await fetch(`${url}/v1/tokens`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ customerId: "acme", features: ["sso"], ttlSeconds: 1 }),
    });
    if (probe.status === 200 && /^tg_[A-Za-z0-9_-]{43}_[A-Za-z0-9_-]{8}$/.test(key)) return key;
  }
  const res = await admin(bootstrap, "POST", "/admin/v1/api-keys", {
    name: "demo (npm start)",
    scopes: DEMO_SCOPES,
  });
  if (res.status !== 201) throw new Error(`creating the demo key: ${res.status} ${JSON.stringify(res.json)}`);
  writeFileSync(file, res.json.key);
  return res.json.key;
}

async function main() {
  mkdirSync(stateDir, { recursive: true });
  const vars = devVars();
  log("applying schema.sql to the local D1 database");
  execFileSync("wrangler", ["d1", "execute", "DB", "--local", "--file", "schema.sql"], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" },
  });
  // The URL is printed only once the demo data is loaded: whoever reads it can use it at once.
  log(`starting wrangler dev on port ${port} (log: .wrangler/dev.log)`);
  const out = (await import("node:fs")).openSync(join(stateDir, "dev.log"), "w");
  const child = spawn(
    "wrangler",
    ["dev", "--ip", "127.0.0.1", "--port", String(port), "--show-interactive-dev-session=false"],
    {
      cwd: root,
      stdio: ["ignore", out, out],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    },
  );
  const stop = () => child.kill("SIGINT");
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  child.on("exit", (code) => process.exit(code ?? 0));
  await waitUntilUp(child);
  log("loading the demo catalog: node scripts/catalog.mjs apply scripts/demo/catalog.json");
  // Local seeding: the demo file is the truth, even when an edit to it takes something away.
  const applied = execFileSync(
    "node",
    [
      "scripts/catalog.mjs",
      "apply",
      "scripts/demo/catalog.json",
      "--allow-destructive",
      "--url",
      url,
      "--key",
      vars.ADMIN_BOOTSTRAP_KEY,
    ],
    { cwd: root, encoding: "utf8" },
  );
  log(applied.trim().replaceAll(url, "the local worker"));
  const customers = await seedCustomers(vars.ADMIN_BOOTSTRAP_KEY);
  const key = await demoKey(vars.ADMIN_BOOTSTRAP_KEY);
  console.log(`
Tollgate is running at ${url}   (local workerd: KV, D1 and Durable Objects on disk in .wrangler/)

  demo customers : ${customers.join(", ")}
  demo API key   : ${key}   (scopes ${DEMO_SCOPES.join(", ")})
  admin key      : ADMIN_BOOTSTRAP_KEY in .dev.vars (bootstrap, all admin rights)
  API reference  : ${url}/docs

Try a check:
curl -s -X POST ${url}/v1/check -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' -d '{"customerId":"acme","feature":"sso","role":"admin"}'

Consume usage:
curl -s -X POST ${url}/v1/usage -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' -d '{"customerId":"acme","feature":"api_calls","amount":1}'

Press Ctrl-C to stop.`);
}

main().catch((err) => {
  console.error(`[tollgate] ${err.message}`);
  process.exit(1);
});
