// The console's customer screens: the search box (the console's home) and one customer: subscriptions
// with their windows, every feature now with the chain of sources behind it (the explain endpoint),
// usage against limits with a chart of past periods (GET /v1/usage's own report), grants, the audit
// timeline, and "what did they have on date X" (snapshot history). Every read is the admin API's.
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { atLeast } from "../../auth/admin";
import { usageReport } from "../../routes/usage";
import { adminCall, adminRead } from "../admin-call";
import { Notice, when } from "../layout";
import { AuditTable } from "./audit";
import { operatorOf } from "./auth";
import { consolePage } from "./chrome";
import { GrantsTable } from "./grants";
import {
  type AuditEntry,
  type CustomerDetail,
  type EntitlementsAt,
  type Explained,
  type ExplainedSource,
  type Grant,
  type Page,
  type Subscription,
  specSummary,
} from "./wire";

const q = (params: Record<string, string | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") s.set(k, v);
  const text = s.toString();
  return text ? `?${text}` : "";
};

export async function searchPage(c: Context<AppEnv>) {
  const text = (c.req.query("q") ?? "").trim();
  const me = operatorOf(c);
  const found = text
    ? await adminRead<Page<CustomerDetail>>(c, me, `/admin/v1/customers${q({ q: text, limit: "25" })}`)
    : null;
  const pending = await adminRead<Page<Grant>>(c, me, "/admin/v1/grants?status=pending&limit=200");
  return consolePage(c, {
    title: "Customers",
    section: "customers",
    children: (
      <>
        <h1>Find a customer</h1>
        <search>
          <form method="get" action="/console" class="search">
            <input
              type="search"
              name="q"
              value={text}
              aria-label="Customer id or name"
              placeholder="Customer id or name"
              autofocus
            />
            <button type="submit">Search</button>
          </form>
        </search>
        {found ? (
          found.items.length === 0 ? (
            <Notice>No customer's id or name contains “{text}”.</Notice>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>Customer</th>
                  <th>Id</th>
                  <th>Residency</th>
                  <th>Billing id</th>
                </tr>
              </thead>
              <tbody>
                {found.items.map((cu) => (
                  <tr>
                    <td>
                      <a href={`/console/customers/${encodeURIComponent(cu.id)}`}>{cu.name || cu.id}</a>
                    </td>
                    <td>
                      <code>{cu.id}</code>
                    </td>
                    <td>{cu.residency ?? "—"}</td>
                    <td>{cu.billingCustomerId ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        ) : null}
        <p class="muted">
          {pending.items.length === 0 ? (
            "No grant is waiting for approval."
          ) : (
            <a href="/console/approvals">{`${pending.items.length} grant(s) waiting for approval`}</a>
          )}
        </p>
      </>
    ),
  });
}

/** `at` from a datetime-local input (no zone: read as UTC) or an ISO instant; null when absent or invalid. */
function instantParam(raw: string | undefined): string | null {
  if (!raw) return null;
  const withZone = /[zZ]|[+-]\d\d:\d\d$/.test(raw) ? raw : `${raw}${raw.length === 16 ? ":00" : ""}Z`;
  const t = Date.parse(withZone);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

export async function customerPage(c: Context<AppEnv>) {
  const id = c.req.param("id") ?? "";
  const me = operatorOf(c);
  const enc = encodeURIComponent(id);
  const minVersion = c.req.query("minVersion");
  const at = instantParam(c.req.query("at"));
  const customer = await adminRead<CustomerDetail>(c, me, `/admin/v1/customers/${enc}`);
  const [subs, explained, grants, audit, history] = await Promise.all([
    adminRead<Page<Subscription>>(c, me, `/admin/v1/subscriptions${q({ customerId: id, limit: "50" })}`),
    adminCall<Explained>(c, me, "GET", `/admin/v1/customers/${enc}/entitlements/explain${q({ minVersion })}`),
    adminRead<Page<Grant>>(c, me, `/admin/v1/grants${q({ customerId: id, limit: "50" })}`),
    adminRead<Page<AuditEntry>>(c, me, `/admin/v1/audit${q({ customerId: id, limit: "15" })}`),
    at ? adminCall<EntitlementsAt>(c, me, "GET", `/admin/v1/customers/${enc}/entitlements${q({ at })}`) : null,
  ]);
  c.set("principal", me); // the usage report checks the caller may see this customer
  const usage = await usageReport(c, id, { limit: 200 });
  const approved = c.req.query("approved");
  return consolePage(c, {
    title: customer.name || customer.id,
    section: "customers",
    charts: true,
    children: (
      <>
        <h1>
          {customer.name || customer.id} <code class="muted">{customer.id}</code>
        </h1>
        {approved ? (
          <Notice>
            Grant <code>{approved}</code> approved; this page reads version <code>{minVersion ?? "latest"}</code> or
            newer.
          </Notice>
        ) : null}
        <div class="actions">
          {atLeast(c.get("consoleSession").role, "support") ? (
            <a class="button" href={`/console/customers/${enc}/grant`}>
              Grant access
            </a>
          ) : null}
          <a class="button secondary" href={`/console/audit${q({ customerId: id })}`}>
            Full audit log
          </a>
        </div>
        <dl class="facts card">
          <dt>Residency</dt>
          <dd>{customer.residency ?? "none"}</dd>
          <dt>Billing id</dt>
          <dd>{customer.billingCustomerId ?? "—"}</dd>
          <dt>Revision</dt>
          <dd>{customer.rev}</dd>
          <dt>Since</dt>
          <dd>{when(customer.createdAt)}</dd>
        </dl>

        <h2>Subscriptions</h2>
        <table>
          <thead>
            <tr>
              <th>Plan</th>
              <th>Status</th>
              <th>Started</th>
              <th>Trial ends</th>
              <th>Current period</th>
              <th>Ends / changes</th>
            </tr>
          </thead>
          <tbody>
            {subs.items.map((s) => (
              <tr>
                <td>
                  <a href={`/console/catalog/plans/${encodeURIComponent(s.planId)}`}>{s.planId}</a>
                </td>
                <td>{s.status}</td>
                <td>{when(s.startedAt)}</td>
                <td>{when(s.trialEnd)}</td>
                <td>
                  {when(s.currentPeriodStart)} → {when(s.currentPeriodEnd)}
                </td>
                <td>
                  {s.endedAt ? `ended ${when(s.endedAt)}` : s.cancelAt ? `cancels ${when(s.cancelAt)}` : ""}
                  {s.scheduledPlanId ? ` → ${s.scheduledPlanId} at ${when(s.scheduledChangeAt)}` : ""}
                  {s.graceUntil ? ` grace until ${when(s.graceUntil)}` : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>

        <h2 id="entitlements">Entitlements now, and why</h2>
        {explained.ok ? (
          <ExplainTable explained={explained.body} />
        ) : (
          <Notice kind="warn">
            {explained.problem.detail || explained.problem.title} Reload the page in a moment.
          </Notice>
        )}

        <h2 id="usage">Usage</h2>
        <div class="grid">
          {usage.features.map((u) => (
            <UsageCard usage={u} />
          ))}
        </div>

        <h2 id="grants">Grants</h2>
        <GrantsTable
          grants={grants.items}
          csrf={c.get("csrfToken")}
          showCustomer={false}
          canDecide={atLeast(c.get("consoleSession").role, "approver")}
        />

        <h2 id="time-travel">What did they have on…</h2>
        <form method="get" action={`/console/customers/${enc}#time-travel`} class="filters">
          <label>
            Instant (UTC)
            <input type="datetime-local" name="at" value={at ? at.slice(0, 16) : ""} required />
          </label>
          <button type="submit">Show</button>
        </form>
        {history ? (
          history.ok ? (
            <HistoryTable at={history.body} />
          ) : (
            <Notice kind="warn">{history.problem.detail}</Notice>
          )
        ) : null}

        <h2 id="audit">Audit timeline</h2>
        <AuditTable entries={audit.items} showCustomer={false} />
      </>
    ),
  });
}

function ExplainTable(p: { explained: Explained }) {
  return (
    <table data-testid="entitlements">
      <thead>
        <tr>
          <th>Feature</th>
          <th>Check now</th>
          <th>Effective</th>
          <th>Why: the chain of sources</th>
        </tr>
      </thead>
      <tbody>
        {Object.entries(p.explained.features).map(([key, f]) => (
          <tr data-feature={key}>
            <td>
              <code>{key}</code> <span class="muted">{f.type}</span>
            </td>
            <td>
              <span class={`badge ${f.check.allowed ? "allowed" : "denied"}`}>
                {f.check.allowed ? "allowed" : "denied"}
              </span>{" "}
              <span class="muted">{f.check.reason}</span>
            </td>
            <td>{specSummary(f.effective)}</td>
            <td>
              {f.sources.length === 0 ? (
                <span class="muted">no plan, add-on or grant has it</span>
              ) : (
                <ol class="chain">
                  {f.sources.map((s) => (
                    <SourceItem source={s} />
                  ))}
                </ol>
              )}
              {f.changesAt ? <span class="muted">changes at {when(f.changesAt)}</span> : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SourceItem(p: { source: ExplainedSource }) {
  const s = p.source;
  const label = s.kind === "grant" ? "grant" : s.kind === "addon" ? "add-on" : "plan";
  return (
    <li>
      {label} <code>{s.id}</code>
      {s.planVersion !== undefined ? ` v${s.planVersion}` : ""}
      {s.mode === "replace" ? " (replaces)" : ""}: {specSummary(s.spec)} — <em>{s.state}</em>
      {s.lapse ? ` (${s.lapse})` : ""}
      {s.from || s.until ? <span class="muted">{` [${when(s.from)} → ${when(s.until)})`}</span> : null}
    </li>
  );
}

type UsageRow = Awaited<ReturnType<typeof usageReport>>["features"][number];

function UsageCard(p: { usage: UsageRow }) {
  const u = p.usage;
  const pct = u.limit ? Math.min(100, Math.round((u.used / u.limit) * 100)) : 0;
  // Oldest first, the current period last; x in seconds (uPlot's time scale).
  const periods = [...u.past].reverse();
  const chart = {
    labels: [...periods.map((r) => r.periodStart.slice(0, 10)), "now"],
    values: [...periods.map((r) => r.total), u.used],
    limit: u.limit,
  };
  return (
    <section class="card" data-usage={u.feature}>
      <strong>
        <code>{u.feature}</code>
      </strong>
      <p>
        <span data-testid="used">{u.used}</span> used of {u.limit === null ? "unlimited" : u.limit}
        {u.reserved > 0 ? ` (${u.reserved} reserved)` : ""}
        {u.overage > 0 ? `, ${u.overage} over` : ""}
      </p>
      {u.limit !== null ? <progress max={100} value={pct} aria-label={`${u.feature} ${pct}% of the limit`} /> : null}
      <p class="muted">resets {u.resetsAt ? when(u.resetsAt) : "never (a gauge)"}</p>
      {u.resetsAt ? (
        <div class="chart" data-chart={JSON.stringify(chart)}>
          <span class="muted">{`${periods.length} past period(s)`}</span>
        </div>
      ) : null}
    </section>
  );
}

function HistoryTable(p: { at: EntitlementsAt }) {
  return (
    <table data-testid="history">
      <thead>
        <tr>
          <th>Feature</th>
          <th>{`At ${when(p.at.at)} (snapshot v${p.at.snapshotVersion}, compiled ${when(p.at.compiledAt)})`}</th>
        </tr>
      </thead>
      <tbody>
        {Object.entries(p.at.features).map(([key, d]) => (
          <tr>
            <td>
              <code>{key}</code>
            </td>
            <td>
              <span class={`badge ${d.allowed ? "allowed" : "denied"}`}>{d.allowed ? "allowed" : "denied"}</span>{" "}
              <span class="muted">{d.reason}</span>
              {d.limit !== undefined ? ` limit ${d.limit ?? "unlimited"}` : ""}
              {d.value !== undefined ? ` = ${JSON.stringify(d.value)}` : ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
