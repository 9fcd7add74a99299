// A small client for Tollgate's admin API, used by the operations scripts. It speaks plain HTTP, so
// the same script works against `npm start` and a deployed worker. Rate-aware: a 429 or 503 with
// Retry-After is retried after the advertised delay (bounded), anything else is returned as is.

export class AdminApiError extends Error {
  constructor(status, problem, method, path) {
    super(describeProblem(status, problem, method, path));
    this.status = status;
    this.problem = problem;
  }
}

/** One line per problem, plus one per offending field, for a terminal. */
export function describeProblem(status, problem, method, path) {
  const head = `${method} ${path} failed: ${status}${problem?.title ? ` ${problem.title}` : ""}`;
  const lines = [head];
  if (problem?.detail) lines.push(`  ${problem.detail}`);
  for (const e of problem?.errors ?? []) lines.push(`  - ${e.path}: ${e.message}`);
  if (problem?.requestId) lines.push(`  (request id ${problem.requestId})`);
  return lines.join("\n");
}

/** Seconds (or an HTTP date) from Retry-After, as milliseconds; `fallback` when absent or unreadable. */
export function retryAfterMs(header, now = Date.now(), fallback = 1000) {
  if (!header) return fallback;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - now) : fallback;
}

/**
 * @param {{ url: string, key: string }} target
 * @param {{ fetch?: typeof fetch, sleep?: (ms: number) => Promise<void>, maxRetries?: number, maxWaitMs?: number, onRetry?: (ms: number, status: number) => void }} [opts]
 */
export function createAdminClient(target, opts = {}) {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const maxRetries = opts.maxRetries ?? 8;
  const maxWaitMs = opts.maxWaitMs ?? 60_000;

  async function request(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const headers = { Authorization: `Bearer ${target.key}`, Accept: "application/json, application/problem+json" };
      // Every admin write is JSON, even without a body: the API refuses others (CSRF guard).
      if (body !== undefined || (method !== "GET" && method !== "HEAD")) headers["Content-Type"] = "application/json";
      const res = await doFetch(`${target.url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = { detail: text.slice(0, 500) };
      }
      if (
        (res.status === 429 || res.status === 503) &&
        res.headers.get("Retry-After") !== null &&
        attempt < maxRetries
      ) {
        const wait = Math.min(maxWaitMs, retryAfterMs(res.headers.get("Retry-After")));
        opts.onRetry?.(wait, res.status);
        await sleep(wait);
        continue;
      }
      if (!res.ok) throw new AdminApiError(res.status, json, method, path);
      return json;
    }
  }
  return { request, target };
}
