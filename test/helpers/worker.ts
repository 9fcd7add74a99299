// A worker with an injected clock, calling the real app over real bindings, and the answers every
// kind of test reads from it: a check decision, a problem+json, a cursor-paged list.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { ManualClock } from "../../src/clock";
import { createWorker } from "../../src/index";
import type { ApiKeyCacheOptions } from "../../src/store/api-key-store";
import { T0 } from "./time";

export const BOOTSTRAP = env.ADMIN_BOOTSTRAP_KEY as string;

let seq = 0;
/** A unique id per call, so test files and tests never share customers. */
export const uid = (prefix = "cust") =>
  `${prefix}-${Date.now().toString(36)}-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

export type TestWorker = ReturnType<typeof testWorker>;

export function testWorker(
  opts: {
    clock?: ManualClock;
    env?: Cloudflare.Env;
    keyCache?: Partial<ApiKeyCacheOptions>;
    /** Outbound HTTP (webhook receivers: test/helpers/webhooks.ts). */
    fetch?: typeof fetch;
  } = {},
) {
  const clock = opts.clock ?? new ManualClock(T0);
  const worker = createWorker({ clock, keyCache: opts.keyCache, fetch: opts.fetch });
  const bindings = opts.env ?? env;
  async function call(
    method: string,
    path: string,
    init: {
      body?: unknown;
      key?: string;
      headers?: Record<string, string>;
      cf?: Record<string, unknown>;
      raw?: BodyInit;
      env?: Cloudflare.Env;
    } = {},
  ) {
    const headers: Record<string, string> = { ...init.headers };
    if (init.key) headers.Authorization = `Bearer ${init.key}`;
    let body: BodyInit | undefined = init.raw;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers["Content-Type"] ??= "application/json";
    }
    // Admin writes need the JSON type even without a body (src/http/guards.ts, guardAdminWrites).
    if (init.raw === undefined && path.startsWith("/admin/") && method !== "GET" && method !== "HEAD")
      headers["Content-Type"] ??= "application/json";
    const ctx = createExecutionContext();
    const req = new Request(`https://tollgate.test${path}`, { method, headers, body, cf: init.cf } as RequestInit);
    const res = await worker.fetch(req, init.env ?? bindings, ctx);
    await waitOnExecutionContext(ctx);
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, json, text };
  }
  /** Runs `fn` with the clock at `t`, and puts the clock back where it was afterwards, even on failure. */
  async function at<R>(t: number, fn: () => Promise<R>): Promise<R> {
    const before = clock.now();
    clock.set(t);
    try {
      return await fn();
    } finally {
      clock.set(before);
    }
  }
  return { worker, clock, call, at, services: () => worker.getServices(bindings) };
}

/**
 * Walks a cursor-paged list (GET `path`, `limit` items a page) to its end, asserting that every page
 * is a 200 of at most `limit` items; answers all the items in the order they were served.
 */
export async function allPages(w: TestWorker, path: string, key: string, limit: number): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const query = `${path.includes("?") ? "&" : "?"}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`;
    const page = await w.call("GET", `${path}${query}`, { key });
    expect(page.status).toBe(200);
    expect(page.json.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.json.items);
    cursor = page.json.nextCursor;
  } while (cursor);
  return items;
}

/** POST /v1/check through `w` as `key`: the whole response. `cf` stands for the edge's request.cf. */
export const postCheck = (w: TestWorker, key: string, body: Record<string, unknown>, cf?: Record<string, unknown>) =>
  w.call("POST", "/v1/check", { key, body, cf });

/**
 * A check bound to one worker and one key, answering the decision (the response body) for a customer
 * and a feature. The key is read at each call, so a `beforeAll` may mint it.
 */
export const checker =
  (w: TestWorker, key: () => string) =>
  async (customerId: string, feature: string, extra: Record<string, unknown> = {}) =>
    (await postCheck(w, key(), { customerId, feature, ...extra })).json;

/** Asserts a problem+json answer with this status (and, when given, this type slug); returns its body. */
export function expectProblem(res: { status: number; headers: Headers; json: any }, status: number, slug?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(res.json.status).toBe(status);
  if (slug !== undefined) {
    expect(res.json).toMatchObject({
      type: `urn:tollgate:problem:${slug}`,
      title: expect.any(String),
      detail: expect.any(String),
    });
    expect(res.json.requestId).toBeTruthy();
  }
  return res.json as {
    type: string;
    detail: string;
    errors?: { path: string; message: string }[];
    [k: string]: unknown;
  };
}
