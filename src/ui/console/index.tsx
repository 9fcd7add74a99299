// /console: the web interface for customer success and product teams, server-rendered (Hono JSX),
// every read and write an in-process call to the admin API as the signed-in person (src/ui/admin-call.ts).
// A refusal is the API's own (role, four eyes, validation), shown as a page with the API's status.
import type { Context } from "hono";
import { Hono } from "hono";
import type { AppEnv } from "../../app-env";
import { logRequestFailure, problemTitle, toProblem } from "../../http/problem";
import { Notice, renderPage, Shell } from "../layout";
import { pageHeaders } from "../security";
import { analyticsPage } from "./analytics";
import { auditPage } from "./audit";
import { consoleAuth, signIn, signInPage, signOut } from "./auth";
import { catalogPage, planApply, planGet, planPreview } from "./catalog";
import { consolePage } from "./chrome";
import { customerPage, searchPage } from "./customers";
import { approvalsPage, grantDecision, grantFormGet, grantPreview, grantPropose } from "./grants";

export const consoleRoutes = new Hono<AppEnv>();
consoleRoutes.use("*", pageHeaders(false));
consoleRoutes.get("/sign-in", (c) => signInPage(c));
consoleRoutes.post("/sign-in", signIn);
consoleRoutes.use("*", consoleAuth);
consoleRoutes.post("/sign-out", signOut);
consoleRoutes.get("/", searchPage);
consoleRoutes.get("/customers/:id", customerPage);
consoleRoutes.get("/customers/:id/grant", grantFormGet);
consoleRoutes.post("/customers/:id/grant/preview", grantPreview);
consoleRoutes.post("/customers/:id/grant", grantPropose);
consoleRoutes.get("/approvals", approvalsPage);
consoleRoutes.post("/grants/:id/:decision", grantDecision);
consoleRoutes.get("/catalog", catalogPage);
consoleRoutes.get("/catalog/plans/:id", planGet);
consoleRoutes.post("/catalog/plans/:id/preview", planPreview);
consoleRoutes.post("/catalog/plans/:id/apply", planApply);
consoleRoutes.get("/analytics", analyticsPage);
consoleRoutes.get("/audit", auditPage);
consoleRoutes.notFound((c) => errorPage(c, 404, "Not found", `No console page ${c.req.path}.`));
consoleRoutes.onError((err, c) => {
  const p = toProblem(err);
  if (p.status >= 500) logRequestFailure(c, err);
  return errorPage(c, p.status, problemTitle(p), p.detail);
});

type PageStatus = 400 | 401 | 403 | 404 | 409 | 500 | 503;

/** A refusal as a page: inside the console's frame when someone is signed in, bare otherwise. */
function errorPage(c: Context<AppEnv>, status: number, title: string, detail: string) {
  const code = ([400, 401, 403, 404, 409, 500, 503].includes(status) ? status : 500) as PageStatus;
  const body = (
    <>
      <h1>{title}</h1>
      <Notice kind="error">{detail}</Notice>
      <p>
        <a href="/console">Back to the console</a>
      </p>
    </>
  );
  if (c.get("consoleSession") && code < 500 && code !== 401)
    return consolePage(c, { title, section: "customers", children: body }, code as 400 | 403 | 404 | 409);
  return renderPage(c, <Shell title={`${title} · Tollgate`}>{body}</Shell>, code);
}
