// A person using the console through the worker's fetch, the way a browser would: a cookie jar, form
// posts with the CSRF token of the last page, Sec-Fetch-Site and Origin as a browser sends them.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { OperatorRole } from "../../src/auth/operator-jwt";
import type { TestWorker } from "./worker";

const ORIGIN = "https://tollgate.test";

export interface ConsolePage {
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
}

export type ConsoleUser = Awaited<ReturnType<typeof consoleUser>>;

/** The CSRF token of a page's first form (every console form carries the same one). */
export const csrfOf = (html: string): string | null => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? null;

/** A browser with no session yet (against `bindings`: another ENVIRONMENT, say); `signIn` uses the development sign-in form. */
export function consoleUser(w: TestWorker, bindings: Cloudflare.Env = env) {
  const jar = new Map<string, string>();
  let lastToken: string | null = null;
  async function send(
    method: string,
    path: string,
    init: { form?: Record<string, string>; headers?: Record<string, string> } = {},
  ) {
    const headers: Record<string, string> = {
      "Sec-Fetch-Site": "same-origin",
      ...(method === "POST" ? { Origin: ORIGIN } : {}),
      ...init.headers,
    };
    if (jar.size > 0) headers.Cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    }
    const ctx = createExecutionContext();
    const res = await w.worker.fetch(
      new Request(`${ORIGIN}${path}`, { method, headers, body, redirect: "manual" }),
      bindings,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const [name, ...value] = (pair ?? "").split("=");
      if (!name) continue;
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(cookie) || value.join("=") === "") jar.delete(name.trim());
      else jar.set(name.trim(), value.join("="));
    }
    const text = await res.text();
    lastToken = csrfOf(text) ?? lastToken;
    return {
      status: res.status,
      headers: res.headers,
      text,
      location: res.headers.get("Location"),
    } satisfies ConsolePage;
  }
  return {
    jar,
    get: (path: string, headers?: Record<string, string>) => send("GET", path, { headers }),
    /** A form post with the last page's CSRF token unless the form names its own `_csrf`. */
    post: (path: string, form: Record<string, string> = {}, headers?: Record<string, string>) =>
      send("POST", path, { form: { ...(lastToken ? { _csrf: lastToken } : {}), ...form }, headers }),
    token: () => lastToken,
    async signIn(person: string, role: OperatorRole, email?: string) {
      await send("GET", "/console/sign-in");
      const res = await send("POST", "/console/sign-in", {
        form: { _csrf: lastToken ?? "", person, role, email: email ?? "", next: "/console" },
      });
      if (res.status !== 303)
        throw new Error(`sign-in as ${person} (${role}): ${res.status} ${res.text.slice(0, 300)}`);
      return res;
    },
  };
}
