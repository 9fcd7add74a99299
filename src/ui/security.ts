// The response headers of every console and portal page. The CSP allows this origin only: scripts
// are files (no inline script, no eval), styles are files, images are ours or inline data, and forms
// post back here. The console may not be framed at all; the portal only by PORTAL_FRAME_ANCESTORS.
// Pages are never cached (they show one person's or one customer's data) and never leak their URL to
// another site (a portal URL carries its token).
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { configOf } from "../config";

export function contentSecurityPolicy(frameAncestors: string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors.length > 0 ? frameAncestors.join(" ") : "'none'"}`,
  ].join("; ");
}

/** Headers for the pages under a prefix; `embeddable`: the portal (frame-ancestors from config). */
export function pageHeaders(embeddable: boolean) {
  return createMiddleware<AppEnv>(async (c, next) => {
    await next();
    const ancestors = embeddable ? configOf(c.env).ui.portal.frameAncestors : [];
    c.header("Content-Security-Policy", contentSecurityPolicy(ancestors));
    if (ancestors.length === 0) c.header("X-Frame-Options", "DENY");
    c.header("X-Content-Type-Options", "nosniff");
    // The portal's URL carries its token: it goes nowhere. The console's forms need a real Origin, which
    // browsers replace by "null" under no-referrer, so it keeps referrers within this origin instead.
    c.header("Referrer-Policy", embeddable ? "no-referrer" : "same-origin");
    c.header("Cache-Control", "no-store");
    c.header("Cross-Origin-Opener-Policy", "same-origin");
  });
}
