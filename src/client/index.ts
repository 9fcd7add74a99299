// Tollgate's client: a thin, typed wrapper over fetch with no runtime dependencies, so it runs in
// browsers, Node 20+, Deno and Workers alike (import "tollgate/client": dist/client, built from this
// file by `npm run build`, which `prepare` runs on every npm install; tsconfig.client.json).
// - check() answers from a tiny local cache while the last answer is valid: until its expiresAt,
//   at most `cacheMaxTtlMs` after it was received, never for metered features (usage moves).
// - Every call is safe to repeat, so network errors, 429 and 5xx are retried with backoff; consume
//   and record send the SAME idempotency key on every attempt (one is generated when absent), so a
//   retry after a lost response is replayed by the meter, never counted twice.

// The wire types are the worker's own (src/domain/types.ts has no binding types): one contract, no drift.
// The ".js" is for the built declarations: Node's ESM resolution (a consumer's "nodenext") needs it.
import type { Reason, Decision as WireDecision } from "../domain/types.js";

export type { Json, Reason, UpgradeHint } from "../domain/types.js";
/** Compare versions ("c.k") componentwise: `versionAtLeast(decision.version, written.version)`. */
export { versionAtLeast } from "../domain/version.js";

/** A check's answer; `assertion` is present when the check asked for one ("assert": true). */
export interface Decision extends WireDecision {
  assertion?: string;
}

export interface CheckRequest {
  customerId: string;
  feature: string;
  role?: string;
  country?: string;
  quantity?: number;
  /** Metered: the oldest usage (ms) the server may answer from its usage summary; 0: ask the meter (exact). */
  maxUsageAgeMs?: number;
  /** Read-your-writes: the `version` a write returned ("c.k"), or its numeric `snapshotVersion`. */
  minVersion?: string | number;
  assert?: boolean;
  assertAudience?: string;
  /** ["upgrade"]: a not_entitled or limit_reached denial lists what would allow it (`decision.upgrade`). */
  include?: "upgrade"[];
  /** The user, seat or device inside the customer: its seat and own limits decide too (`decision.entity`). */
  entityId?: string;
}

export interface Entitlements {
  customerId: string;
  snapshotVersion: number;
  version: string;
  snapshotAgeMs: number;
  evaluatedAt: string;
  degraded?: boolean;
  /** The entity the features were evaluated for. */
  entityId?: string;
  features: Record<
    string,
    Omit<Decision, "customerId" | "feature" | "snapshotVersion" | "version" | "snapshotAgeMs" | "evaluatedAt">
  >;
}

export interface UsageRequest {
  customerId: string;
  feature: string;
  amount?: number;
  /** Generated when absent; the same key is sent on every retry. */
  idempotencyKey?: string;
  /** The user, seat or device inside the customer: its seat and per-entity limit decide with the pooled one. */
  entityId?: string;
}

export interface UsageAnswer {
  customerId: string;
  feature: string;
  allowed: boolean;
  reason: Reason;
  used: number;
  limit: number | null;
  remaining: number | null;
  resetsAt: string | null;
  overage: number;
  reserved: number;
  /** True when the meter had already applied this idempotency key: the original answer, not counted again. */
  replayed?: boolean;
  snapshotVersion: number;
  /** The key sent (generated when the request had none). */
  idempotencyKey: string;
  /** A consume for an entity: its seat and its own usage (`remaining` is the smaller of its and the customer's). */
  entity?: Decision["entity"];
  /** Which bound of the entity denied it (absent: the customer's). */
  deniedBy?: Decision["deniedBy"];
}

/** A seat of a seats feature for a named entity: assignSeat's and releaseSeat's answer. */
export interface SeatAnswer {
  customerId: string;
  entityId: string;
  feature: string;
  /** Whether the entity holds a seat of the feature now. */
  assigned: boolean;
  /** Why none was assigned: limit_reached (all seats taken), not_entitled (or the lapse that ended the entitlement). */
  reason?: Reason;
  /** Seats assigned now, to any entity. */
  used: number;
  limit: number | null;
  remaining: number | null;
  snapshotVersion: number;
}

/** An entity: the seats it holds, its usage against each per-entity limit. */
export interface Entity {
  customerId: string;
  entityId: string;
  seats: { feature: string; assignedAt: string }[];
  usage: { feature: string; used: number; limit: number; remaining: number; resetsAt: string | null }[];
  evaluatedAt: string;
  snapshotVersion: number;
}

export interface TokenRequest {
  customerId: string;
  ttlSeconds?: number;
  audience?: string;
  features?: string[];
  role?: string;
  country?: string;
  /** A token for this entity: features needing a seat it does not hold are off in it. */
  entityId?: string;
}

export interface TokenResponse {
  token: string;
  kid: string;
  issuer: string;
  audience: string;
  issuedAt: string;
  expiresAt: string;
  snapshotVersion: number;
}

export interface TollgateClientOptions {
  /** e.g. https://tollgate.example.com */
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Longest a check answer is reused (default 30 s; 0 disables the cache). */
  cacheMaxTtlMs?: number;
  cacheMaxEntries?: number;
  /** Retries after the first attempt (default 2). */
  retries?: number;
  /** First backoff (default 100 ms), doubled per attempt, with jitter, capped by maxBackoffMs (default 2 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A Retry-After up to this long is waited out (default 5 s); a longer one fails the call at once. */
  maxRetryAfterMs?: number;
  /** Injectable for tests: the clock, the wait between attempts, the jitter source. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** An RFC 9457 problem+json body as Tollgate sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  [k: string]: unknown;
}

/** A final HTTP error (the problem+json body as `problem`) or, with status 0, a network failure. */
export class TollgateError extends Error {
  // Plain fields, not parameter properties: the file stays erasable TypeScript (tsconfig.client.json).
  readonly status: number;
  readonly problem: Problem | null;

  constructor(status: number, problem: Problem | null, options?: { cause?: unknown }) {
    super(problem?.detail ?? (status === 0 ? "Tollgate could not be reached" : `Tollgate answered ${status}`), options);
    this.name = "TollgateError";
    this.status = status;
    this.problem = problem;
  }
}

const RETRYABLE = (status: number) => status === 429 || status >= 500;

export class TollgateClient {
  readonly #o: Required<Omit<TollgateClientOptions, "fetch">>;
  readonly #fetch: typeof fetch;
  readonly #cache = new Map<string, { decision: Decision; until: number }>();

  constructor(options: TollgateClientOptions) {
    this.#o = {
      cacheMaxTtlMs: 30_000,
      cacheMaxEntries: 1000,
      retries: 2,
      backoffMs: 100,
      maxBackoffMs: 2000,
      maxRetryAfterMs: 5000,
      now: () => Date.now(),
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      random: Math.random,
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
    };
    // Bound: browsers throw "Illegal invocation" when fetch is called as a method of another object.
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** May this customer use this feature now? Served from the local cache while the last answer holds. */
  async check(input: CheckRequest): Promise<Decision> {
    const cacheable =
      input.quantity === undefined && input.minVersion === undefined && !input.assert && !input.include?.length;
    const key = cacheKey(input.customerId, input.feature, input.role, input.country, input.entityId);
    const hit = cacheable ? this.#cache.get(key) : undefined;
    if (hit && hit.until > this.#o.now()) return hit.decision;
    const decision = await this.#call<Decision>("POST", "/v1/check", input);
    if (cacheable) this.#remember(key, decision);
    return decision;
  }

  /** Every feature at once; the answers also fill the check cache. */
  async entitlements(
    customerId: string,
    ctx: { role?: string; country?: string; minVersion?: string | number; entityId?: string } = {},
  ): Promise<Entitlements> {
    const q = new URLSearchParams(
      Object.entries(ctx)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, String(v)]),
    );
    const all = await this.#call<Entitlements>(
      "GET",
      `/v1/entitlements/${encodeURIComponent(customerId)}${q.toString() ? `?${q}` : ""}`,
    );
    const { features, ...common } = all;
    for (const [feature, d] of Object.entries(features)) {
      this.#remember(cacheKey(customerId, feature, ctx.role, ctx.country, ctx.entityId), {
        ...d,
        ...common,
        degraded: d.degraded ?? common.degraded,
        customerId,
        feature,
      } as Decision);
    }
    return all;
  }

  /** Atomically check and count usage (denied when it does not fit). */
  consume(input: UsageRequest): Promise<UsageAnswer> {
    return this.#usage(input, "consume");
  }

  /** Record usage that already happened (always counted; overage is reported). */
  record(input: UsageRequest & { timestamp?: string }): Promise<UsageAnswer> {
    return this.#usage(input, "record");
  }

  /** Assigns the entity a seat of a seats feature when one is free (assigned: false with a reason when not). */
  assignSeat(customerId: string, entityId: string, feature: string): Promise<SeatAnswer> {
    return this.#call<SeatAnswer>("POST", `${entityPath(customerId, entityId)}/assign`, { feature });
  }

  /** Frees the entity's seat: its checks of features needing one deny from now on. */
  async releaseSeat(customerId: string, entityId: string, feature: string): Promise<SeatAnswer> {
    const answer = await this.#call<SeatAnswer>("POST", `${entityPath(customerId, entityId)}/release`, { feature });
    this.clearCache(customerId);
    return answer;
  }

  /** The seats an entity holds and its usage against per-entity limits. */
  entity(customerId: string, entityId: string): Promise<Entity> {
    return this.#call<Entity>("GET", entityPath(customerId, entityId));
  }

  /** A signed entitlement token (verify offline with /.well-known/jwks.json). */
  token(input: TokenRequest): Promise<TokenResponse> {
    return this.#call<TokenResponse>("POST", "/v1/tokens", input);
  }

  /** Forgets cached checks (of one customer, or all). */
  clearCache(customerId?: string): void {
    if (customerId === undefined) {
      this.#cache.clear();
      return;
    }
    for (const [k, v] of this.#cache) if (v.decision.customerId === customerId) this.#cache.delete(k);
  }

  async #usage(input: UsageRequest & { timestamp?: string }, mode: "consume" | "record"): Promise<UsageAnswer> {
    const idempotencyKey = input.idempotencyKey ?? crypto.randomUUID();
    const answer = await this.#call<Omit<UsageAnswer, "idempotencyKey">>("POST", "/v1/usage", {
      ...input,
      idempotencyKey,
      mode,
    });
    return { ...answer, idempotencyKey };
  }

  #remember(key: string, d: Decision): void {
    if (
      this.#o.cacheMaxTtlMs <= 0 ||
      d.type === undefined ||
      d.type === "metered" ||
      d.type === "credits" ||
      d.type === "seats" ||
      // An entity's seat can be released at any moment (by another caller): never cached.
      d.entity !== undefined ||
      d.degraded
    )
      return;
    // Durations from the server's own instants, applied to the local clock: immune to clock skew.
    let ttl = this.#o.cacheMaxTtlMs;
    if (d.expiresAt) ttl = Math.min(ttl, Date.parse(d.expiresAt) - Date.parse(d.evaluatedAt));
    if (!(ttl > 0)) return;
    this.#cache.delete(key);
    this.#cache.set(key, { decision: d, until: this.#o.now() + ttl });
    const oldest = this.#cache.keys().next();
    if (this.#cache.size > this.#o.cacheMaxEntries && !oldest.done) this.#cache.delete(oldest.value);
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = {
      method,
      headers: { Authorization: `Bearer ${this.#o.apiKey}`, Accept: "application/json" },
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.#fetch(`${this.#o.baseUrl}${path}`, init);
      } catch (err) {
        if (attempt >= this.#o.retries) throw new TollgateError(0, null, { cause: err });
        await this.#o.sleep(this.#backoff(attempt));
        continue;
      }
      if (res.ok) return (await res.json()) as T;
      const problem = (await res.json().catch(() => null)) as Problem | null;
      const wait = RETRYABLE(res.status) && attempt < this.#o.retries ? this.#waitBefore(res, attempt) : null;
      if (wait === null) throw new TollgateError(res.status, problem);
      await this.#o.sleep(wait);
    }
  }

  /** Exponential backoff with "equal jitter": half fixed, half random, so retries spread out. */
  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#o.maxBackoffMs, this.#o.backoffMs * 2 ** attempt);
    return Math.round(ceiling / 2 + (this.#o.random() * ceiling) / 2);
  }

  /** Retry-After (seconds) is honoured; one longer than maxRetryAfterMs means "not now": give up. */
  #waitBefore(res: Response, attempt: number): number | null {
    const header = res.headers.get("Retry-After");
    const seconds = header === null ? NaN : Number(header);
    if (!Number.isFinite(seconds)) return this.#backoff(attempt);
    return seconds * 1000 > this.#o.maxRetryAfterMs ? null : Math.max(0, seconds * 1000);
  }
}

const cacheKey = (customerId: string, feature: string, role?: string, country?: string, entityId?: string) =>
  JSON.stringify([customerId, feature, role ?? null, country?.toUpperCase() ?? null, entityId ?? null]);

const entityPath = (customerId: string, entityId: string) =>
  `/v1/entities/${encodeURIComponent(customerId)}/${encodeURIComponent(entityId)}`;
