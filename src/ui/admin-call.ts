// The console's one way to read or change anything: a request to the admin API's own route, in this
// worker, as the signed-in person (auth/internal-calls.ts). The answer is the API's: a 403 for a role
// that may not, a 409 for a grant decided meanwhile, each shown to the person as the API words it.
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { INTERNAL_CALL_HEADER, withInternalPrincipal } from "../auth/internal-calls";
import type { Principal } from "../auth/principal";
import { Problem, type ProblemSlug, STATUS } from "../http/problem";

export type AdminAnswer<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; problem: ProblemView };

export interface ProblemView {
  status: number;
  title: string;
  detail: string;
  errors?: { path: string; message: string }[];
}

/** Calls `path` (under /admin/v1, or any route of this app) with `body` as JSON, as `principal`. */
export async function adminCall<T = unknown>(
  c: Context<AppEnv>,
  principal: Principal,
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  body?: unknown,
): Promise<AdminAnswer<T>> {
  const url = new URL(path, c.req.url);
  const res = await withInternalPrincipal(principal, (name) => {
    // cf-ray is what the app takes its request id from (app.ts): the audit entry names the page's request.
    const headers: Record<string, string> = { [INTERNAL_CALL_HEADER]: name, "cf-ray": c.get("requestId") };
    if (method !== "GET") headers["Content-Type"] = "application/json";
    const init: RequestInit = { method, headers };
    if (method !== "GET") init.body = JSON.stringify(body ?? {});
    return c.get("innerFetch")(new Request(url, init));
  });
  const json = (await res.json().catch(() => null)) as unknown;
  if (res.ok) return { ok: true, status: res.status, body: json as T };
  const p = (json ?? {}) as Partial<ProblemView>;
  return {
    ok: false,
    status: res.status,
    problem: {
      status: res.status,
      title: p.title ?? res.statusText,
      detail: p.detail ?? "",
      ...(Array.isArray(p.errors) ? { errors: p.errors } : {}),
    },
  };
}

/** The body of a successful call, or the API's refusal thrown as the same problem (rendered as a page). */
export async function adminRead<T>(c: Context<AppEnv>, principal: Principal, path: string): Promise<T> {
  const answer = await adminCall<T>(c, principal, "GET", path);
  if (answer.ok) return answer.body;
  throw refusal(answer.problem);
}

export function refusal(p: ProblemView): Problem {
  const slug = (Object.keys(STATUS) as ProblemSlug[]).find((s) => STATUS[s] === p.status) ?? "internal";
  return new Problem(slug, p.detail, p.errors ? { errors: p.errors } : undefined);
}
