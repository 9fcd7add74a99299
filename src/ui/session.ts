// Console sessions: who is signed in, as a cookie signed with jose (HS256, SESSION_SECRET), and the
// CSRF token bound to it. The cookie is HttpOnly, SameSite=Strict, Secure outside development, and
// lives CONSOLE_SESSION_MINUTES (30 by default). It carries the person and role; in production it is
// minted from the Cloudflare Access JWT, which Access sends with every request and which wins over
// the cookie, so a role changed at the identity provider takes effect at once (src/ui/console/auth.ts).
// Expiry is checked against the injected clock, so tests move time instead of sleeping.
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { OPERATOR_ROLES } from "../auth/operator-jwt";
import { configOf } from "../config";
import { Problem } from "../http/problem";

export const SESSION_AUDIENCE = "tollgate-console";
const ISSUER = "tollgate";
const encoder = new TextEncoder();

/** Who is signed in; `sid` is random per sign-in, and what the CSRF token is bound to. */
export type ConsoleSession = AppEnv["Variables"]["consoleSession"];

const claims = z.object({
  sub: z.string().min(1).max(200),
  email: z.string().max(320).optional(),
  role: z.enum(OPERATOR_ROLES),
  sid: z.string().min(16).max(64),
});

/** The signing key, or a 503: outside development SESSION_SECRET must be set (src/config.ts). */
export function sessionKey(c: Context<AppEnv>): Uint8Array {
  const secret = configOf(c.env).ui.sessionSecret;
  if (!secret) throw new Problem("unavailable", "The console and the portal need SESSION_SECRET (32+ characters).");
  return encoder.encode(secret);
}

const isDevelopment = (c: Context<AppEnv>) => configOf(c.env).environment === "development";

/** `__Host-` pins the cookie to this origin and path /, which browsers allow only with Secure (not on http://127.0.0.1). */
export const cookieName = (c: Context<AppEnv>, base: string) => (isDevelopment(c) ? base : `__Host-${base}`);

function cookieOptions(c: Context<AppEnv>, maxAgeSeconds: number) {
  return {
    httpOnly: true,
    secure: !isDevelopment(c),
    sameSite: "Strict" as const,
    path: "/",
    maxAge: maxAgeSeconds,
  };
}

const SESSION = "tg_console";

/** Signs `s` into the session cookie. */
export async function startSession(c: Context<AppEnv>, s: Omit<ConsoleSession, "sid">): Promise<ConsoleSession> {
  const session = { ...s, sid: randomId() };
  const now = c.get("services").clock.now();
  const ttlMs = configOf(c.env).ui.sessionTtlMs;
  const jwt = await new SignJWT({ role: session.role, sid: session.sid, ...(s.email ? { email: s.email } : {}) })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(ISSUER)
    .setAudience(SESSION_AUDIENCE)
    .setSubject(session.sub)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor((now + ttlMs) / 1000))
    .sign(sessionKey(c));
  setCookie(c, cookieName(c, SESSION), jwt, cookieOptions(c, Math.floor(ttlMs / 1000)));
  return session;
}

/** The session of this request's cookie, or null (none, forged, expired or of another deployment). */
export async function readSession(c: Context<AppEnv>): Promise<ConsoleSession | null> {
  const jwt = getCookie(c, cookieName(c, SESSION));
  if (!jwt) return null;
  try {
    const { payload } = await jwtVerify(jwt, sessionKey(c), {
      issuer: ISSUER,
      audience: SESSION_AUDIENCE,
      algorithms: ["HS256"],
      currentDate: new Date(c.get("services").clock.now()),
    });
    const parsed = claims.safeParse(payload);
    return parsed.success ? parsed.data : null;
  } catch (err) {
    if (err instanceof Problem) throw err;
    return null;
  }
}

export function endSession(c: Context<AppEnv>): void {
  deleteCookie(c, cookieName(c, SESSION), { path: "/", secure: !isDevelopment(c) });
}

// --- CSRF ----------------------------------------------------------------------------------------
// Every console POST carries `_csrf`, an HMAC of the session id under SESSION_SECRET: a page elsewhere
// cannot read it (no CORS), and it is worthless with another session. The sign-in form, before any
// session, binds it to a random pre-session cookie instead. On top, the request's Origin and
// Sec-Fetch-Site must say it comes from this origin (requireSameOrigin).

const PRE_SESSION = "tg_presession";

export async function csrfToken(c: Context<AppEnv>, sid: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", sessionKey(c), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`csrf\u0000${sid}`));
  return base64url(new Uint8Array(mac));
}

/** The sid the sign-in form's token is bound to: the pre-session cookie's, set now when missing. */
export function preSessionId(c: Context<AppEnv>): string {
  const existing = getCookie(c, cookieName(c, PRE_SESSION));
  if (existing && /^[A-Za-z0-9_-]{22,64}$/.test(existing)) return existing;
  const sid = randomId();
  setCookie(c, cookieName(c, PRE_SESSION), sid, cookieOptions(c, 3600));
  return sid;
}

export const readPreSessionId = (c: Context<AppEnv>) => getCookie(c, cookieName(c, PRE_SESSION)) ?? null;

/** 403 unless the form's `_csrf` is the token of `sid` (compared in constant time). */
export async function assertCsrf(c: Context<AppEnv>, sid: string | null, presented: unknown): Promise<void> {
  if (sid === null || typeof presented !== "string")
    throw new Problem("forbidden", "This form has no valid CSRF token: reload the page and try again.");
  const expected = encoder.encode(await csrfToken(c, sid));
  const got = encoder.encode(presented);
  if (got.byteLength !== expected.byteLength || !crypto.subtle.timingSafeEqual(got, expected))
    throw new Problem("forbidden", "This form has no valid CSRF token: reload the page and try again.");
}

/**
 * 403 for a POST that the browser says comes from elsewhere: Sec-Fetch-Site other than same-origin or
 * none, or an Origin that is not this one. Browsers send both on form posts; a script without them
 * (curl) still needs the session cookie and the token.
 */
export function assertSameOrigin(c: Context<AppEnv>): void {
  const site = c.req.header("Sec-Fetch-Site");
  if (site !== undefined && site !== "same-origin" && site !== "none")
    throw new Problem("forbidden", `The console takes no form posts from another site (Sec-Fetch-Site: ${site}).`);
  const origin = c.req.header("Origin");
  if (origin !== undefined && origin !== new URL(c.req.url).origin)
    throw new Problem("forbidden", `The console takes no form posts from another origin (${origin}).`);
}

function randomId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(18)));
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
