// POST /v1/portal-sessions and /portal (src/routes/portal-sessions.ts, src/ui/portal): a short-lived
// link, read-only, showing what the check path and the usage report say; expiry on the injected clock.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { MINUTE_MS } from "./helpers/time";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let checkKey: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  checkKey = await createKey(w, ["check"]);
});

async function freeCustomer(name = "Portal Co") {
  const id = uid();
  await createCustomer(w, { id, name, subscriptions: [{ planId: "free" }] });
  return id;
}

const mint = (body: Record<string, unknown>, key = checkKey) => w.call("POST", "/v1/portal-sessions", { key, body });

/** The portal page of a minted URL, through the worker. */
const open = (url: string, bindings?: Cloudflare.Env) => {
  const u = new URL(url);
  return w.call("GET", `${u.pathname}${u.search}`, bindings ? { env: bindings } : {});
};

describe("POST /v1/portal-sessions", () => {
  it("answers a link valid for 15 minutes by default", async () => {
    const id = await freeCustomer();
    const res = await mint({ customerId: id, returnUrl: "https://app.example.com/settings" });
    expect(res.status).toBe(201);
    expect(res.json.url).toMatch(/^https:\/\/tollgate\.test\/portal\?token=[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(Date.parse(res.json.expiresAt) - w.clock.now()).toBeLessThanOrEqual(15 * MINUTE_MS);
    expect(Date.parse(res.json.expiresAt) - w.clock.now()).toBeGreaterThan(15 * MINUTE_MS - 1000);
  });

  it("refuses a key without the check scope, a key bound to another customer, unknown customers and bad URLs", async () => {
    const id = await freeCustomer();
    const other = await freeCustomer();
    await expectProblem(await mint({ customerId: id }, await createKey(w, ["usage"])), 403, "forbidden");
    await expectProblem(await mint({ customerId: id }, await createKey(w, ["check"], other)), 403, "forbidden");
    await expectProblem(await mint({ customerId: uid() }), 404, "not-found");
    await expectProblem(await mint({ customerId: id, returnUrl: "javascript:alert(1)" }), 400, "validation");
    await expectProblem(await mint({ customerId: id, ttlSeconds: 7200 }), 400, "validation");
    await expectProblem(await w.call("POST", "/v1/portal-sessions", { body: { customerId: id } }), 401);
  });
});

describe("/portal", () => {
  it("shows the plan, entitlements and usage against the limit with the reset date, then expires", async () => {
    const id = await freeCustomer();
    const usageKey = await createKey(w, ["usage"]);
    const used = await w.call("POST", "/v1/usage", {
      key: usageKey,
      body: { customerId: id, feature: "api_calls", amount: 7 },
    });
    expect(used.status).toBe(200);
    const { url } = (await mint({ customerId: id, ttlSeconds: 60, returnUrl: "https://app.example.com/" })).json;
    const page = await open(url);
    expect(page.status).toBe(200);
    expect(page.text).toContain("<strong>Free</strong>");
    const usage = /<section class="card" data-usage="api_calls">([\s\S]*?)<\/section>/.exec(page.text)?.[1] ?? "";
    expect(usage).toContain('<span data-testid="used">7</span> of 100');
    expect(usage).toMatch(/Resets \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/);
    expect(page.text).toMatch(/<tr data-feature="sso">[\s\S]*?not included/);
    expect(page.text).toMatch(/<tr data-feature="api_calls">[\s\S]*?included[\s\S]*?100 per period/);
    expect(page.text).toContain('href="https://app.example.com/"');
    expect(page.headers.get("Referrer-Policy")).toBe("no-referrer");
    expect(page.headers.get("Cache-Control")).toBe("no-store");
    await w.at(w.clock.now() + 61_000, async () => {
      const expired = await open(url);
      expect(expired.status).toBe(401);
      expect(expired.text).toContain("This link has expired");
      expect(expired.text).not.toContain("api_calls");
    });
  });

  it("offers the plans that would give more, linking to the configured checkout with the plan filled in", async () => {
    const id = await freeCustomer();
    const { url } = (await mint({ customerId: id })).json;
    const page = await open(url);
    const pro = /<section class="card" data-plan="pro">([\s\S]*?)<\/section>/.exec(page.text)?.[1] ?? "";
    // sso needs a role on pro, and the portal checks without one: it is not among what pro unlocks here.
    expect(pro).toContain("Unlocks Audit export, Beta ai, Storage gb.");
    // The test catalog maps the Stripe price price_pro to pro (its prices section).
    expect(pro).toContain(`href="https://billing.example.com/upgrade?plan=pro&amp;price=price_pro&amp;customer=${id}"`);
    // Without PORTAL_UPGRADE_URL there is nothing to click: the portal never changes entitlements itself.
    const bare = await open(url, { ...env, PORTAL_UPGRADE_URL: "" } as unknown as Cloudflare.Env);
    expect(bare.text).toContain("Ask your account owner");
    expect(bare.text).not.toContain("billing.example.com");
  });

  it("refuses a tampered token and a console session token", async () => {
    const id = await freeCustomer();
    const { url } = (await mint({ customerId: id })).json;
    const tampered = await open(`${url.slice(0, -2)}xx`);
    expect(tampered.status).toBe(401);
    expect(tampered.text).toContain("This link is not valid");
    expect((await w.call("GET", "/portal")).status).toBe(401);
  });

  it("has a strict CSP, framed only by PORTAL_FRAME_ANCESTORS, and escapes hostile names", async () => {
    const id = await freeCustomer(`<script>alert(1)</script>`);
    const { url } = (await mint({ customerId: id })).json;
    const page = await open(url);
    expect(page.text).not.toContain("<script>alert");
    expect(page.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    const csp = page.headers.get("Content-Security-Policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const framed = await open(url, {
      ...env,
      PORTAL_FRAME_ANCESTORS: "https://app.example.com, https://admin.example.com",
    } as Cloudflare.Env);
    expect(framed.headers.get("Content-Security-Policy")).toContain(
      "frame-ancestors https://app.example.com https://admin.example.com",
    );
    expect(framed.headers.get("X-Frame-Options")).toBeNull();
  });

  it("takes its accent colour from config as a stylesheet (no inline style)", async () => {
    const css = await w.call("GET", "/portal/theme.css", {
      env: { ...env, PORTAL_ACCENT_COLOR: "#0a7" } as Cloudflare.Env,
    });
    expect(css.status).toBe(200);
    expect(css.headers.get("Content-Type")).toContain("text/css");
    expect(css.text).toBe(":root { --tg-accent: #0a7; }\n");
    const hostile = await w.call("GET", "/portal/theme.css", {
      env: { ...env, PORTAL_ACCENT_COLOR: "red;}body{display:none" } as Cloudflare.Env,
    });
    expect(hostile.text).toBe(":root { --tg-accent: #3355cc; }\n");
  });

  it("never writes: opening the portal leaves the audit log and the customer as they were", async () => {
    const id = await freeCustomer();
    const before = (await w.call("GET", `/admin/v1/audit?customerId=${id}`, { key: BOOTSTRAP })).json.items.length;
    const { url } = (await mint({ customerId: id })).json;
    await open(url);
    const after = (await w.call("GET", `/admin/v1/audit?customerId=${id}`, { key: BOOTSTRAP })).json.items.length;
    expect(after).toBe(before);
  });
});
