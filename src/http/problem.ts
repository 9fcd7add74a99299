// Every error Tollgate returns is RFC 9457 problem+json, built here and nowhere else.
// A denial of an entitlement is NOT an error: it is a 200 decision with allowed: false.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import { StoreUnavailable } from "../store/errors";

/** Problem type slugs; clients match on `type` (urn:tollgate:problem:<slug>). */
export type ProblemSlug =
  | "validation" // 400: schema violation, with `errors`
  | "malformed-json" // 400
  | "unauthorized" // 401
  | "forbidden" // 403
  | "not-found" // 404: route or resource
  | "method-not-allowed" // 405
  | "conflict" // 409
  | "base_plan_exists" // 409: the customer already has a current base plan; change its plan instead
  | "migration_running" // 409: the plan has a migration to a newer version still moving subscribers
  | "payload-too-large" // 413
  | "unsupported-media-type" // 415
  | "unprocessable" // 422: well-formed and authentic, but Tollgate cannot apply it (billing events)
  | "unavailable" // 503: the stores needed to answer are down
  | "internal"; // 500: a bug; details go to the log, never to the client

const TITLES: Record<ProblemSlug, string> = {
  validation: "Request validation failed",
  "malformed-json": "Malformed JSON body",
  unauthorized: "Authentication required",
  forbidden: "Not allowed",
  "not-found": "Not found",
  "method-not-allowed": "Method not allowed",
  conflict: "Conflict",
  base_plan_exists: "The customer already has a base plan",
  migration_running: "A migration of this plan is still running",
  "payload-too-large": "Payload too large",
  "unsupported-media-type": "Unsupported media type",
  unprocessable: "Unprocessable content",
  unavailable: "Service unavailable",
  internal: "Internal error",
};

/** The status of each problem kind: a slug implies its status, so the two can never disagree. */
export const STATUS: Record<ProblemSlug, number> = {
  validation: 400,
  "malformed-json": 400,
  unauthorized: 401,
  forbidden: 403,
  "not-found": 404,
  "method-not-allowed": 405,
  conflict: 409,
  base_plan_exists: 409,
  migration_running: 409,
  "payload-too-large": 413,
  "unsupported-media-type": 415,
  unprocessable: 422,
  unavailable: 503,
  internal: 500,
};

export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  requestId?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** Thrown anywhere in a request; the app's onError turns it into the response. */
export class Problem extends Error {
  readonly status: number;
  readonly slug: ProblemSlug;
  readonly detail: string;
  readonly extra: ProblemExtra;

  constructor(slug: ProblemSlug, detail: string, extra: ProblemExtra = {}) {
    super(detail);
    this.slug = slug;
    this.status = STATUS[slug];
    this.detail = detail;
    this.extra = extra;
  }
}

export type ProblemExtra = { errors?: FieldError[]; headers?: Record<string, string>; [k: string]: unknown };

/** The problem's title as problem+json states it (pages show it too: src/ui/). */
export const problemTitle = (p: Problem): string => TITLES[p.slug];

/** The problem's body: what an HTTP response carries, and what an RPC call answers (rpc/entrypoint.ts). */
export function problemBody(p: Problem, instance?: string, requestId?: string): ProblemBody {
  const { headers: _headers, ...extensions } = p.extra;
  return {
    type: `urn:tollgate:problem:${p.slug}`,
    title: TITLES[p.slug],
    status: p.status,
    detail: p.detail,
    instance,
    requestId,
    ...extensions,
  };
}

export function problemResponse(c: Context, p: Problem): Response {
  const { headers } = p.extra;
  const body = problemBody(p, new URL(c.req.url).pathname, c.get("requestId"));
  return new Response(JSON.stringify(body), {
    status: p.status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

export function zodProblem(error: ZodError, where: string): Problem {
  const errors = error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join("."), message: i.message }));
  return new Problem("validation", `${errors.length} invalid field(s): ${errors.map((e) => e.path).join(", ")}`, {
    errors,
  });
}

/** Maps anything thrown to a Problem; unknown errors become an opaque 500 (logged, never echoed). */
export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  if (err instanceof HTTPException) {
    if (err.status === 400 && /json/i.test(err.message))
      return new Problem("malformed-json", "The request body is not valid JSON.");
    if (err.status === 413) return new Problem("payload-too-large", err.message || "The request body is too large.");
    const slug = slugOfStatus(err.status);
    return new Problem(slug, err.message || TITLES[slug]);
  }
  if (err instanceof StoreUnavailable)
    return new Problem("unavailable", "Entitlement data cannot be read right now.", {
      headers: { "Retry-After": "5" },
    });
  return new Problem("internal", "An unexpected error occurred; it has been logged with the request id.");
}

function slugOfStatus(status: number): ProblemSlug {
  switch (status) {
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not-found";
    default:
      return status >= 500 ? "internal" : "validation";
  }
}

/** The one log line of a failed request (a 500's details go here, never to the client). */
export function logRequestFailure(c: Context, err: unknown): void {
  console.error(
    JSON.stringify({
      msg: "request failed",
      requestId: c.get("requestId"),
      path: c.req.path,
      error: err instanceof Error ? err.stack : String(err),
    }),
  );
}
