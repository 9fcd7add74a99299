// The analytics screen: the usage and denial analytics of GET /admin/v1/analytics/* (viewer) as charts and
// tables, each panel read through the admin API like every other screen. A build without those routes
// (or a panel the API refuses) shows the API's answer in that panel instead of failing the page.
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { type AdminAnswer, adminCall, adminRead } from "../admin-call";
import { Notice } from "../layout";
import { operatorOf } from "./auth";
import { consolePage } from "./chrome";
import type { CatalogFile } from "./wire";

interface FeatureRow {
  featureKey: string;
  entitledCustomers: number;
  activeCustomers: number;
  adoption: number;
  checks: number;
  denials: number;
  usage?: { total: number; p50: number; p90: number; max: number };
}
interface UsagePoint {
  t: string;
  total: number;
  customers: number;
}
interface DenialRow {
  featureKey: string;
  key: string;
  count: number;
}

const PATHS = {
  features: "/admin/v1/analytics/features",
  usage: "/admin/v1/analytics/usage",
  denials: "/admin/v1/analytics/denials?by=reason",
  upsell: "/admin/v1/analytics/upsell",
  trials: "/admin/v1/analytics/trials",
} as const;

export async function analyticsPage(c: Context<AppEnv>) {
  const me = operatorOf(c);
  // The usage series is per metered feature: the one asked for, else the catalog's first.
  const catalog = await adminRead<CatalogFile>(c, me, "/admin/v1/catalog");
  const metered = Object.entries(catalog.features ?? {})
    .filter(([, f]) => f.type === "metered")
    .map(([key]) => key);
  const asked = c.req.query("featureKey");
  const featureKey = asked && metered.includes(asked) ? asked : metered[0];
  const usagePath = featureKey ? `${PATHS.usage}?featureKey=${encodeURIComponent(featureKey)}` : PATHS.usage;
  const [features, usage, denials, upsell, trials] = await Promise.all([
    adminCall<{ features: FeatureRow[] }>(c, me, "GET", PATHS.features),
    adminCall<{ points: UsagePoint[] }>(c, me, "GET", usagePath),
    adminCall<{ rows: DenialRow[] }>(c, me, "GET", PATHS.denials),
    adminCall<{ candidates: Record<string, unknown>[] }>(c, me, "GET", PATHS.upsell),
    adminCall<{ plans: Record<string, unknown>[] }>(c, me, "GET", PATHS.trials),
  ]);
  return consolePage(c, {
    title: "Analytics",
    section: "analytics",
    charts: true,
    children: (
      <>
        <AnalyticsView answers={{ features, usage, denials, upsell, trials }} />
        <form method="get" action="/console/analytics" class="filters" aria-label="Usage series">
          <label>
            Usage series of
            <select name="featureKey">
              {metered.map((k) => (
                <option value={k} selected={k === featureKey}>
                  {k}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Show</button>
        </form>
      </>
    ),
  });
}

export interface AnalyticsAnswers {
  features: AdminAnswer<{ features: FeatureRow[] }>;
  usage: AdminAnswer<{ points: UsagePoint[] }>;
  denials: AdminAnswer<{ rows: DenialRow[] }>;
  upsell: AdminAnswer<{ candidates: Record<string, unknown>[] }>;
  trials: AdminAnswer<{ plans: Record<string, unknown>[] }>;
}

/** The screen's body from the five answers (exported for tests: it needs no request). */
export function AnalyticsView(p: { answers: AnalyticsAnswers }) {
  const { features, usage, denials, upsell, trials } = p.answers;
  const missing = [features, usage, denials, upsell, trials].every((a) => !a.ok && a.status === 404);
  return (
    <>
      <h1>Analytics</h1>
      {missing ? (
        <Notice kind="warn">This build has no analytics endpoints (GET /admin/v1/analytics/…).</Notice>
      ) : (
        <>
          <Panel title="Adoption per feature" answer={features} render={(b) => <FeaturesView rows={b.features} />} />
          <Panel title="Usage over time" answer={usage} render={(b) => <UsageView points={b.points} />} />
          <Panel title="Denials by reason" answer={denials} render={(b) => <DenialsView rows={b.rows} />} />
          <Panel title="Upsell candidates" answer={upsell} render={(b) => <RecordsView rows={b.candidates} />} />
          <Panel title="Trials" answer={trials} render={(b) => <RecordsView rows={b.plans} />} />
        </>
      )}
    </>
  );
}

function Panel<T>(p: { title: string; answer: AdminAnswer<T>; render: (body: T) => unknown }) {
  return (
    <section class="card" data-panel={p.title}>
      <h2>{p.title}</h2>
      {p.answer.ok ? (p.render(p.answer.body) as never) : <Notice kind="warn">{p.answer.problem.detail}</Notice>}
    </section>
  );
}

function FeaturesView(p: { rows: FeatureRow[] }) {
  if (p.rows.length === 0) return <p class="muted">No data yet.</p>;
  const chart = {
    labels: p.rows.map((r) => r.featureKey),
    values: p.rows.map((r) => Math.round(r.adoption * 100)),
    limit: 100,
  };
  return (
    <>
      <div class="chart" data-chart={JSON.stringify(chart)} />
      <table>
        <thead>
          <tr>
            <th>Feature</th>
            <th>Entitled</th>
            <th>Active</th>
            <th>Adoption</th>
            <th>Checks</th>
            <th>Denials</th>
            <th>Usage p50 / p90 / max</th>
          </tr>
        </thead>
        <tbody>
          {p.rows.map((r) => (
            <tr>
              <td>
                <code>{r.featureKey}</code>
              </td>
              <td>{r.entitledCustomers}</td>
              <td>{r.activeCustomers}</td>
              <td>{`${Math.round(r.adoption * 100)}%`}</td>
              <td>{r.checks}</td>
              <td>{r.denials}</td>
              <td>{r.usage ? `${r.usage.p50} / ${r.usage.p90} / ${r.usage.max}` : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function UsageView(p: { points: UsagePoint[] }) {
  if (p.points.length === 0) return <p class="muted">No data yet.</p>;
  // Day buckets are labelled by their date, hour buckets by date and hour.
  const hourly = p.points.length > 1 && p.points[0]?.t.slice(0, 10) === p.points[1]?.t.slice(0, 10);
  const label = (t: string) => (hourly ? t.slice(5, 13).replace("T", " ") : t.slice(0, 10));
  const chart = { labels: p.points.map((x) => label(x.t)), values: p.points.map((x) => x.total), limit: null };
  return <div class="chart" data-chart={JSON.stringify(chart)} />;
}

function DenialsView(p: { rows: DenialRow[] }) {
  if (p.rows.length === 0) return <p class="muted">No denials.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>Feature</th>
          <th>Reason</th>
          <th>Denials</th>
        </tr>
      </thead>
      <tbody>
        {p.rows.map((r) => (
          <tr>
            <td>
              <code>{r.featureKey}</code>
            </td>
            <td>{r.key}</td>
            <td>{r.count}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Rows whose shape the page does not need to know: their scalar fields as columns. */
function RecordsView(p: { rows: Record<string, unknown>[] }) {
  if (p.rows.length === 0) return <p class="muted">None.</p>;
  const keys = [...new Set(p.rows.flatMap((r) => Object.keys(r)))].filter((k) =>
    p.rows.some((r) => r[k] === null || typeof r[k] !== "object"),
  );
  return (
    <table>
      <thead>
        <tr>
          {keys.map((k) => (
            <th>{k}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {p.rows.map((r) => (
          <tr>
            {keys.map((k) => (
              <td>{r[k] === undefined || r[k] === null || typeof r[k] === "object" ? "" : String(r[k])}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
