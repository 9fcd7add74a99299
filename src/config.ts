// The worker's configuration: every var the code reads (wrangler.toml's and those src/env.ts adds), read
// by one zod schema into a typed object with the defaults applied. Memoised per env object: workerd hands
// an isolate the same env for every request, and a test that passes {...env, X: "..."} gets its own
// parse, so nothing leaks between env objects.
//
// No field can fail: an unset or invalid value keeps its default (PAST_DUE_GRACE_DAYS also logs it),
// because a typo in a var must never turn a check or a webhook into a 500. Numbers are read the way
// JavaScript's Number() reads them (so " 12 " and "1e3" count), then checked by each field's own rule.
// Bindings (DB, SNAPSHOTS, METER) are not configuration, and neither are ADMIN_BOOTSTRAP_KEY and
// TOKEN_SIGNING_KEYS: each is used whole by one module that caches what it derives per secret value
// (auth/middleware.ts, tokens/keys.ts). Production refuses HS256 operator tokens (localSecretFor) and
// the bootstrap key (auth/middleware.ts), whatever the secrets say. API_KEY_CHECKSUM_SECRET has a default
// in development only (checksumSecretsFor).
import { z } from "zod";
import type { OperatorJwtConfig } from "./auth/operator-jwt";
import { DEFAULT_PAST_DUE_GRACE_DAYS, type LifecycleConfig } from "./domain/lifecycle";
import { DAY_MS } from "./domain/time";
import type { Env } from "./env";
import { DEFAULT_SNAPSHOT_CACHE } from "./store/snapshots";

const DEFAULT_GRANT_MAX_LIFETIME_DAYS = 90;
const DEFAULT_SCHEDULED_MAX_CHANGES = 100;
// 13 months: a year back plus a month, so last year's same month and an annual invoice's audit stay in D1.
const DEFAULT_RETENTION_DAYS = 400;
const DEFAULT_READYZ_TIMEOUT_MS = 2_000;
/** As the snapshot cache's TTL: a usage summary is no older than the terms it is judged against. */
export const DEFAULT_USAGE_SUMMARY_MAX_AGE_MS = 5_000;
/** The largest staleness bound a deployment may set (and a check may ask for). */
export const MAX_USAGE_SUMMARY_AGE_MS = 60_000;
const DEFAULT_TOKEN_ISSUER = "tollgate";
/** API_KEY_CHECKSUM_SECRET where ENVIRONMENT is "development" and the secret is not set; never elsewhere. */
export const DEVELOPMENT_CHECKSUM_SECRET = "tollgate-development-api-key-checksum";
/** How long an isolate's copy of an API key record may stand in for KV and D1 when both fail: as snapshots. */
const DEFAULT_API_KEY_STALE_IF_ERROR_MS = DAY_MS;

export interface Config {
  /** ENVIRONMENT as set ("development" at the top level of wrangler.toml, "staging", "production"). */
  environment: string | undefined;
  /** The in-isolate snapshot cache (the other options are not configurable: store/snapshots.ts). */
  snapshotCache: {
    ttlMs: number;
    maxEntries: number;
    catalogTtlMs: number;
    /** The per-isolate budget of part compiles from D1 on a KV miss (store/read-budget.ts). */
    readThroughPerSecond: number;
    readThroughBurst: number;
    /** How long a customer part lives in KV unless refreshed, in seconds (store/publisher.ts). */
    partTtlSeconds: number;
    /** Consumes: how long a part the meter keeps confirming stays fresh after it was read (store/snapshots.ts confirm). */
    confirmedMaxMs: number;
  };
  lifecycle: LifecycleConfig;
  grants: { maxLifetimeMs: number };
  /** Subscriptions the cron handler changes per run at most. */
  scheduled: { maxChanges: number };
  /**
   * How long rows stay in D1 before the cron archives them to R2 and deletes them (store/retention.ts):
   * audit_log (AUDIT_RETENTION_DAYS), and history (HISTORY_RETENTION_DAYS: snapshot, part and catalog
   * history, whose row in force at the cutoff is kept, and the legacy per-event usage rows), and the
   * totals of closed usage periods (USAGE_RETENTION_DAYS; docs/storage.md has the growth formula).
   */
  retention: { auditMs: number; historyMs: number; usageMs: number };
  readyz: { timeoutMs: number };
  operatorJwt: OperatorJwtConfig;
  /** The `iss` of entitlement tokens and decision assertions. */
  tokens: { issuer: string };
  /**
   * API keys: the checksum secrets (the first makes new keys, all verify; empty: checksummed keys cannot be
   * made or verified, 503) and how long a cached key record outlives an outage of KV and D1.
   */
  apiKeys: { checksumSecrets: string[]; staleIfErrorMs: number };
  /** The Stripe webhook endpoint secrets: more than one during a rotation. */
  stripe: { webhookSecrets: string[] };
  /** Customers with a residency get their meter in that Durable Object jurisdiction (meter/locate.ts). */
  doJurisdictions: boolean;
  /**
   * Outbound events: the usage thresholds (percent of a limit) that raise usage.threshold, and how long
   * before a trial or a grant ends trial.ending and grant.expiring are sent.
   */
  events: { usageThresholds: number[]; trialEndingLeadMs: number; grantExpiringLeadMs: number };
  /** The console and the portal (src/ui/). */
  ui: UiConfig;
  /**
   * The staleness bound of the isolate's usage summary (USAGE_SUMMARY_MAX_AGE_MS; 0: every metered check asks
   * the meter): a check may lower it with maxUsageAgeMs (domain/usage-summary.ts).
   */
  usageSummary: { maxAgeMs: number };
  /** Benchmark mode (src/bench): BENCH_INSTRUMENT = "on", honoured only in the development environment. */
  bench: boolean;
  /**
   * Analytics (src/analytics/): where points go, how long local mode buffers them, and what the endpoints
   * need to query Analytics Engine's SQL API (both unset: the endpoints answer 503 in engine mode).
   */
  analytics: { mode: AnalyticsMode; flushMs: number; accountId?: string; apiToken?: string; dataset: string };
}

export interface UiConfig {
  /** Signs console sessions, CSRF tokens and portal links; undefined: the console and portal answer 503. */
  sessionSecret: string | undefined;
  sessionTtlMs: number;
  portal: {
    upgradeUrl: string | undefined;
    frameAncestors: string[];
    accentColor: string;
    logoUrl: string | undefined;
    title: string;
  };
}

/** SESSION_SECRET where ENVIRONMENT is "development" and the secret is not set; never elsewhere. */
export const DEVELOPMENT_SESSION_SECRET = "tollgate-development-session-secret-not-for-deploys";
const DEFAULT_SESSION_MINUTES = 30;
const DEFAULT_ACCENT = "#3355cc";
const HEX_COLOR = /^#[0-9a-fA-F]{3,8}$/;
// An origin as CSP's frame-ancestors takes it: scheme, host, optional port, nothing else (no quotes, no ;).
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/;
// Same origin only: a path ("/x", not "//host") or inline image data, so the portal loads nothing from elsewhere.
const LOCAL_IMAGE = /^(\/(?!\/)[^\s"'<>]*|data:image\/(png|gif|jpeg|webp|svg\+xml);base64,[A-Za-z0-9+/=]+)$/;
export type AnalyticsMode = "engine" | "local" | "off";
// A flush writes each touched cell once, so a longer interval writes less (each warm customer-feature pair
// once per interval, whatever the check rate); the endpoints flush before reading anyway.
const DEFAULT_ANALYTICS_FLUSH_MS = 60_000;
/** The binding does not say which dataset it writes: ANALYTICS_DATASET repeats it for the SQL API. */
const DEFAULT_ANALYTICS_DATASET = "tollgate_analytics";

const isPositiveInteger = (n: number) => Number.isInteger(n) && n > 0;

/** A var as the runtime hands it over: usually a string, JSON for a non-string [vars] value, or absent. */
const anyVar = z.unknown().optional();

/** A var as Number() reads it (unset reads as NaN), kept when `valid`, else `fallback`. */
const numberVar = (fallback: number, valid: (n: number) => boolean) =>
  anyVar.transform((raw) => {
    const n = Number(raw);
    return valid(n) ? n : fallback;
  });

/** A comma-separated list of secrets (a rotation lists the new one first), trimmed; unset is empty. */
const listVar = anyVar.transform((raw) =>
  String(raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

const DEFAULT_USAGE_THRESHOLDS = [80, 100];
const DEFAULT_EVENT_LEAD_DAYS = 3;

/** Percentages in (0, 1000], comma-separated ("80,100"); anything else keeps the default. */
const thresholdsVar = anyVar.transform((raw) => {
  if (raw === undefined || raw === "") return DEFAULT_USAGE_THRESHOLDS;
  const list = String(raw)
    .split(",")
    .map((s) => Number(s.trim()));
  return list.length > 0 && list.every((n) => Number.isFinite(n) && n > 0 && n <= 1000)
    ? [...new Set(list)].sort((a, b) => a - b)
    : DEFAULT_USAGE_THRESHOLDS;
});

/** A var as a string; unset or empty is undefined. */
const stringVar = anyVar.transform((raw) => (raw ? String(raw) : undefined));

// Grace 0 is meaningful ("no grace at all"), so unlike the others a bad value is also logged: a typo must
// not silently mean no grace, or forever.
const pastDueGraceMs = anyVar.transform((raw) => {
  const days = raw === undefined || raw === "" ? DEFAULT_PAST_DUE_GRACE_DAYS : Number(raw);
  if (Number.isFinite(days) && days >= 0) return Math.round(days * DAY_MS);
  console.warn(
    JSON.stringify({ msg: "PAST_DUE_GRACE_DAYS is not a non-negative number; using the default", value: raw }),
  );
  return DEFAULT_PAST_DUE_GRACE_DAYS * DAY_MS;
});

const configSchema = z
  .object({
    ENVIRONMENT: anyVar.transform((raw) => (typeof raw === "string" ? raw : undefined)),
    SNAPSHOT_CACHE_TTL_MS: numberVar(DEFAULT_SNAPSHOT_CACHE.ttlMs, (n) => n > 0),
    USAGE_CONFIRMED_PART_MAX_MS: numberVar(DEFAULT_SNAPSHOT_CACHE.confirmedMaxMs, (n) => Number.isFinite(n) && n >= 0),
    SNAPSHOT_CACHE_MAX_ENTRIES: numberVar(DEFAULT_SNAPSHOT_CACHE.maxEntries, isPositiveInteger),
    CATALOG_CACHE_TTL_MS: numberVar(DEFAULT_SNAPSHOT_CACHE.catalogTtlMs, (n) => n > 0),
    READTHROUGH_PER_SECOND: numberVar(DEFAULT_SNAPSHOT_CACHE.readThroughPerSecond, (n) => Number.isFinite(n) && n > 0),
    READTHROUGH_BURST: numberVar(DEFAULT_SNAPSHOT_CACHE.readThroughBurst, isPositiveInteger),
    // KV's expirationTtl is 60 s at least.
    PART_KV_TTL_SECONDS: numberVar(DEFAULT_SNAPSHOT_CACHE.partTtlSeconds, (n) => Number.isInteger(n) && n >= 60),
    PAST_DUE_GRACE_DAYS: pastDueGraceMs,
    GRANT_MAX_LIFETIME_DAYS: numberVar(DEFAULT_GRANT_MAX_LIFETIME_DAYS, (n) => Number.isFinite(n) && n > 0),
    SCHEDULED_MAX_CHANGES: numberVar(DEFAULT_SCHEDULED_MAX_CHANGES, isPositiveInteger),
    AUDIT_RETENTION_DAYS: numberVar(DEFAULT_RETENTION_DAYS, (n) => Number.isFinite(n) && n >= 1),
    HISTORY_RETENTION_DAYS: numberVar(DEFAULT_RETENTION_DAYS, (n) => Number.isFinite(n) && n >= 1),
    USAGE_RETENTION_DAYS: numberVar(DEFAULT_RETENTION_DAYS, (n) => Number.isFinite(n) && n >= 1),
    // Any non-zero number is kept, a negative one too (it times every probe out at once).
    READYZ_TIMEOUT_MS: numberVar(DEFAULT_READYZ_TIMEOUT_MS, (n) => n !== 0 && !Number.isNaN(n)),
    OPERATOR_JWT_ISSUER: anyVar.transform((raw) => String(raw ?? "")),
    OPERATOR_JWT_AUDIENCE: anyVar.transform((raw) => String(raw ?? "")),
    OPERATOR_JWKS_URL: stringVar,
    OPERATOR_JWT_SECRET: stringVar,
    TOKEN_ISSUER: stringVar,
    STRIPE_WEBHOOK_SECRET: listVar,
    API_KEY_CHECKSUM_SECRET: listVar,
    API_KEY_STALE_IF_ERROR_MS: numberVar(DEFAULT_API_KEY_STALE_IF_ERROR_MS, (n) => Number.isFinite(n) && n >= 0),
    DO_JURISDICTIONS: anyVar.transform((raw) => raw === "on"),
    BENCH_INSTRUMENT: anyVar.transform((raw) => raw === "on"),
    SESSION_SECRET: stringVar,
    CONSOLE_SESSION_MINUTES: numberVar(DEFAULT_SESSION_MINUTES, (n) => Number.isFinite(n) && n > 0 && n <= 24 * 60),
    PORTAL_UPGRADE_URL: anyVar.transform((raw) =>
      typeof raw === "string" && /^https?:\/\//.test(raw) ? raw : undefined,
    ),
    PORTAL_FRAME_ANCESTORS: listVar.transform((list) => list.filter((o) => ORIGIN.test(o))),
    PORTAL_ACCENT_COLOR: anyVar.transform((raw) =>
      typeof raw === "string" && HEX_COLOR.test(raw) ? raw : DEFAULT_ACCENT,
    ),
    PORTAL_LOGO_URL: anyVar.transform((raw) => (typeof raw === "string" && LOCAL_IMAGE.test(raw) ? raw : undefined)),
    PORTAL_TITLE: anyVar.transform((raw) =>
      typeof raw === "string" && raw.trim() ? raw.trim().slice(0, 80) : "Your plan",
    ),
    ANALYTICS_MODE: anyVar.transform((raw) =>
      raw === "engine" || raw === "local" || raw === "off" ? (raw as AnalyticsMode) : undefined,
    ),
    ANALYTICS_FLUSH_MS: numberVar(DEFAULT_ANALYTICS_FLUSH_MS, (n) => Number.isFinite(n) && n >= 0),
    ANALYTICS_ACCOUNT_ID: stringVar,
    ANALYTICS_API_TOKEN: stringVar,
    ANALYTICS_DATASET: stringVar,
    USAGE_SUMMARY_MAX_AGE_MS: numberVar(
      DEFAULT_USAGE_SUMMARY_MAX_AGE_MS,
      (n) => Number.isFinite(n) && n >= 0 && n <= MAX_USAGE_SUMMARY_AGE_MS,
    ),
    WEBHOOK_USAGE_THRESHOLDS: thresholdsVar,
    WEBHOOK_TRIAL_ENDING_DAYS: numberVar(DEFAULT_EVENT_LEAD_DAYS, (n) => Number.isFinite(n) && n > 0),
    WEBHOOK_GRANT_EXPIRING_DAYS: numberVar(DEFAULT_EVENT_LEAD_DAYS, (n) => Number.isFinite(n) && n > 0),
  })
  .transform(
    (v): Config => ({
      environment: v.ENVIRONMENT,
      snapshotCache: {
        ttlMs: v.SNAPSHOT_CACHE_TTL_MS,
        maxEntries: v.SNAPSHOT_CACHE_MAX_ENTRIES,
        catalogTtlMs: v.CATALOG_CACHE_TTL_MS,
        readThroughPerSecond: v.READTHROUGH_PER_SECOND,
        readThroughBurst: v.READTHROUGH_BURST,
        partTtlSeconds: v.PART_KV_TTL_SECONDS,
        confirmedMaxMs: v.USAGE_CONFIRMED_PART_MAX_MS,
      },
      lifecycle: { pastDueGraceMs: v.PAST_DUE_GRACE_DAYS },
      grants: { maxLifetimeMs: v.GRANT_MAX_LIFETIME_DAYS * DAY_MS },
      scheduled: { maxChanges: v.SCHEDULED_MAX_CHANGES },
      retention: {
        auditMs: v.AUDIT_RETENTION_DAYS * DAY_MS,
        historyMs: v.HISTORY_RETENTION_DAYS * DAY_MS,
        usageMs: v.USAGE_RETENTION_DAYS * DAY_MS,
      },
      readyz: { timeoutMs: v.READYZ_TIMEOUT_MS },
      operatorJwt: {
        issuer: v.OPERATOR_JWT_ISSUER,
        audience: v.OPERATOR_JWT_AUDIENCE,
        jwksUrl: v.OPERATOR_JWKS_URL,
        localSecret: localSecretFor(v.ENVIRONMENT, v.OPERATOR_JWT_SECRET),
      },
      tokens: { issuer: v.TOKEN_ISSUER ?? DEFAULT_TOKEN_ISSUER },
      apiKeys: {
        checksumSecrets: checksumSecretsFor(v.ENVIRONMENT, v.API_KEY_CHECKSUM_SECRET),
        staleIfErrorMs: v.API_KEY_STALE_IF_ERROR_MS,
      },
      stripe: { webhookSecrets: v.STRIPE_WEBHOOK_SECRET },
      doJurisdictions: v.DO_JURISDICTIONS,
      events: {
        usageThresholds: v.WEBHOOK_USAGE_THRESHOLDS,
        trialEndingLeadMs: v.WEBHOOK_TRIAL_ENDING_DAYS * DAY_MS,
        grantExpiringLeadMs: v.WEBHOOK_GRANT_EXPIRING_DAYS * DAY_MS,
      },
      usageSummary: { maxAgeMs: v.USAGE_SUMMARY_MAX_AGE_MS },
      bench: v.BENCH_INSTRUMENT && v.ENVIRONMENT === "development",
      ui: {
        sessionSecret: sessionSecretFor(v.ENVIRONMENT, v.SESSION_SECRET),
        sessionTtlMs: v.CONSOLE_SESSION_MINUTES * 60_000,
        portal: {
          upgradeUrl: v.PORTAL_UPGRADE_URL,
          frameAncestors: v.PORTAL_FRAME_ANCESTORS,
          accentColor: v.PORTAL_ACCENT_COLOR,
          logoUrl: v.PORTAL_LOGO_URL,
          title: v.PORTAL_TITLE,
        },
      },
      analytics: {
        mode: v.ANALYTICS_MODE ?? (v.ENVIRONMENT === "development" ? "local" : "engine"),
        flushMs: v.ANALYTICS_FLUSH_MS,
        accountId: v.ANALYTICS_ACCOUNT_ID,
        apiToken: v.ANALYTICS_API_TOKEN,
        dataset: v.ANALYTICS_DATASET ?? DEFAULT_ANALYTICS_DATASET,
      },
    }),
  );

/**
 * OPERATOR_JWT_SECRET, except in production: whoever holds an HS256 secret mints operator tokens with
 * any sub and role, so four eyes would mean nothing. There operators come from an identity provider's
 * JWKS (Cloudflare Access) or not at all; a secret left set is ignored, and said so once per isolate.
 */
function localSecretFor(environment: string | undefined, secret: string | undefined): string | undefined {
  if (environment !== "production" || secret === undefined) return secret;
  console.warn(
    JSON.stringify({
      msg: "OPERATOR_JWT_SECRET is ignored in production: HS256 operator tokens are refused; delete the secret",
    }),
  );
  return undefined;
}

/**
 * API_KEY_CHECKSUM_SECRET, or in development only (npm start without it in an older .dev.vars, the tests)
 * a documented default. Anywhere else a missing secret stays missing: deploys require it (wrangler.toml),
 * and a checksummed key is then a 503, never verified under a secret everyone can read.
 */
function checksumSecretsFor(environment: string | undefined, secrets: string[]): string[] {
  if (secrets.length > 0 || environment !== "development") return secrets;
  return [DEVELOPMENT_CHECKSUM_SECRET];
}

/**
 * SESSION_SECRET when it is long enough to be a key (32 characters), or in development only a documented
 * default. Elsewhere a missing or short secret stays missing: the console and the portal answer 503
 * rather than sign sessions anyone could forge.
 */
function sessionSecretFor(environment: string | undefined, secret: string | undefined): string | undefined {
  if (secret !== undefined && secret.length >= 32) return secret;
  return environment === "development" ? DEVELOPMENT_SESSION_SECRET : undefined;
}

const parsed = new WeakMap<Env, Config>();

/** The configuration of this env object, parsed on first use. */
export function configOf(env: Env): Config {
  let config = parsed.get(env);
  if (!config) {
    config = configSchema.parse(env);
    parsed.set(env, config);
  }
  return config;
}
