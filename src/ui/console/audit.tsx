// The audit screen: GET /admin/v1/audit with its filters (customer, actor, action, entity, time), newest
// first, each entry with its actor and what it changed (before and after), one page at a time.
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { adminRead } from "../admin-call";
import { when } from "../layout";
import { operatorOf } from "./auth";
import { consolePage } from "./chrome";
import type { AuditEntry, Page } from "./wire";

const FILTERS = [
  ["customerId", "Customer"],
  ["actor", "Actor"],
  ["action", "Action"],
  ["entityType", "Entity type"],
  ["entityId", "Entity id"],
] as const;

/** A datetime-local value (UTC) as ISO; anything else is left out. */
function instant(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const t = Date.parse(/[zZ]$/.test(raw) ? raw : `${raw}Z`);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

export async function auditPage(c: Context<AppEnv>) {
  const params = new URLSearchParams({ limit: "50" });
  const values: Record<string, string> = {};
  for (const [name] of FILTERS) {
    const v = c.req.query(name)?.trim();
    if (v) {
      params.set(name, v);
      values[name] = v;
    }
  }
  for (const name of ["from", "to"] as const) {
    const v = instant(c.req.query(name));
    if (v) params.set(name, v);
    values[name] = c.req.query(name) ?? "";
  }
  const cursor = c.req.query("cursor");
  if (cursor) params.set("cursor", cursor);
  const entries = await adminRead<Page<AuditEntry>>(c, operatorOf(c), `/admin/v1/audit?${params}`);
  const older = new URLSearchParams(params);
  older.delete("limit");
  for (const name of ["from", "to"]) if (values[name]) older.set(name, values[name] ?? "");
  if (entries.nextCursor) older.set("cursor", entries.nextCursor);
  return consolePage(c, {
    title: "Audit",
    section: "audit",
    children: (
      <>
        <h1>Audit log</h1>
        <form method="get" action="/console/audit" class="filters" aria-label="Filters">
          {FILTERS.map(([name, label]) => (
            <label>
              {label}
              <input name={name} value={values[name] ?? ""} />
            </label>
          ))}
          <label>
            From (UTC)
            <input type="datetime-local" name="from" value={values.from} />
          </label>
          <label>
            To (UTC)
            <input type="datetime-local" name="to" value={values.to} />
          </label>
          <button type="submit">Filter</button>
        </form>
        <AuditTable entries={entries.items} showCustomer />
        {entries.nextCursor ? (
          <p>
            <a href={`/console/audit?${older}`}>Older entries</a>
          </p>
        ) : null}
      </>
    ),
  });
}

export function AuditTable(p: { entries: AuditEntry[]; showCustomer: boolean }) {
  if (p.entries.length === 0) return <p class="muted">No audit entries.</p>;
  return (
    <table data-testid="audit">
      <thead>
        <tr>
          <th>At</th>
          <th>Actor</th>
          <th>Action</th>
          <th>Entity</th>
          {p.showCustomer ? <th>Customer</th> : null}
          <th>Reason</th>
          <th>Before → after</th>
        </tr>
      </thead>
      <tbody>
        {p.entries.map((e) => (
          <tr data-action={e.action}>
            <td>{when(e.at)}</td>
            <td>
              {e.actor} <span class="muted">{e.actorType}</span>
            </td>
            <td>
              <code>{e.action}</code>
            </td>
            <td>
              {e.entityType} <code>{e.entityId}</code>
            </td>
            {p.showCustomer ? (
              <td>
                {e.customerId ? (
                  <a href={`/console/customers/${encodeURIComponent(e.customerId)}`}>{e.customerId}</a>
                ) : (
                  "—"
                )}
              </td>
            ) : null}
            <td>{e.reason ?? ""}</td>
            <td>
              <details>
                <summary>show</summary>
                <strong>before</strong>
                <pre>{e.before === null ? "—" : JSON.stringify(e.before, null, 2)}</pre>
                <strong>after</strong>
                <pre>{e.after === null ? "—" : JSON.stringify(e.after, null, 2)}</pre>
              </details>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
