// Test helpers: a worker with an injected clock, calling the real app over real bindings.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { ManualClock } from "../src/clock";
import { createWorker } from "../src/index";
import { testCatalog } from "./fixtures/catalog";

export const T0 = Date.parse("2026-03-10T12:00:00.000Z");
export const BOOTSTRAP = env.ADMIN_BOOTSTRAP_KEY as string;

let seq = 0;
/** A unique id per call, so test files and tests never share customers. */
export const uid = (prefix = "cust") =>
  `${prefix}-${Date.now().toString(36)}-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;

export type TestWorker = ReturnType<typeof testWorker>;

export function testWorker(opts: { clock?: ManualClock; env?: Cloudflare.Env } = {}) {
  const clock = opts.clock ?? new ManualClock(T0);
  const worker = createWorker({ clock });
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
  return { worker, clock, call, services: () => worker.getServices(bindings) };
}

/** Applies the test catalog (idempotent) with the bootstrap key. */
export async function loadTestCatalog(w: TestWorker) {
  const res = await w.call("PUT", "/admin/v1/catalog", { key: BOOTSTRAP, body: testCatalog });
  if (res.status !== 200) throw new Error(`catalog load failed: ${res.status} ${res.text}`);
}

export async function createCustomer(w: TestWorker, body: Record<string, unknown>) {
  const res = await w.call("POST", "/admin/v1/customers", { key: BOOTSTRAP, body });
  if (res.status !== 201) throw new Error(`customer create failed: ${res.status} ${res.text}`);
  return res.json as { id: string; snapshotVersion: number; subscriptions: string[] };
}

export async function createKey(w: TestWorker, scopes: string[], customerId: string | null = null) {
  const res = await w.call("POST", "/admin/v1/api-keys", {
    key: BOOTSTRAP,
    body: { scopes, customerId, name: "test" },
  });
  if (res.status !== 201) throw new Error(`key create failed: ${res.status} ${res.text}`);
  return res.json.key as string;
}

export const iso = (ms: number) => new Date(ms).toISOString();
export const DAY = 86_400_000;
