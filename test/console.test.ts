// The console (src/ui/console) through the worker, as a browser uses it: the development sign-in, the
// session and its CSRF token, and the admin API refusing what a role may not do whatever the page shows.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { AnalyticsView } from "../src/ui/console/analytics";
import { createCustomer, loadTestCatalog } from "./helpers/admin";
import { consoleUser, csrfOf } from "./helpers/console";
import { auditOf } from "./helpers/d1";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, MINUTE_MS } from "./helpers/time";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const w = testWorker();
const SECRET = "console-test-session-secret-0123456789abcdef";

beforeAll(async () => {
  await loadTestCatalog(w);
});

/** A customer on the free plan (no sso): a grant of sso is elevated. */
async function freeCustomer(name = "Free Co") {
  const id = uid();
  await createCustomer(w, { id, name, subscriptions: [{ planId: "free" }] });
  return id;
}

/** datetime-local for `days` from the worker's clock (UTC). */
const inDays = (days: number) => iso(w.clock.now() + days * DAY_MS).slice(0, 16);

async function proposeSso(user: ReturnType<typeof consoleUser>, customerId: string) {
  await user.get(`/console/customers/${customerId}/grant`);
  return user.post(`/console/customers/${customerId}/grant`, {
    feature: "sso",
    mode: "add",
    spec: '{ "enabled": true }',
    reason: "pilot for the security review",
    expiresAt: inDays(14),
  });
}

const grantIdOf = (location: string | null) => new URL(location ?? "", "https://x").searchParams.get("proposed");

describe("signing in", () => {
  it("development: pick a person and a role; the session is a signed, HttpOnly, SameSite=Strict cookie", async () => {
    const sam = consoleUser(w);
    const res = await sam.signIn("sam", "support", "sam@example.com");
    expect(res.location).toBe("/console");
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("tg_console="));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const home = await sam.get("/console");
    expect(home.status).toBe(200);
    expect(home.text).toContain("sam &lt;sam@example.com&gt;");
  });

  it("without a session, a page sends you to the sign-in, and back afterwards", async () => {
    const res = await consoleUser(w).get("/console/approvals");
    expect(res.status).toBe(303);
    expect(res.location).toBe("/console/sign-in?next=%2Fconsole%2Fapprovals");
  });

  it("a forged or expired session cookie counts as none", async () => {
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    const cookie = sam.jar.get("tg_console") ?? "";
    sam.jar.set("tg_console", `${cookie.slice(0, -4)}AAAA`);
    expect((await sam.get("/console")).status).toBe(303);
    const ada = consoleUser(w);
    await ada.signIn("ada", "approver");
    expect((await ada.get("/console")).status).toBe(200);
    await w.at(w.clock.now() + 31 * MINUTE_MS, async () => {
      expect((await ada.get("/console")).status).toBe(303);
    });
  });

  it("the development sign-in is refused outside development, and a page needs the Access JWT there", async () => {
    const production = { ...env, ENVIRONMENT: "production", SESSION_SECRET: SECRET } as Cloudflare.Env;
    const user = consoleUser(w, production);
    const form = await user.get("/console/sign-in");
    expect(form.status).toBe(403);
    expect(form.text).toContain("only in the development environment");
    expect(form.headers.get("Content-Security-Policy")).toContain("frame-ancestors 'none'");
    const post = await user.post("/console/sign-in", { person: "mallory", role: "admin", _csrf: "x" });
    expect(post.status).toBe(403);
    expect(post.headers.getSetCookie()).toEqual([]);
    const page = await user.get("/console");
    expect(page.status).toBe(401);
    expect(page.text).toContain("Cloudflare Access");
  });

  it("outside development without SESSION_SECRET: 503, never a session signed with a known key", async () => {
    const staging = { ...env, ENVIRONMENT: "staging", SESSION_SECRET: undefined } as unknown as Cloudflare.Env;
    const jwt = await operatorToken("viewer", "vic");
    const res = await consoleUser(w, staging).get("/console", { "Cf-Access-Jwt-Assertion": jwt });
    expect(res.status).toBe(503);
  });

  it("staging: the Access JWT signs you in; its session cookie is __Host- and Secure", async () => {
    const staging = { ...env, ENVIRONMENT: "staging", SESSION_SECRET: SECRET } as Cloudflare.Env;
    const jwt = await operatorToken("approver", "ada", "ada@example.com");
    const user = consoleUser(w, staging);
    const res = await user.get("/console", { "Cf-Access-Jwt-Assertion": jwt });
    expect(res.status).toBe(200);
    expect(res.text).toContain("ada &lt;ada@example.com&gt;");
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("__Host-tg_console="));
    expect(cookie).toMatch(/Secure/);
    // The cookie alone, without Access in front, is not enough there.
    expect((await user.get("/console")).status).toBe(401);
    const bad = await user.get("/console", { "Cf-Access-Jwt-Assertion": `${jwt.slice(0, -3)}xyz` });
    expect(bad.status).toBe(401);
  });
});

describe("pages", () => {
  it("carry a strict CSP and may not be framed", async () => {
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    for (const path of ["/console", "/console/sign-in", "/console/catalog", "/console/audit"]) {
      const res = await sam.get(path);
      const csp = res.headers.get("Content-Security-Policy") ?? "";
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("script-src 'self'");
      expect(csp, path).not.toContain("unsafe-inline");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(res.headers.get("X-Frame-Options"), path).toBe("DENY");
      expect(res.headers.get("Cache-Control"), path).toBe("no-store");
      // No inline script at all, and nothing referenced from another origin.
      expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(res.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
  });

  it("load only files this worker serves: htmx, uPlot and ours, from the static assets", async () => {
    const ASSETS = env.ASSETS as Fetcher;
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    const page = await sam.get(`/console/customers/${await freeCustomer()}`);
    const refs = [...page.text.matchAll(/\b(?:src|href)="(\/ui\/[^"]*)"/g)].map((m) => m[1]!);
    expect(refs.filter((r) => r.startsWith("/ui/vendor/")).length).toBe(3); // htmx, uPlot's script and stylesheet
    for (const ref of refs) {
      // A 404 here after an upgrade of htmx.org or uplot: dist/assets is stale; `npm run build` copies it again.
      const res = await ASSETS.fetch(`https://tollgate.test${ref}`);
      expect(res.status, ref).toBe(200);
      expect(res.headers.get("content-type"), ref).toMatch(ref.endsWith(".css") ? /^text\/css/ : /^text\/javascript/);
      expect((await res.arrayBuffer()).byteLength, ref).toBeGreaterThan(500);
      if (ref.startsWith("/ui/vendor/"))
        expect(res.headers.get("cache-control"), ref).toBe("public, max-age=31536000, immutable");
    }
  });

  it("escape a hostile customer name everywhere it appears", async () => {
    const name = `<script>alert("x")</script><img src=x onerror=alert(1)>'"&`;
    const id = await freeCustomer(name);
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    for (const path of [`/console?q=${id}`, `/console/customers/${id}`, `/console/customers/${id}/grant`]) {
      const res = await sam.get(path);
      expect(res.status, path).toBe(200);
      expect(res.text, path).not.toContain("<script>alert");
      expect(res.text, path).not.toContain("<img src=x");
      expect(res.text, path).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    }
  });

  it("search matches a part of the id or the name, case-insensitively; % is a character", async () => {
    const id = await freeCustomer("Umbrella 100% Corp");
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    expect((await sam.get("/console?q=umbrella%20100%25")).text).toContain(`/console/customers/${id}`);
    expect((await sam.get("/console?q=%25%25%25")).text).not.toContain(`/console/customers/${id}`);
  });
});

describe("CSRF", () => {
  it("refuses a form post without the token, with another session's token, or from another site", async () => {
    const id = await freeCustomer();
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    await sam.get(`/console/customers/${id}/grant`);
    const form = { feature: "sso", spec: '{"enabled":true}', reason: "r", expiresAt: inDays(3) };
    const other = consoleUser(w);
    await other.signIn("eve", "support");
    await other.get("/console");
    const attempts = [
      await sam.post(`/console/customers/${id}/grant`, { ...form, _csrf: "" }),
      await sam.post(`/console/customers/${id}/grant`, { ...form, _csrf: other.token() ?? "" }),
      await sam.post(`/console/customers/${id}/grant`, form, { "Sec-Fetch-Site": "cross-site" }),
      await sam.post(`/console/customers/${id}/grant`, form, { Origin: "https://evil.example" }),
    ];
    expect(attempts.map((a) => a.status)).toEqual([403, 403, 403, 403]);
    expect(attempts[0]?.text).toContain("CSRF");
    expect((await w.call("GET", `/admin/v1/grants?customerId=${id}`, { key: BOOTSTRAP })).json.items).toEqual([]);
  });
});

describe("granting access", () => {
  it("shows before submitting that a grant is elevated and what it gains (htmx fragment or whole page)", async () => {
    const id = await freeCustomer();
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    await sam.get(`/console/customers/${id}/grant`);
    const form = { feature: "sso", mode: "add", spec: '{ "enabled": true }', reason: "", expiresAt: "" };
    const fragment = await sam.post(`/console/customers/${id}/grant/preview`, form, { "HX-Request": "true" });
    expect(fragment.status).toBe(200);
    expect(fragment.text).toMatch(/^<div id="assessment"/);
    expect(fragment.text).toContain("Elevated");
    expect(fragment.text).toContain("an elevated grant needs a reason");
    expect(fragment.text).toContain("an elevated grant needs an expiry");
    const page = await sam.post(`/console/customers/${id}/grant/preview`, {
      ...form,
      reason: "pilot",
      expiresAt: inDays(7),
    });
    expect(page.text).toContain("<form");
    expect(page.text).toContain("Elevated:");
    // Replacing the plans' 100 calls with 50 takes away: not elevated (adding 50 would be).
    const plain = await sam.post(`/console/customers/${id}/grant/preview`, {
      ...form,
      mode: "replace",
      expiresAt: inDays(7),
      feature: "api_calls",
      spec: '{ "limit": 50, "reset": "month" }',
    });
    const assessment = /<div id="assessment"[\s\S]*?<div class="actions">/.exec(plain.text)?.[0];
    expect(assessment).toContain("Not elevated");
    expect(plain.text).toContain("It waits for an approver.");
  });

  it("support proposes, a second person approves; the customer page then reads the new version", async () => {
    const id = await freeCustomer();
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    const proposed = await proposeSso(sam, id);
    expect(proposed.status).toBe(303);
    const grantId = grantIdOf(proposed.location);
    expect(grantId).toMatch(/^grant_/);
    const queue = await sam.get(proposed.location ?? "");
    expect(queue.text).toContain(`data-grant="${grantId}"`);
    expect(queue.text).toContain("yours: another approver decides");

    // Support may not approve, even by posting the form by hand: the admin API refuses (403).
    const bySupport = await sam.post(`/console/grants/${grantId}/approve`);
    expect(bySupport.status).toBe(403);
    expect(bySupport.text).toContain("needs the &#39;approver&#39; role");

    const ada = consoleUser(w);
    await ada.signIn("ada", "approver", "ada@example.com");
    await ada.get("/console/approvals");
    const approved = await ada.post(`/console/grants/${grantId}/approve`);
    expect(approved.status).toBe(303);
    const target = new URL(approved.location ?? "", "https://x");
    expect(target.pathname).toBe(`/console/customers/${id}`);
    expect(target.searchParams.get("minVersion")).toMatch(/^\d+\.\d+$/);
    const customer = await ada.get(`${target.pathname}${target.search}`);
    expect(customer.status).toBe(200);
    const row = /<tr data-feature="sso">([\s\S]*?)<\/tr>/.exec(customer.text)?.[1] ?? "";
    expect(row).toContain("badge allowed");
    expect(row).toContain(`grant <code>${grantId}</code>`);
    const audit = await auditOf("grant", grantId ?? "");
    expect(audit.map((a) => [a.action, a.actor])).toEqual([
      ["grant.propose", "sam"],
      ["grant.approve", "ada <ada@example.com>"],
    ]);
    expect(customer.text).toContain("grant.approve");
    // The audit entry names the console request that made it.
    expect(audit.at(-1)?.request_id).toBe(approved.headers.get("X-Request-Id"));
  });

  it("a viewer cannot approve: the server refuses, and the grant stays pending", async () => {
    const id = await freeCustomer();
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    const grantId = grantIdOf((await proposeSso(sam, id)).location);
    const vic = consoleUser(w);
    await vic.signIn("vic", "viewer");
    await vic.get("/console/approvals");
    const res = await vic.post(`/console/grants/${grantId}/approve`);
    expect(res.status).toBe(403);
    expect(res.text).toContain("you have &#39;viewer&#39;");
    const grant = await w.call("GET", `/admin/v1/grants/${grantId}`, { key: BOOTSTRAP });
    expect(grant.json.status).toBe("pending");
    // Nor may a viewer propose: no button, and the form is refused.
    expect((await vic.get(`/console/customers/${id}`)).text).not.toContain("Grant access");
    expect((await vic.get(`/console/customers/${id}/grant`)).status).toBe(403);
  });

  it("the proposer cannot approve their own grant, even as an approver (four eyes)", async () => {
    const id = await freeCustomer();
    const ada = consoleUser(w);
    await ada.signIn("ada", "approver");
    const grantId = grantIdOf((await proposeSso(ada, id)).location);
    const res = await ada.post(`/console/grants/${grantId}/approve`);
    expect(res.status).toBe(403);
    const grant = await w.call("GET", `/admin/v1/grants/${grantId}`, { key: BOOTSTRAP });
    expect(grant.json.status).toBe("pending");
  });
});

describe("catalog", () => {
  it("a viewer sees plans read-only and the API refuses an apply; an admin previews the blast radius and applies", async () => {
    const planId = uid("plan");
    const created = await w.call("POST", "/admin/v1/plans", {
      key: BOOTSTRAP,
      body: { id: planId, name: "Console Plan", entitlements: { api_calls: { limit: 10, reset: "month" } } },
    });
    expect(created.status).toBe(201);
    const customer = uid();
    await createCustomer(w, { id: customer, subscriptions: [{ planId }] });
    const edited = JSON.stringify({ name: "Console Plan", entitlements: { api_calls: { limit: 5, reset: "month" } } });

    const vic = consoleUser(w);
    await vic.signIn("vic", "viewer");
    const page = await vic.get(`/console/catalog/plans/${planId}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain("read-only");
    expect(page.text).toMatch(/<textarea[^>]*readonly/);
    const refused = await vic.post(`/console/catalog/plans/${planId}/apply`, { plan: edited, migrate: "now" });
    expect(refused.status).toBe(403);

    const root = consoleUser(w);
    await root.signIn("root", "admin");
    await root.get(`/console/catalog/plans/${planId}`);
    const preview = await root.post(`/console/catalog/plans/${planId}/preview`, { plan: edited, migrate: "now" });
    expect(preview.status).toBe(200);
    expect(preview.text).toContain("Blast radius");
    expect(preview.text).toContain("1 customer(s) lose something");
    expect(preview.text).toContain(customer);
    const applied = await root.post(`/console/catalog/plans/${planId}/apply`, { plan: edited, migrate: "now" });
    expect(applied.status).toBe(303);
    const plan = await w.call("GET", `/admin/v1/plans/${planId}`, { key: BOOTSTRAP });
    expect(plan.json.entitlements.api_calls.limit).toBe(5);
    expect(plan.json.version).toBe(2);
    const audit = await auditOf("plan", planId);
    expect(audit.at(-1)?.actor).toBe("root");
  });
});

describe("analytics", () => {
  it("renders each panel from GET /admin/v1/analytics/*, the usage series of a metered feature", async () => {
    const vic = consoleUser(w, { ...env, ANALYTICS_MODE: "local" } as Cloudflare.Env);
    await vic.signIn("vic", "viewer");
    const page = await vic.get("/console/analytics?featureKey=seats");
    expect(page.status).toBe(200);
    for (const panel of [
      "Adoption per feature",
      "Usage over time",
      "Denials by reason",
      "Upsell candidates",
      "Trials",
    ]) {
      const body = new RegExp(`<section class="card" data-panel="${panel}">([\\s\\S]*?)</section>`).exec(
        page.text,
      )?.[1];
      expect(body, panel).toBeDefined();
      expect(body, panel).not.toContain("notice warn"); // the API answered every panel
    }
    expect(page.text).toMatch(/<option value="seats" selected="">seats<\/option>/);
    expect(page.text).toContain("<code>sso</code>");
  });

  it("shows the API's refusal inside a panel (analytics off), and the rest of the page stands", async () => {
    const vic = consoleUser(w);
    await vic.signIn("vic", "viewer");
    const page = await vic.get("/console/analytics");
    expect(page.status).toBe(200);
    expect(page.text).toContain("Analytics are off here");
  });

  it("draws the endpoints' answers: adoption as a chart and a table, denials by reason, a refused panel alone", async () => {
    const ok = <T>(body: T) => ({ ok: true as const, status: 200, body });
    const html = await AnalyticsView({
      answers: {
        features: ok({
          features: [
            {
              featureKey: "sso",
              entitledCustomers: 4,
              activeCustomers: 3,
              adoption: 0.75,
              checks: 120,
              denials: 7,
              usage: { total: 0, p50: 0, p90: 0, max: 0 },
            },
          ],
        }),
        usage: ok({ points: [{ t: "2026-12-01T00:00:00.000Z", total: 42, customers: 2 }] }),
        denials: ok({ rows: [{ featureKey: "sso", key: "role_denied", count: 7 }] }),
        upsell: { ok: false, status: 400, problem: { status: 400, title: "Bad", detail: "pick a feature <b>" } },
        trials: ok({ plans: [{ planId: "enterprise", trials: 2, converted: 1, nested: { x: 1 } }] }),
      },
    }).toString();
    expect(html).toContain("data-chart=");
    expect(html).toContain("<td>75%</td>");
    expect(html).toContain("<td>role_denied</td><td>7</td>");
    expect(html).toContain("pick a feature &lt;b&gt;");
    expect(html).toContain("<th>planId</th><th>trials</th><th>converted</th>");
    expect(html).not.toContain("nested");
  });
});

describe("audit", () => {
  it("filters by customer and shows actor, before and after", async () => {
    const id = await freeCustomer();
    const sam = consoleUser(w);
    await sam.signIn("sam", "support");
    await proposeSso(sam, id);
    const page = await sam.get(`/console/audit?customerId=${id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-action="grant.propose"');
    expect(page.text).toContain('data-action="customer.create"');
    expect(csrfOf(page.text)).not.toBeNull();
    const none = await sam.get(`/console/audit?customerId=${id}&action=grant.approve`);
    expect(none.text).toContain("No audit entries.");
  });
});
