// Who is using the console. Production and staging: the Cloudflare Access JWT that Access sends with
// every request (Cf-Access-Jwt-Assertion), verified by the admin API's own verifier (auth/admin.ts);
// it wins over the session cookie, which only carries the CSRF binding. Development only: a sign-in
// form to pick a person and a role (anyone can be anyone there; it is refused everywhere else).
// Each request then acts as that operator through the admin API's routes (src/ui/admin-call.ts).
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import type { AppEnv } from "../../app-env";
import { verifyOperator } from "../../auth/admin";
import { extractOperatorToken, OPERATOR_ROLES } from "../../auth/operator-jwt";
import type { Principal } from "../../auth/principal";
import { configOf } from "../../config";
import { Problem } from "../../http/problem";
import { Notice, renderPage, Shell } from "../layout";
import {
  assertCsrf,
  assertSameOrigin,
  csrfToken,
  endSession,
  preSessionId,
  readPreSessionId,
  readSession,
  startSession,
} from "../session";

const isDevelopment = (c: Context<AppEnv>) => configOf(c.env).environment === "development";

/** The operator the console acts as: the admin API's principal for this person and role. */
export function operatorOf(c: Context<AppEnv>): Principal {
  const s = c.get("consoleSession");
  return { kind: "operator", id: s.sub, role: s.role, ...(s.email ? { email: s.email } : {}) };
}

/**
 * Resolves the signed-in person (or redirects to sign-in, in development), sets the session and its CSRF
 * token, and refuses a POST without a valid token or from another origin (403).
 */
export const consoleAuth = createMiddleware<AppEnv>(async (c, next) => {
  const jwt = extractOperatorToken(c.req.raw.headers);
  let session = await readSession(c);
  if (jwt) {
    const op = await verifyOperator(c.env, jwt);
    if (op.kind !== "operator") throw new Problem("unauthorized", "Not an operator token.");
    if (!session || session.sub !== op.id || session.role !== op.role || session.email !== op.email)
      session = await startSession(c, { sub: op.id, role: op.role, ...(op.email ? { email: op.email } : {}) });
  } else if (!session || !isDevelopment(c)) {
    if (!isDevelopment(c))
      throw new Problem("unauthorized", "Sign in through Cloudflare Access: this request carries no Access JWT.");
    const next = new URL(c.req.url);
    return c.redirect(`/console/sign-in?next=${encodeURIComponent(next.pathname + next.search)}`, 303);
  }
  c.set("consoleSession", session);
  c.set("csrfToken", await csrfToken(c, session.sid));
  if (c.req.method === "POST") {
    assertSameOrigin(c);
    await assertCsrf(c, session.sid, (await c.req.parseBody())._csrf);
  }
  await next();
});

const signInForm = z.object({
  person: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, "letters, digits, dot, dash or underscore (at most 64)"),
  email: z.union([z.literal(""), z.email().max(320)]).default(""),
  role: z.enum(OPERATOR_ROLES),
  next: z.string().max(2000).default("/console"),
});

/** Where to go after sign-in: a console path of this origin, nothing else (no open redirect). */
const safeNext = (next: string) => (/^\/console(\/|\?|$)/.test(next) && !next.startsWith("//") ? next : "/console");

function refuseOutsideDevelopment(c: Context<AppEnv>) {
  if (!isDevelopment(c))
    throw new Problem(
      "forbidden",
      "The development sign-in exists only in the development environment: sign in through Cloudflare Access.",
    );
}

export async function signInPage(c: Context<AppEnv>, error?: string, status: 200 | 400 | 403 = 200) {
  refuseOutsideDevelopment(c);
  const token = await csrfToken(c, preSessionId(c));
  const next = safeNext(c.req.query("next") ?? "/console");
  return renderPage(
    c,
    <Shell title="Sign in · Tollgate console">
      <h1>Sign in (development)</h1>
      <Notice kind="warn">
        Development only: pick anyone and any role. Deployed consoles sign in through Cloudflare Access, and this form
        is refused there.
      </Notice>
      {error ? <Notice kind="error">{error}</Notice> : null}
      <form method="post" action="/console/sign-in" class="stack card">
        <input type="hidden" name="_csrf" value={token} />
        <input type="hidden" name="next" value={next} />
        <label for="person">Person</label>
        <input id="person" name="person" required pattern="[A-Za-z0-9._\-]{1,64}" placeholder="e.g. sam" />
        <label for="email">Email (optional)</label>
        <input id="email" name="email" type="email" placeholder="sam@example.com" />
        <label for="role">Role</label>
        <select id="role" name="role">
          {OPERATOR_ROLES.map((r) => (
            <option value={r}>{r}</option>
          ))}
        </select>
        <div class="actions">
          <button type="submit">Sign in</button>
        </div>
      </form>
    </Shell>,
    status,
  );
}

export async function signIn(c: Context<AppEnv>) {
  refuseOutsideDevelopment(c);
  assertSameOrigin(c);
  const form = await c.req.parseBody();
  await assertCsrf(c, readPreSessionId(c), form._csrf);
  const parsed = signInForm.safeParse(form);
  if (!parsed.success)
    return signInPage(c, parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "), 400);
  const { person, email, role, next } = parsed.data;
  await startSession(c, { sub: person, role, ...(email ? { email } : {}) });
  return c.redirect(safeNext(next), 303);
}

export async function signOut(c: Context<AppEnv>) {
  endSession(c);
  return c.redirect(isDevelopment(c) ? "/console/sign-in" : "/cdn-cgi/access/logout", 303);
}
