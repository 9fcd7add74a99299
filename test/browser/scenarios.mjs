// Browser tests (npm run test:browser): Playwright (playwright-core) driving Debian's chromium against
// `npm start`'s server, one server for every scenario. Each scenario is what a person does, and fails on
// any request that leaves the worker, any console or page error, and any unexpected 4xx/5xx.
// Needs `apt-get install -y chromium` (CHROMIUM=/path for another build); .ci/run installs it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { guardPage, launchChromium, startTollgate } from "../../scripts/lib/browser.mjs";
import { readDevVars } from "../../scripts/lib/node-target.mjs";

const PORT = 8798;
let server;
let browser;
let bootstrap;

before(async () => {
  server = await startTollgate(PORT);
  bootstrap = readDevVars().ADMIN_BOOTSTRAP_KEY; // npm start writes .dev.vars on its first run
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function api(method, path, key, body) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

/** A customer of its own per run (the local demo keeps its data between runs), on the free plan. */
async function newCustomer(name) {
  const id = `browser-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const res = await api("POST", "/admin/v1/customers", bootstrap ?? "", {
    id,
    name,
    subscriptions: [{ planId: "free" }],
  });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  return id;
}

/** A browser of its own for one person, watched for anything that leaves the worker or goes wrong. */
async function person(problems, allowStatus) {
  const context = await browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await guardPage(page, problems, allowStatus);
  return { context, page };
}

async function signIn(page, name, role) {
  await page.goto("/console");
  await page.getByLabel("Person").fill(name);
  await page.getByLabel("Role").selectOption(role);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("who").filter({ hasText: role }).waitFor();
}

/** The datetime-local value `days` from now, in UTC (the console reads it as UTC). */
const inDays = (days) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 16);

async function proposeSso(page, customerName) {
  await page.getByRole("link", { name: "Customers" }).click();
  await page.getByLabel("Customer id or name").fill(customerName);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: customerName }).click();
  await page.getByRole("link", { name: "Grant access" }).click();
  await page.waitForLoadState("load"); // htmx (a deferred script) enhances the form once loaded
  await page.getByLabel("Feature").selectOption("sso");
  // htmx asks the server's own assessment as the form changes: elevated, and what is still missing.
  await page.getByTestId("assessment").getByText("Elevated:").waitFor();
  await page.getByText("an elevated grant needs a reason").waitFor();
  await page.getByLabel(/^Reason/).fill("pilot for the security review");
  await page.getByLabel(/^Expires/).fill(inDays(14));
  await page.getByLabel(/^Expires/).blur();
  await page.getByText("an elevated grant needs a reason").waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Propose grant" }).click();
  await page.getByRole("heading", { name: "Approvals queue" }).waitFor();
  const notice = await page.getByRole("status").filter({ hasText: "proposed" }).textContent();
  return /grant_[\w-]+/.exec(notice)?.[0];
}

describe("console", () => {
  test("support proposes an elevated grant; a second person approves it; the feature turns on and the audit shows it", async () => {
    const problems = [];
    const name = `Browser Co ${Date.now()}`;
    const customerId = await newCustomer(name);
    const sam = await person(problems);
    await signIn(sam.page, "sam", "support");
    const grantId = await proposeSso(sam.page, name);
    assert.match(grantId ?? "", /^grant_/);
    const row = sam.page.locator(`tr[data-grant="${grantId}"]`);
    await row.getByText("yours: another approver decides").waitFor();

    const ada = await person(problems);
    await signIn(ada.page, "ada", "approver");
    await ada.page.getByRole("link", { name: "Approvals" }).click();
    await ada.page.locator(`tr[data-grant="${grantId}"]`).getByRole("button", { name: "Approve" }).click();
    await ada.page.waitForURL(/minVersion=\d+\.\d+/);
    const url = new URL(ada.page.url());
    assert.equal(url.pathname, `/console/customers/${customerId}`);
    const sso = ada.page.locator('tr[data-feature="sso"]');
    await sso.locator(".badge.allowed").waitFor();
    assert.match(await sso.textContent(), new RegExp(`grant ${grantId}`));
    await ada.page
      .locator('table[data-testid="audit"] tr[data-action="grant.approve"]')
      .getByRole("cell", { name: "ada operator" })
      .waitFor();
    // The usage chart is drawn by uPlot, served by the worker.
    await ada.page.locator('[data-usage="api_calls"] .chart.drawn canvas').first().waitFor();

    await ada.page.getByRole("navigation").getByRole("link", { name: "Audit" }).click();
    await ada.page.getByLabel("Customer").fill(customerId);
    await ada.page.getByRole("button", { name: "Filter" }).click();
    const entry = ada.page.locator('tr[data-action="grant.approve"]');
    await entry.waitFor();
    assert.match(await entry.textContent(), /ada/);
    await sam.context.close();
    await ada.context.close();
    assert.deepEqual(problems, []);
  });

  test("a viewer cannot approve: the server refuses the form, and the grant stays pending", async () => {
    const problems = [];
    const name = `Viewer Co ${Date.now()}`;
    await newCustomer(name);
    const sam = await person(problems);
    await signIn(sam.page, "sam", "support");
    const grantId = await proposeSso(sam.page, name);

    const refused = [];
    const vic = await person(problems, (res) => res.status() === 403 && refused.push(res.url()) > 0);
    await signIn(vic.page, "vic", "viewer");
    await vic.page.getByRole("link", { name: "Approvals" }).click();
    const row = vic.page.locator(`tr[data-grant="${grantId}"]`);
    await row.waitFor();
    assert.equal(await row.getByRole("button", { name: "Approve" }).count(), 0);
    // The page offers no button; post the approval form anyway, as a browser would (with the CSRF token).
    await vic.page.evaluate((id) => {
      const form = document.createElement("form");
      form.method = "post";
      form.action = `/console/grants/${id}/approve`;
      const token = document.querySelector('input[name="_csrf"]').cloneNode();
      form.append(token);
      document.body.append(form);
      form.submit();
    }, grantId);
    await vic.page.getByText("you have 'viewer'").waitFor();
    assert.deepEqual(refused, [`${server.url}/console/grants/${grantId}/approve`]);
    const grant = await api("GET", `/admin/v1/grants/${grantId}`, bootstrap);
    assert.equal(grant.json.status, "pending");
    // Leave the demo's queue as it was (the local demo keeps its data between runs).
    assert.equal((await api("POST", `/admin/v1/grants/${grantId}/reject`, bootstrap, {})).status, 200);
    await sam.context.close();
    await vic.context.close();
    assert.deepEqual(problems, []);
  });
});

describe("portal", () => {
  test("the link opens, shows usage against the limit, and expires", async () => {
    const problems = [];
    const customerId = await newCustomer(`Portal Co ${Date.now()}`);
    const used = await api("POST", "/v1/usage", server.demoKey, { customerId, feature: "api_calls", amount: 42 });
    assert.equal(used.status, 200, JSON.stringify(used.json));
    const ttlSeconds = 6;
    const session = await api("POST", "/v1/portal-sessions", server.demoKey, { customerId, ttlSeconds });
    assert.equal(session.status, 201, JSON.stringify(session.json));
    const customer = await person(problems, (res) => res.status() === 401 && res.url() === session.json.url);
    await customer.page.goto(session.json.url);
    const usage = customer.page.locator('[data-usage="api_calls"]');
    await usage.getByText("42 of 1000").waitFor();
    await usage.getByText(/^Resets \d{4}-/).waitFor();
    await customer.page.getByTestId("plan").getByText("Free").waitFor();
    await customer.page.locator('[data-plan="pro"]').getByRole("link", { name: "Upgrade" }).waitFor();
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(session.json.expiresAt) - Date.now() + 1500)));
    await customer.page.reload();
    await customer.page.getByRole("heading", { name: "This link has expired" }).waitFor();
    await customer.context.close();
    assert.deepEqual(problems, []);
  });
});
