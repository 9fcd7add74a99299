// Grant access and the approvals queue. The form proposes a grant through POST /admin/v1/grants; before
// that, its assessment (elevated or not, what it gains, what is missing) comes from the very functions
// that route runs (write/grant-policy.ts: assessElevation, termsErrors; write/spec-validation.ts), and
// htmx refreshes it as the form changes. Approve, reject and revoke are the API's decision routes:
// four eyes (write/four-eyes.ts) refuses an approval by the proposer, or by anyone below approver.
import type { Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../app-env";
import { atLeast } from "../../auth/admin";
import { configOf } from "../../config";
import { entitlementSpec } from "../../domain/catalog";
import type { EntitlementSpec } from "../../domain/types";
import { type FieldError, Problem } from "../../http/problem";
import { readCatalogFacts } from "../../store/catalog";
import { appliesAtOnce } from "../../write/four-eyes";
import { assessElevation, type GrantTerms, identityOf, termsErrors } from "../../write/grant-policy";
import { specErrors } from "../../write/spec-validation";
import { adminCall, adminRead, refusal } from "../admin-call";
import { Notice, renderFragment, when } from "../layout";
import { operatorOf } from "./auth";
import { Csrf, consolePage } from "./chrome";
import {
  type CatalogFile,
  type CustomerDetail,
  type Explained,
  type Grant,
  type GrantWritten,
  type Page,
  specSummary,
} from "./wire";

interface GrantForm {
  feature: string;
  mode: "add" | "replace";
  spec: string;
  reason: string;
  startsAt: string;
  expiresAt: string;
}

const formSchema = z.object({
  feature: z.string().max(128).default(""),
  mode: z.enum(["add", "replace"]).catch("add"),
  spec: z.string().max(20_000).default('{ "enabled": true }'),
  reason: z.string().max(1000).default(""),
  startsAt: z.string().max(40).default(""),
  expiresAt: z.string().max(40).default(""),
});

/** A datetime-local value (no zone: UTC) as an ISO instant; "" is absent; undefined: not an instant. */
function isoOf(raw: string): string | null | undefined {
  if (raw.trim() === "") return null;
  const withZone = /[zZ]|[+-]\d\d:\d\d$/.test(raw) ? raw : `${raw}${raw.length === 16 ? ":00" : ""}Z`;
  const t = Date.parse(withZone);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/** The form as the API's grant input, or the field errors that keep it from being one. */
function grantInput(customerId: string, f: GrantForm) {
  const errors: FieldError[] = [];
  let spec: EntitlementSpec | null = null;
  try {
    const parsed = entitlementSpec.safeParse(JSON.parse(f.spec));
    if (parsed.success) spec = parsed.data as EntitlementSpec;
    else errors.push(...parsed.error.issues.map((i) => ({ path: `spec.${i.path.join(".")}`, message: i.message })));
  } catch {
    errors.push({ path: "spec", message: "is not JSON" });
  }
  const startsAt = isoOf(f.startsAt);
  const expiresAt = isoOf(f.expiresAt);
  if (startsAt === undefined) errors.push({ path: "startsAt", message: "is not a date and time" });
  if (expiresAt === undefined) errors.push({ path: "expiresAt", message: "is not a date and time" });
  if (!f.feature) errors.push({ path: "feature", message: "pick a feature" });
  return {
    errors,
    input: { customerId, feature: f.feature, mode: f.mode, spec, reason: f.reason, startsAt, expiresAt },
  };
}

interface Assessment {
  /** Whether the form was complete enough to assess (else only `errors` says something). */
  known: boolean;
  elevated: boolean;
  gains: string[];
  appliesAtOnce: boolean;
  errors: FieldError[];
}

/** What POST /admin/v1/grants would decide about this form, from the same policy functions; nothing is written. */
async function assess(c: Context<AppEnv>, customerId: string, f: GrantForm): Promise<Assessment> {
  const { errors, input } = grantInput(customerId, f);
  if (errors.length > 0 || !input.spec)
    return { known: false, elevated: false, gains: [], appliesAtOnce: false, errors };
  const db = c.env.DB;
  const now = c.var.services.clock.now();
  const maxLifetimeMs = configOf(c.env).grants.maxLifetimeMs;
  const specProblems = specErrors(await readCatalogFacts(db), input.feature, input.spec, "spec");
  if (specProblems.length > 0)
    return { known: false, elevated: false, gains: [], appliesAtOnce: false, errors: specProblems };
  const terms: GrantTerms = {
    customerId,
    featureKey: input.feature,
    mode: input.mode,
    spec: input.spec,
    reason: input.reason.trim(),
    startsAt: input.startsAt ? Date.parse(input.startsAt) : null,
    expiresAt: input.expiresAt ? Date.parse(input.expiresAt) : null,
  };
  const elevation = await assessElevation(db, terms, now, maxLifetimeMs);
  if (!elevation) throw new Problem("not-found", `No customer '${customerId}'.`);
  return {
    known: true,
    elevated: elevation.elevated,
    gains: elevation.gains,
    appliesAtOnce: appliesAtOnce(operatorOf(c), elevation.elevated),
    errors: termsErrors(terms, elevation.elevated, now, maxLifetimeMs).map((e) => ({
      ...e,
      path: e.path.replace(/^json\./, ""),
    })),
  };
}

function AssessmentView(p: { a: Assessment | null }) {
  const a = p.a;
  const errors =
    a && a.errors.length > 0 ? (
      <Notice kind="error">
        <strong>{a.known ? "Before it can be proposed:" : "Not yet valid:"}</strong>
        <ul>
          {a.errors.map((e) => (
            <li>
              <code>{e.path}</code> {e.message}
            </li>
          ))}
        </ul>
      </Notice>
    ) : null;
  return (
    <div id="assessment" aria-live="polite" data-testid="assessment">
      {a === null ? <Notice>Fill in the grant to see whether it is elevated.</Notice> : null}
      {a?.known && a.elevated ? (
        <Notice kind="warn">
          <strong>Elevated:</strong> it gives more than the customer's plans, so a second person (an approver) must
          approve it.
          <ul>
            {a.gains.map((g) => (
              <li>{g}</li>
            ))}
          </ul>
        </Notice>
      ) : null}
      {a?.known && !a.elevated ? (
        <Notice>
          <strong>Not elevated:</strong> it gives nothing the plans do not.{" "}
          {a.appliesAtOnce ? "It applies at once." : "It waits for an approver."}
        </Notice>
      ) : null}
      {errors}
    </div>
  );
}

function requireSupport(c: Context<AppEnv>) {
  const role = c.get("consoleSession").role;
  if (!atLeast(role, "support"))
    throw new Problem("forbidden", `Granting access needs the 'support' role; you have '${role}'.`);
}

async function grantFormPage(
  c: Context<AppEnv>,
  f: GrantForm,
  a: Assessment | null,
  error?: string,
  status?: 200 | 400 | 403 | 404 | 409,
) {
  const id = c.req.param("id") ?? "";
  const me = operatorOf(c);
  const enc = encodeURIComponent(id);
  const [customer, catalog] = await Promise.all([
    adminRead<CustomerDetail>(c, me, `/admin/v1/customers/${enc}`),
    adminRead<CatalogFile>(c, me, "/admin/v1/catalog"),
  ]);
  const features = Object.entries(catalog.features ?? {});
  const maxDays = configOf(c.env).grants.maxLifetimeMs / 86_400_000;
  return consolePage(
    c,
    {
      title: `Grant access · ${customer.name || customer.id}`,
      section: "customers",
      children: (
        <>
          <h1>
            Grant access to <a href={`/console/customers/${enc}`}>{customer.name || customer.id}</a>
          </h1>
          {error ? <Notice kind="error">{error}</Notice> : null}
          <form
            method="post"
            action={`/console/customers/${enc}/grant`}
            class="stack card"
            hx-post={`/console/customers/${enc}/grant/preview`}
            hx-trigger="input changed delay:400ms, change"
            hx-target="#assessment"
            hx-swap="outerHTML"
          >
            <Csrf token={c.get("csrfToken")} />
            <label for="feature">Feature</label>
            <select id="feature" name="feature" required>
              <option value="">Pick a feature</option>
              {features.map(([key, feat]) => (
                <option value={key} selected={key === f.feature}>
                  {`${key} (${feat.type})${feat.description ? ` — ${feat.description}` : ""}`}
                </option>
              ))}
            </select>
            <label for="mode">Mode</label>
            <select id="mode" name="mode">
              <option value="add" selected={f.mode === "add"}>
                add: on top of the plans
              </option>
              <option value="replace" selected={f.mode === "replace"}>
                replace: instead of the plans
              </option>
            </select>
            <label for="spec">
              What it gives (JSON, as in a plan: {'{ "enabled": true }'}, {'{ "limit": 5000 }'})
            </label>
            <textarea id="spec" name="spec">
              {f.spec}
            </textarea>
            <label for="reason">Reason (required when elevated; recorded in the audit log)</label>
            <input id="reason" name="reason" value={f.reason} maxlength={1000} />
            <label for="startsAt">Starts (UTC, optional)</label>
            <input id="startsAt" name="startsAt" type="datetime-local" value={f.startsAt} />
            <label for="expiresAt">{`Expires (UTC; required when elevated, at most ${maxDays} days ahead)`}</label>
            <input id="expiresAt" name="expiresAt" type="datetime-local" value={f.expiresAt} />
            <h2>Before you submit</h2>
            <AssessmentView a={a} />
            <div class="actions">
              <button type="submit" class="secondary" formaction={`/console/customers/${enc}/grant/preview`}>
                Check
              </button>
              <button type="submit">Propose grant</button>
            </div>
          </form>
        </>
      ),
    },
    status,
  );
}

async function formOf(c: Context<AppEnv>): Promise<GrantForm> {
  return formSchema.parse(await c.req.parseBody());
}

export async function grantFormGet(c: Context<AppEnv>) {
  requireSupport(c);
  const f = formSchema.parse({ feature: c.req.query("feature") ?? "" });
  return grantFormPage(c, f, null);
}

/** The assessment alone for htmx, the whole form otherwise (no JavaScript: the Check button). */
export async function grantPreview(c: Context<AppEnv>) {
  requireSupport(c);
  const f = await formOf(c);
  const a = await assess(c, c.req.param("id") ?? "", f);
  if (c.req.header("HX-Request") === "true") return renderFragment(c, <AssessmentView a={a} />);
  return grantFormPage(c, f, a);
}

export async function grantPropose(c: Context<AppEnv>) {
  const id = c.req.param("id") ?? "";
  const f = await formOf(c);
  const { errors, input } = grantInput(id, f);
  if (errors.length > 0)
    return grantFormPage(
      c,
      f,
      { known: false, elevated: false, gains: [], appliesAtOnce: false, errors },
      undefined,
      400,
    );
  const answer = await adminCall<GrantWritten>(c, operatorOf(c), "POST", "/admin/v1/grants", input);
  if (!answer.ok) {
    const p = answer.problem;
    const a: Assessment = {
      known: false,
      elevated: false,
      gains: [],
      appliesAtOnce: false,
      errors: (p.errors ?? []).map((e) => ({ ...e, path: e.path.replace(/^json\./, "") })),
    };
    return grantFormPage(c, f, a, `${p.title}: ${p.detail}`, p.status as 400 | 403 | 404 | 409);
  }
  const g = answer.body.grant;
  if (g.status === "pending") return c.redirect(`/console/approvals?proposed=${encodeURIComponent(g.id)}`, 303);
  return c.redirect(customerAfterWrite(g.customerId, answer.body.version, g.id, "applied"), 303);
}

const customerAfterWrite = (customerId: string, version: string | undefined, grantId: string, what: string) =>
  `/console/customers/${encodeURIComponent(customerId)}?${new URLSearchParams({
    ...(version ? { minVersion: version } : {}),
    [what]: grantId,
  })}#entitlements`;

export async function approvalsPage(c: Context<AppEnv>) {
  const me = operatorOf(c);
  const pending = await adminRead<Page<Grant>>(c, me, "/admin/v1/grants?status=pending&limit=100");
  // What each grant would change now, next to what the customer has: the same explain the customer page shows.
  const current = await Promise.all(
    pending.items.map((g) =>
      adminCall<Explained>(
        c,
        me,
        "GET",
        `/admin/v1/customers/${encodeURIComponent(g.customerId)}/entitlements/explain?feature=${encodeURIComponent(g.feature)}`,
      ),
    ),
  );
  // Buttons only for those who may press them; the decision route refuses anyone else anyway.
  const canDecide = atLeast(c.get("consoleSession").role, "approver");
  const proposed = c.req.query("proposed");
  const rejected = c.req.query("rejected");
  return consolePage(c, {
    title: "Approvals",
    section: "approvals",
    children: (
      <>
        <h1>Approvals queue</h1>
        {proposed ? (
          <Notice>
            Grant <code>{proposed}</code> proposed: it waits here for an approver (not you).
          </Notice>
        ) : null}
        {rejected ? (
          <Notice>
            Grant <code>{rejected}</code> rejected.
          </Notice>
        ) : null}
        {pending.items.length === 0 ? (
          <Notice>Nothing waits for approval.</Notice>
        ) : (
          <table data-testid="approvals">
            <thead>
              <tr>
                <th>Customer</th>
                <th>Feature</th>
                <th>Has now → grant gives</th>
                <th>Why, until when</th>
                <th>Proposed by</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {pending.items.map((g, i) => {
                const now = current[i];
                const feature = now?.ok ? now.body.features[g.feature] : undefined;
                const mine = g.proposedBy === identityOf(me);
                return (
                  <tr data-grant={g.id}>
                    <td>
                      <a href={`/console/customers/${encodeURIComponent(g.customerId)}`}>{g.customerId}</a>
                    </td>
                    <td>
                      <code>{g.feature}</code> {g.elevated ? <span class="badge pending">elevated</span> : null}
                    </td>
                    <td>
                      <span class="muted">{feature ? specSummary(feature.effective) : "?"}</span> →{" "}
                      <strong>{specSummary(g.spec)}</strong>
                      {g.mode === "replace" ? " (replaces the plans)" : ""}
                    </td>
                    <td>
                      {g.reason || <span class="muted">no reason</span>}
                      <br />
                      <span class="muted">
                        {when(g.startsAt)} → {when(g.expiresAt)}
                      </span>
                    </td>
                    <td>
                      {g.proposedBy}
                      <br />
                      <span class="muted">{when(g.createdAt)}</span>
                    </td>
                    <td>
                      {mine ? (
                        <span class="muted">yours: another approver decides</span>
                      ) : canDecide ? (
                        <DecisionButtons grant={g} csrf={c.get("csrfToken")} />
                      ) : (
                        <span class="muted">an approver decides</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </>
    ),
  });
}

function DecisionButtons(p: { grant: Grant; csrf: string }) {
  const base = `/console/grants/${encodeURIComponent(p.grant.id)}`;
  const decisions = p.grant.status === "pending" ? (["approve", "reject"] as const) : (["revoke"] as const);
  return (
    <span class="actions">
      {decisions.map((d) => (
        <form method="post" action={`${base}/${d}`} class="inline">
          <Csrf token={p.csrf} />
          <button type="submit" class={d === "approve" ? "" : "danger"}>
            {d === "approve" ? "Approve" : d === "reject" ? "Reject" : "Revoke"}
          </button>
        </form>
      ))}
    </span>
  );
}

export function GrantsTable(p: { grants: Grant[]; csrf: string; showCustomer: boolean; canDecide: boolean }) {
  if (p.grants.length === 0) return <p class="muted">No grants.</p>;
  return (
    <table data-testid="grants">
      <thead>
        <tr>
          {p.showCustomer ? <th>Customer</th> : null}
          <th>Feature</th>
          <th>Gives</th>
          <th>Status</th>
          <th>Window</th>
          <th>Proposed / decided</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {p.grants.map((g) => (
          <tr data-grant={g.id}>
            {p.showCustomer ? <td>{g.customerId}</td> : null}
            <td>
              <code>{g.feature}</code>
            </td>
            <td>
              {specSummary(g.spec)}
              {g.mode === "replace" ? " (replaces)" : ""}
            </td>
            <td>
              <span class={`badge ${g.status === "active" ? "allowed" : g.status === "pending" ? "pending" : "muted"}`}>
                {g.status}
              </span>
              {g.elevated ? " elevated" : ""}
            </td>
            <td>
              {when(g.startsAt)} → <strong>{when(g.expiresAt)}</strong>
            </td>
            <td>
              {g.proposedBy}
              {g.decidedBy ? ` / ${g.decidedBy}` : ""}
            </td>
            <td>{g.status === "active" && p.canDecide ? <DecisionButtons grant={g} csrf={p.csrf} /> : null}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const DECISIONS = new Set(["approve", "reject", "revoke"]);

export async function grantDecision(c: Context<AppEnv>) {
  const id = c.req.param("id") ?? "";
  const decision = c.req.param("decision") ?? "";
  if (!DECISIONS.has(decision)) throw new Problem("not-found", `No decision '${decision}'.`);
  const form = await c.req.parseBody();
  const reason = typeof form.reason === "string" && form.reason.trim() ? { reason: form.reason.trim() } : {};
  const answer = await adminCall<GrantWritten>(
    c,
    operatorOf(c),
    "POST",
    `/admin/v1/grants/${encodeURIComponent(id)}/${decision}`,
    reason,
  );
  if (!answer.ok) throw refusal(answer.problem);
  const g = answer.body.grant;
  if (decision === "reject") return c.redirect(`/console/approvals?rejected=${encodeURIComponent(g.id)}`, 303);
  return c.redirect(customerAfterWrite(g.customerId, answer.body.version, g.id, `${decision}d`), 303);
}
