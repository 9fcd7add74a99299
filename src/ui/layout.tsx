// The shell of every console and portal page, and the page shown when something is refused. Hono's
// JSX escapes every text and attribute it renders; nothing here sets raw HTML.
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../app-env";
import { ASSET } from "./assets";

// htmx must not add its own <style> (the CSP allows style files only) nor evaluate code from attributes.
const HTMX_CONFIG = JSON.stringify({ includeIndicatorStyles: false, allowEval: false, allowScriptTags: false });

export interface ShellProps {
  title: string;
  children: Child;
  /** Header: brand and navigation (console) or the portal's logo. */
  header?: Child;
  /** Extra stylesheets after ours (the portal's theme). */
  styles?: string[];
  /** Pages with charts load uPlot. */
  charts?: boolean;
}

export function Shell(p: ShellProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <title>{p.title}</title>
        <link rel="stylesheet" href={ASSET.css} />
        {p.charts ? <link rel="stylesheet" href={ASSET.uplotCss} /> : null}
        {(p.styles ?? []).map((href) => (
          <link rel="stylesheet" href={href} />
        ))}
        {p.charts ? <script src={ASSET.uplotJs} defer /> : null}
        <script src={ASSET.htmx} defer />
        <script src={ASSET.consoleJs} defer />
      </head>
      <body>
        {p.header}
        <main>{p.children}</main>
      </body>
    </html>
  );
}

/** Renders a page with the doctype (JSX has none) and a status. */
export async function renderPage(
  c: Context<AppEnv>,
  node: unknown,
  status: 200 | 400 | 401 | 403 | 404 | 409 | 500 | 503 = 200,
) {
  const body = await String(await (node as { toString(): string | Promise<string> }).toString());
  return c.html(`<!doctype html>\n${body}`, status);
}

/** A part of a page, for htmx to swap in: no doctype. */
export async function renderFragment(c: Context<AppEnv>, node: unknown) {
  return c.html(String(await (node as { toString(): string | Promise<string> }).toString()), 200);
}

export function Notice(p: { kind?: "error" | "warn" | "info"; children: Child }) {
  return (
    <div class={`notice ${p.kind ?? "info"}`} role={p.kind === "error" ? "alert" : "status"}>
      {p.children}
    </div>
  );
}

/** An instant as the pages show it: ISO without milliseconds, UTC. */
export const when = (isoOrNull: string | null | undefined) =>
  isoOrNull ? isoOrNull.replace(/\.\d{3}Z$/, "Z").replace("T", " ") : "—";
