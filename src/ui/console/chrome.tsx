// The console's page frame: navigation, who is signed in with which role, and sign-out. Every page
// goes through ConsolePage, so every page shows the same header and carries the session's CSRF token.
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../../app-env";
import { renderPage, Shell } from "../layout";

export const SECTIONS = [
  ["customers", "/console", "Customers"],
  ["approvals", "/console/approvals", "Approvals"],
  ["catalog", "/console/catalog", "Catalog"],
  ["analytics", "/console/analytics", "Analytics"],
  ["audit", "/console/audit", "Audit"],
] as const;
export type Section = (typeof SECTIONS)[number][0];

/** The hidden field every console form carries (src/ui/session.ts). */
export const Csrf = (p: { token: string }) => <input type="hidden" name="_csrf" value={p.token} />;

export function consolePage(
  c: Context<AppEnv>,
  p: { title: string; section: Section; children: Child; charts?: boolean },
  status?: 200 | 400 | 403 | 404 | 409,
) {
  const s = c.get("consoleSession");
  const header = (
    <header class="top">
      <a class="brand" href="/console">
        Tollgate console
      </a>
      <nav aria-label="Sections">
        {SECTIONS.map(([key, href, label]) => (
          <a href={href} aria-current={key === p.section ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <span class="who">
        <span data-testid="who">
          {s.email ? `${s.sub} <${s.email}>` : s.sub} · <strong>{s.role}</strong>
        </span>
        <form method="post" action="/console/sign-out" class="inline">
          <Csrf token={c.get("csrfToken")} />
          <button type="submit" class="secondary">
            Sign out
          </button>
        </form>
      </span>
    </header>
  );
  return renderPage(
    c,
    <Shell title={`${p.title} · Tollgate`} header={header} charts={p.charts}>
      {p.children}
    </Shell>,
    status,
  );
}
