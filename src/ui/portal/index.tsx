// /portal?token=: the customer's self-service page, opened through a link minted by
// POST /v1/portal-sessions. It shows the plan, every entitlement (the check path's own decisions),
// usage against limits with the reset date (GET /v1/usage's report), and the plans that would give
// more (the check path's upgrade hints); "upgrade" or "add" hands off to PORTAL_UPGRADE_URL and never
// changes an entitlement here. Themed by PORTAL_ACCENT_COLOR and PORTAL_LOGO_URL; framed only by
// PORTAL_FRAME_ANCESTORS.
import type { Context } from "hono";
import { Hono } from "hono";
import type { AppEnv } from "../../app-env";
import { checkDeps, evaluateAll, evaluateCheck } from "../../check-path";
import { configOf } from "../../config";
import type { UpgradeHint } from "../../domain/types";
import { HINTED_REASONS } from "../../domain/upgrade-hints";
import { logRequestFailure, problemTitle, toProblem } from "../../http/problem";
import { usageReport } from "../../routes/usage";
import { customerLinks, readCustomer } from "../../store/customers";
import { listFeatures } from "../../store/features";
import { readPlan } from "../../store/plans";
import { listPriceMappings } from "../../store/prices";
import { Notice, renderPage, Shell, when } from "../layout";
import { verifyPortalToken } from "../portal-token";
import { pageHeaders } from "../security";

export const portalRoutes = new Hono<AppEnv>();
portalRoutes.use("*", pageHeaders(true));

/** The theme: CSS variables from config (each value checked by src/config.ts, so none can break out). */
portalRoutes.get("/theme.css", (c) => {
  const { accentColor } = configOf(c.env).ui.portal;
  return c.body(`:root { --tg-accent: ${accentColor}; }\n`, 200, {
    "Content-Type": "text/css; charset=utf-8",
    "Cache-Control": "no-cache",
  });
});

portalRoutes.get("/", async (c) => {
  const token = c.req.query("token") ?? "";
  const verified = token ? await verifyPortalToken(c, token) : ({ ok: false, reason: "invalid" } as const);
  if (!verified.ok)
    return portalPage(
      c,
      <>
        <h1>{verified.reason === "expired" ? "This link has expired" : "This link is not valid"}</h1>
        <Notice kind="error">Portal links work for a few minutes. Open the portal again from the app.</Notice>
      </>,
      null,
      401,
    );
  const { customerId, returnUrl, keyId } = verified.claims;
  // The page reads as the key that minted the link, bound to this customer.
  c.set("principal", { kind: "api_key", id: keyId, scopes: ["check"], customerId });
  return portalPage(c, await customerView(c, customerId), returnUrl);
});

portalRoutes.onError((err, c) => {
  const p = toProblem(err);
  if (p.status >= 500) logRequestFailure(c, err);
  const status = ([400, 401, 403, 404, 409, 503].includes(p.status) ? p.status : 500) as 400 | 401 | 404 | 500;
  return portalPage(
    c,
    <>
      <h1>{problemTitle(p)}</h1>
      <Notice kind="error">{p.detail}</Notice>
    </>,
    null,
    status,
  );
});

function portalPage(
  c: Context<AppEnv>,
  body: unknown,
  returnUrl: string | null,
  status: 200 | 400 | 401 | 404 | 500 = 200,
) {
  const { logoUrl, title } = configOf(c.env).ui.portal;
  const header = (
    <header class="top">
      {logoUrl ? <img class="logo" src={logoUrl} alt="" /> : null}
      <span class="brand">{title}</span>
      <nav />
      {returnUrl ? (
        <a class="button secondary" href={returnUrl}>
          Back to the app
        </a>
      ) : null}
    </header>
  );
  return renderPage(
    c,
    <Shell title={title} header={header} styles={["/portal/theme.css"]} charts>
      {body as never}
    </Shell>,
    status,
  );
}

// The portal checks without a user's role or country: a feature the plan gives only to some roles or
// regions is included, with that condition, not missing.
const CONDITIONAL = new Set(["role_denied", "region_blocked"]);
const STATUS_LABEL: Record<string, string> = {
  role_denied: "included for some roles",
  region_blocked: "included in some regions",
  limit_reached: "limit reached",
  trial_expired: "trial ended",
  subscription_inactive: "subscription inactive",
  grant_expired: "expired",
};

const humanize = (key: string) => key.replaceAll("_", " ").replace(/^./, (ch) => ch.toUpperCase());

async function customerView(c: Context<AppEnv>, customerId: string) {
  const db = c.env.DB;
  const deps = checkDeps(c);
  const [customer, links, all, usage, features] = await Promise.all([
    readCustomer(db, customerId),
    customerLinks(db, customerId),
    evaluateAll(deps, { customerId }),
    usageReport(c, customerId, { limit: 24 }),
    listFeatures(db, {}, 200),
  ]);
  const describe = new Map(features.map((f) => [f.key, f]));
  /** A feature as a customer reads it: its catalog description, else its key in words. */
  const label = (key: string) => describe.get(key)?.description || humanize(key);
  const live = links.subscriptions.filter((s) => ["active", "trialing", "past_due"].includes(s.status));
  // What would give more: the check path's upgrade hints for each denied feature, grouped by plan.
  const denied = Object.entries(all.features).filter(([, d]) => !d.allowed && HINTED_REASONS.has(d.reason));
  const hints = await Promise.all(
    denied.map(async ([feature]) => ({
      feature,
      upgrade: (await evaluateCheck(deps, { customerId, feature, include: ["upgrade"] })).upgrade ?? [],
    })),
  );
  const byPlan = new Map<string, { hint: UpgradeHint; features: string[] }>();
  for (const { feature, upgrade } of hints)
    for (const hint of upgrade) {
      const entry = byPlan.get(hint.planId) ?? { hint, features: [] };
      entry.features.push(feature);
      byPlan.set(hint.planId, entry);
    }
  const planIds = [...new Set([...live.map((s) => s.plan_id), ...byPlan.keys()])];
  const plans = new Map(
    (await Promise.all(planIds.map((id) => readPlan(db, id)))).flatMap((p) => (p ? [[p.id, p]] : [])),
  );
  const upgrades = await Promise.all(
    [...byPlan.values()].map(async ({ hint, features: unlocks }) => ({
      hint,
      unlocks,
      href: await upgradeHref(c, customerId, customer?.billing_customer_id ?? null, hint.planId),
    })),
  );
  const usageOf = new Map(usage.features.map((u) => [u.feature, u]));
  return (
    <>
      <h1>{customer?.name || customerId}</h1>
      <section class="card" data-testid="plan">
        <h2>Your plan</h2>
        {live.length === 0 ? (
          <p>No active plan.</p>
        ) : (
          <ul>
            {live.map((s) => (
              <li>
                <strong>{plans.get(s.plan_id)?.name ?? s.plan_id}</strong>{" "}
                <span class="muted">
                  {s.status === "trialing" ? "(trial)" : s.status === "past_due" ? "(payment due)" : ""}
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <h2>Usage</h2>
      <div class="grid" data-testid="usage">
        {usage.features
          .filter((u) => u.entitled)
          .map((u) => {
            const pct = u.limit ? Math.min(100, Math.round((u.used / u.limit) * 100)) : 0;
            const periods = [...u.past].reverse();
            const chart = {
              labels: [...periods.map((r) => r.periodStart.slice(0, 10)), "now"],
              values: [...periods.map((r) => r.total), u.used],
              limit: u.limit,
            };
            return (
              <section class="card" data-usage={u.feature}>
                <strong>{label(u.feature)}</strong>
                <p>
                  <span data-testid="used">{u.used}</span> of {u.limit === null ? "unlimited" : u.limit}{" "}
                  {describe.get(u.feature)?.unit ?? ""}
                </p>
                {u.limit !== null ? (
                  <progress max={100} value={pct} aria-label={`${humanize(u.feature)}: ${pct}%`} />
                ) : null}
                <p class="muted">{u.resetsAt ? `Resets ${when(u.resetsAt)}` : "Does not reset"}</p>
                {periods.length > 0 ? <div class="chart" data-chart={JSON.stringify(chart)} /> : null}
              </section>
            );
          })}
      </div>
      <h2>What your plan includes</h2>
      <table data-testid="entitlements">
        <tbody>
          {Object.entries(all.features).map(([key, d]) => (
            <tr data-feature={key}>
              <td>
                <strong>{label(key)}</strong> <code class="muted">{key}</code>
              </td>
              <td>
                <span class={`badge ${d.allowed || CONDITIONAL.has(d.reason) ? "allowed" : "denied"}`}>
                  {d.allowed ? "included" : (STATUS_LABEL[d.reason] ?? "not included")}
                </span>
              </td>
              <td>
                {d.value !== undefined ? String(d.value) : ""}
                {usageOf.has(key) && d.limit !== undefined
                  ? d.limit === null
                    ? "unlimited"
                    : `${d.limit} per period`
                  : ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {upgrades.length > 0 ? (
        <>
          <h2>Get more</h2>
          <div class="grid" data-testid="upgrades">
            {upgrades.map((u) => (
              <section class="card" data-plan={u.hint.planId}>
                <strong>{plans.get(u.hint.planId)?.name ?? u.hint.planId}</strong>{" "}
                <span class="muted">{u.hint.kind === "addon" ? "add-on" : "plan"}</span>
                <p>Unlocks {u.unlocks.map(label).join(", ")}.</p>
                {u.href ? (
                  <a class="button" href={u.href} target="_top" rel="noopener">
                    {u.hint.kind === "addon" ? `Add ${plans.get(u.hint.planId)?.name ?? u.hint.planId}` : "Upgrade"}
                  </a>
                ) : (
                  <p class="muted">Ask your account owner to change the plan.</p>
                )}
              </section>
            ))}
          </div>
        </>
      ) : null}
    </>
  );
}

/**
 * PORTAL_UPGRADE_URL with {planId}, {priceId} (the plan's first price mapping: a Stripe price for a
 * Checkout or Payment Link), {customerId}, {billingCustomerId} filled in, each URL-encoded; null when
 * no upgrade URL is configured. The portal only links: the app's checkout changes the subscription,
 * and the billing webhook brings the change back.
 */
async function upgradeHref(c: Context<AppEnv>, customerId: string, billingId: string | null, planId: string) {
  const template = configOf(c.env).ui.portal.upgradeUrl;
  if (!template) return null;
  const [price] = await listPriceMappings(c.env.DB, { after: "", planId }, 1);
  const values: Record<string, string> = {
    planId,
    priceId: price?.priceId ?? "",
    customerId,
    billingCustomerId: billingId ?? "",
  };
  return template.replace(/\{(planId|priceId|customerId|billingCustomerId)\}/g, (_m, k: string) =>
    encodeURIComponent(values[k] ?? ""),
  );
}
