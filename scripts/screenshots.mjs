#!/usr/bin/env node
// npm run screenshots [-- --url URL]: renders the main screens in headless Chromium and saves them under
// docs/img/: api-docs.png (/docs), console-customer.png, console-grant.png, console-approvals.png,
// console-catalog.png, console-audit.png, console-analytics.png and portal.png. Without --url it starts
// `npm start -- --port 8799` (scripts/dev.mjs: wrangler dev, demo data) and stops it afterwards. Every
// request that is not to 127.0.0.1 is blocked, and any blocked request, failed load, console error or
// page error fails the run: the pages must render offline (scripts/lib/browser.mjs).
// It acts on the demo like a person would: some usage for acme and globex, a grant proposed and then
// rejected (the approvals queue is left as it was), a plan edit previewed but not applied.
// Needs Chromium: `apt-get install -y chromium` (Debian); CHROMIUM=/path/to/chrome to use another.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { guardPage, launchChromium, startTollgate } from "./lib/browser.mjs";
import { parseCli, UsageError } from "./lib/cli.mjs";
import { projectRoot, runMain } from "./lib/node-target.mjs";

const USAGE = "usage: npm run screenshots [-- --url http://127.0.0.1:PORT]";
const PORT = 8799;
const IMG = join(projectRoot, "docs", "img");

async function main() {
  const { options } = parseCli(process.argv.slice(2), { flags: ["help"], options: ["url"] });
  if (options.help) return void console.log(USAGE);
  if (options.url && !/^http:\/\/127\.0\.0\.1:\d+$/.test(options.url))
    throw new UsageError("--url must be http://127.0.0.1:PORT (everything else is blocked)");
  const server = options.url ? null : await startTollgate(PORT);
  try {
    await screenshots(options.url ?? server.url, server?.demoKey ?? process.env.TOLLGATE_KEY);
  } finally {
    await server?.stop();
  }
  return 0;
}

async function screenshots(url, demoKey) {
  if (!demoKey) throw new UsageError("with --url, set TOLLGATE_KEY to a key with the check and usage scopes");
  const browser = await launchChromium();
  const problems = [];
  const written = [];
  mkdirSync(IMG, { recursive: true });
  const shot = async (page, name, opts = {}) => {
    await page.waitForLoadState("networkidle");
    await page.screenshot({ path: join(IMG, name), ...opts });
    written.push(`docs/img/${name}`);
  };
  const person = async () => {
    const context = await browser.newContext({ baseURL: url, viewport: { width: 1280, height: 960 } });
    const page = await context.newPage();
    await guardPage(page, problems);
    return page;
  };
  const signIn = async (page, name, role) => {
    await page.goto("/console");
    await page.getByLabel("Person").fill(name);
    await page.getByLabel("Role").selectOption(role);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("who").waitFor();
  };
  try {
    // /docs: Swagger UI over /openapi.json.
    const docs = await person();
    await docs.goto("/docs");
    await docs.getByRole("heading", { name: /^Tollgate/ }).waitFor();
    await docs.getByRole("button", { name: /^POST \/v1\/check\b/ }).waitFor();
    await shot(docs, "api-docs.png");

    await api(url, demoKey, "POST", "/v1/usage", { customerId: "acme", feature: "api_calls", amount: 1234 });
    await api(url, demoKey, "POST", "/v1/usage", { customerId: "acme", feature: "ai_credits", amount: 180 });
    await api(url, demoKey, "POST", "/v1/usage", { customerId: "globex", feature: "api_calls", amount: 640 });

    // Support: a customer, then a grant that is elevated, proposed into the queue.
    const sam = await person();
    await signIn(sam, "sam", "support");
    await sam.goto("/console/customers/acme");
    await sam.locator('[data-usage="api_calls"] .chart.drawn canvas').first().waitFor();
    await shot(sam, "console-customer.png", { fullPage: true });
    await sam.goto("/console/customers/globex/grant");
    await sam.waitForLoadState("load");
    await sam.getByLabel("Feature").selectOption("sso");
    await sam.getByLabel(/^Reason/).fill("Security review pilot (ticket CS-4711)");
    await sam.getByLabel(/^Expires/).fill(new Date(Date.now() + 14 * 86_400_000).toISOString().slice(0, 16));
    await sam.getByLabel(/^Expires/).blur();
    await sam.getByTestId("assessment").getByText("Elevated:").waitFor();
    await sam.getByText("Before it can be proposed").waitFor({ state: "detached" });
    await shot(sam, "console-grant.png", { fullPage: true });
    await sam.getByRole("button", { name: "Propose grant" }).click();
    await sam.getByRole("heading", { name: "Approvals queue" }).waitFor();
    const grantId = /grant_[\w-]+/.exec(await sam.getByRole("status").first().textContent())?.[0];

    // An approver sees the queue; the demo's grant is rejected afterwards, so the queue stays as it was.
    const ada = await person();
    await signIn(ada, "ada", "approver");
    await ada.goto("/console/approvals");
    await shot(ada, "console-approvals.png");
    await ada.locator(`tr[data-grant="${grantId}"]`).getByRole("button", { name: "Reject" }).click();
    await ada.getByRole("heading", { name: "Approvals queue" }).waitFor();

    // An admin previews a plan edit: the blast radius, before anything is applied.
    const root = await person();
    await signIn(root, "root", "admin");
    await root.goto("/console/catalog/plans/pro");
    const plan = JSON.parse(await root.getByLabel(/The plan as in a catalog file/).inputValue());
    plan.entitlements.api_calls = { ...plan.entitlements.api_calls, limit: 50000 };
    delete plan.entitlements.audit_log;
    await root.getByLabel(/The plan as in a catalog file/).fill(JSON.stringify(plan, null, 2));
    await root.getByLabel(/Move every subscriber to the new version now/).check();
    await root.getByRole("button", { name: "Preview the blast radius" }).click();
    await root.getByTestId("blast-radius").waitFor();
    await shot(root, "console-catalog.png", { fullPage: true });
    await root.goto("/console/audit");
    await shot(root, "console-audit.png");
    await root.goto("/console/analytics?featureKey=api_calls");
    await root.locator('[data-panel="Adoption per feature"] .chart.drawn canvas').waitFor();
    await shot(root, "console-analytics.png", { fullPage: true });

    // The customer portal of a free customer (so it offers more), through a link minted with the demo key.
    const session = await api(url, demoKey, "POST", "/v1/portal-sessions", {
      customerId: "globex",
      returnUrl: "https://app.example.com/settings/billing",
    });
    const portal = await person();
    await portal.goto(session.url);
    await portal.getByTestId("upgrades").waitFor();
    await shot(portal, "portal.png", { fullPage: true });
  } finally {
    await browser.close();
  }
  if (problems.length > 0) throw new Error(`the pages did not render cleanly offline:\n  ${problems.join("\n  ")}`);
  console.log(`wrote ${written.join(", ")} (no request left 127.0.0.1)`);
}

async function api(url, key, method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

await runMain(main, USAGE);
