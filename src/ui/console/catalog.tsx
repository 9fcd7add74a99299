// The catalog screen: features, plans and their versions (GET /admin/v1/catalog, /plans/{id}/versions),
// and a change preview: edit one plan, see the blast radius (POST /admin/v1/catalog/diff with the
// catalog as it would be: who gains or loses what), choose how existing subscribers move, apply
// (PUT /admin/v1/plans/{id}?migrate=). A viewer sees it read-only; the admin API refuses a write by
// anyone but an admin whatever the page shows.
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { atLeast } from "../../auth/admin";
import { adminCall, adminRead } from "../admin-call";
import { Notice, when } from "../layout";
import { operatorOf } from "./auth";
import { Csrf, consolePage } from "./chrome";
import type { CatalogDiff, CatalogFile, Plan, PlanDef } from "./wire";

interface PlanVersion {
  version: number;
  current: boolean;
  subscribers: number;
  entitlements: Record<string, unknown>;
  createdAt: string;
}

const MIGRATE_MODES = [
  ["stay", "Existing subscribers stay on their version (grandfathered)"],
  ["now", "Move every subscriber to the new version now"],
  ["at_period_end", "Move each subscriber at its own period end"],
] as const;

export async function catalogPage(c: Context<AppEnv>) {
  const catalog = await adminRead<CatalogFile>(c, operatorOf(c), "/admin/v1/catalog");
  const features = Object.entries(catalog.features ?? {});
  const plans = Object.entries(catalog.plans ?? {});
  return consolePage(c, {
    title: "Catalog",
    section: "catalog",
    children: (
      <>
        <h1>Catalog</h1>
        <h2>Plans and add-ons</h2>
        <table data-testid="plans">
          <thead>
            <tr>
              <th>Plan</th>
              <th>Kind</th>
              <th>Entitlements</th>
            </tr>
          </thead>
          <tbody>
            {plans.map(([id, plan]) => (
              <tr>
                <td>
                  <a href={`/console/catalog/plans/${encodeURIComponent(id)}`}>{plan.name ?? id}</a> <code>{id}</code>
                </td>
                <td>{plan.kind ?? "base"}</td>
                <td class="muted">{Object.keys(plan.entitlements ?? {}).join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Features</h2>
        <table data-testid="features">
          <thead>
            <tr>
              <th>Feature</th>
              <th>Type</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {features.map(([key, f]) => (
              <tr>
                <td>
                  <code>{key}</code>
                </td>
                <td>
                  {f.type}
                  {f.unit ? ` (${f.unit})` : ""}
                </td>
                <td>{f.description ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </>
    ),
  });
}

const editable = (p: Plan): PlanDef => ({
  name: p.name,
  kind: p.kind,
  description: p.description,
  entitlements: p.entitlements,
});

/** The plan, its versions and the edit form; after a preview, the blast radius as well. */
async function planPage(
  c: Context<AppEnv>,
  opts: { text?: string; diff?: CatalogDiff; error?: string; migrate?: string; status?: 200 | 400 | 403 | 409 } = {},
) {
  const id = c.req.param("id") ?? "";
  const me = operatorOf(c);
  const enc = encodeURIComponent(id);
  const [plan, versions] = await Promise.all([
    adminRead<Plan>(c, me, `/admin/v1/plans/${enc}`),
    adminRead<{ items: PlanVersion[] }>(c, me, `/admin/v1/plans/${enc}/versions`),
  ]);
  const canEdit = atLeast(c.get("consoleSession").role, "admin");
  const text = opts.text ?? JSON.stringify(editable(plan), null, 2);
  const applied = c.req.query("applied");
  return consolePage(
    c,
    {
      title: `Plan ${plan.name}`,
      section: "catalog",
      children: (
        <>
          <h1>
            {plan.name} <code class="muted">{plan.id}</code> <span class="badge">{`v${plan.version}`}</span>
          </h1>
          {applied ? <Notice>{`Applied: catalog version ${applied}.`}</Notice> : null}
          {opts.error ? <Notice kind="error">{opts.error}</Notice> : null}
          <h2>Versions</h2>
          <table data-testid="versions">
            <thead>
              <tr>
                <th>Version</th>
                <th>Subscribers</th>
                <th>Made</th>
                <th>Entitlements</th>
              </tr>
            </thead>
            <tbody>
              {versions.items.map((v) => (
                <tr>
                  <td>
                    {`v${v.version}`} {v.current ? <span class="badge allowed">current</span> : null}
                  </td>
                  <td>{v.subscribers}</td>
                  <td>{when(v.createdAt)}</td>
                  <td class="muted">{Object.keys(v.entitlements).join(", ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>{canEdit ? "Edit" : "Definition (read-only: editing needs the admin role)"}</h2>
          <form method="post" action={`/console/catalog/plans/${enc}/preview`} class="stack card">
            <Csrf token={c.get("csrfToken")} />
            <label for="plan">The plan as in a catalog file (JSON)</label>
            <textarea id="plan" name="plan" rows={18} readonly={!canEdit}>
              {text}
            </textarea>
            <fieldset disabled={!canEdit}>
              <legend>Existing subscribers, when the edit makes a new version</legend>
              {MIGRATE_MODES.map(([mode, label]) => (
                <label>
                  <input type="radio" name="migrate" value={mode} checked={(opts.migrate ?? "stay") === mode} /> {label}
                </label>
              ))}
            </fieldset>
            <div class="actions">
              <button type="submit" class="secondary">
                Preview the blast radius
              </button>
              {canEdit && opts.diff ? (
                <button type="submit" formaction={`/console/catalog/plans/${enc}/apply`}>
                  Apply
                </button>
              ) : null}
            </div>
          </form>
          {opts.diff ? <DiffView diff={opts.diff} /> : null}
        </>
      ),
    },
    opts.status,
  );
}

export const planGet = (c: Context<AppEnv>) => planPage(c);

async function editedPlan(c: Context<AppEnv>): Promise<{ text: string; migrate: string; def: PlanDef | null }> {
  const form = await c.req.parseBody();
  const text = typeof form.plan === "string" ? form.plan : "";
  const migrate = typeof form.migrate === "string" ? form.migrate : "stay";
  try {
    const def = JSON.parse(text) as PlanDef;
    return { text, migrate, def: def && typeof def === "object" && !Array.isArray(def) ? def : null };
  } catch {
    return { text, migrate, def: null };
  }
}

export async function planPreview(c: Context<AppEnv>) {
  const id = c.req.param("id") ?? "";
  const me = operatorOf(c);
  const { text, migrate, def } = await editedPlan(c);
  if (!def) return planPage(c, { text, migrate, error: "The plan is not a JSON object.", status: 400 });
  const catalog = await adminRead<CatalogFile>(c, me, "/admin/v1/catalog");
  const next = { ...catalog, plans: { ...(catalog.plans ?? {}), [id]: def } };
  const diff = await adminCall<CatalogDiff>(c, me, "POST", "/admin/v1/catalog/diff", next);
  if (!diff.ok)
    return planPage(c, {
      text,
      migrate,
      error: `${diff.problem.detail}${diff.problem.errors ? `: ${diff.problem.errors.map((e) => `${e.path} ${e.message}`).join("; ")}` : ""}`,
      status: diff.status === 403 ? 403 : 400,
    });
  return planPage(c, { text, migrate, diff: diff.body });
}

export async function planApply(c: Context<AppEnv>) {
  const id = c.req.param("id") ?? "";
  const { text, migrate, def } = await editedPlan(c);
  if (!def) return planPage(c, { text, migrate, error: "The plan is not a JSON object.", status: 400 });
  const mode = MIGRATE_MODES.some(([m]) => m === migrate) ? migrate : "stay";
  const answer = await adminCall<{ version: string }>(
    c,
    operatorOf(c),
    "PUT",
    `/admin/v1/plans/${encodeURIComponent(id)}?migrate=${mode}`,
    def,
  );
  if (!answer.ok) {
    const p = answer.problem;
    const detail = `${p.title}: ${p.detail}${p.errors ? ` (${p.errors.map((e) => `${e.path} ${e.message}`).join("; ")})` : ""}`;
    return planPage(c, { text, migrate, error: detail, status: p.status === 403 ? 403 : p.status === 409 ? 409 : 400 });
  }
  return c.redirect(
    `/console/catalog/plans/${encodeURIComponent(id)}?applied=${encodeURIComponent(answer.body.version)}`,
    303,
  );
}

function DiffView(p: { diff: CatalogDiff }) {
  const d = p.diff;
  const reaching = d.impact.filter((i) => i.customers > 0 || i.plans.length > 0);
  return (
    <section class="card" data-testid="blast-radius">
      <h2>Blast radius</h2>
      <p>
        {`${d.summary.changed} changed, ${d.summary.added} added, ${d.summary.removed} removed. `}
        <strong class={d.summary.customersLosing > 0 ? "denied" : ""}>
          {`${d.summary.customersLosing} customer(s) lose something`}
        </strong>
        {`, ${d.summary.customersGaining} gain something.`}
      </p>
      {d.destructive ? (
        <Notice kind="warn">Some customers lose a feature or a limit: read the losses before you apply.</Notice>
      ) : null}
      {reaching.length === 0 ? (
        <p class="muted">No customer is affected.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Feature</th>
              <th>Effect</th>
              <th>Customers</th>
              <th>Details</th>
            </tr>
          </thead>
          <tbody>
            {reaching.map((i) => (
              <tr>
                <td>
                  <code>{i.feature}</code>
                </td>
                <td class={i.effect === "loss" ? "denied" : i.effect === "gain" ? "allowed" : ""}>{i.effect}</td>
                <td>
                  {i.customers}
                  {i.examples.length > 0 ? <span class="muted">{` (${i.examples.join(", ")}…)`}</span> : null}
                </td>
                <td>{i.details.join("; ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
