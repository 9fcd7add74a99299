// The worker's bindings, vars and secrets, as the runtime hands them over. What wrangler.toml declares
// (SNAPSHOTS, DB, METER, the [vars] of each environment, the required secrets TOKEN_SIGNING_KEYS,
// STRIPE_WEBHOOK_SECRET and API_KEY_CHECKSUM_SECRET) is generated into worker-configuration.d.ts as CloudflareBindings by
// `npm run cf-typegen`: regenerate it after changing wrangler.toml, never edit it. This adds what
// wrangler.toml does not name. No index signature, so a variable the code reads must be declared here
// or there. Values are raw: src/config.ts parses the vars once, with their defaults.
// A leaf: it imports nothing of the app (the generated METER type names CustomerMeter by import()).

export interface Env extends CloudflareBindings {
  /** Secret: a bootstrap admin API key (at least 32 characters), for the first deploy and local development. */
  ADMIN_BOOTSTRAP_KEY?: string;
  /** Secret: an HS256 key for operator JWTs without an identity provider (local development); never with OPERATOR_JWKS_URL. */
  OPERATOR_JWT_SECRET?: string;
  /** The `iss` of entitlement tokens and decision assertions (default "tollgate"). */
  TOKEN_ISSUER?: string;
  /** Maximum entries of the in-isolate snapshot cache, a positive integer (default 60000). */
  SNAPSHOT_CACHE_MAX_ENTRIES?: string;
  /** Days a past_due subscription keeps access, 0 for none (default 7). */
  PAST_DUE_GRACE_DAYS?: string;
  /** Days an elevated grant may last at most (default 90). */
  GRANT_MAX_LIFETIME_DAYS?: string;
  /** Seconds a customer part lives in KV unless republished or refreshed, 60 at least (default 172800, 2 days). */
  PART_KV_TTL_SECONDS?: string;
  /** Subscriptions the cron handler changes per run at most (default 100). */
  SCHEDULED_MAX_CHANGES?: string;
  /** Days audit_log rows stay in D1 before the cron archives them to R2 (default 400). */
  AUDIT_RETENTION_DAYS?: string;
  /** Days history rows (snapshot/part/catalog history, legacy usage events) stay in D1 (default 400). */
  HISTORY_RETENTION_DAYS?: string;
  /** Days the totals of closed usage periods stay in D1 before they are archived to R2 (default 400). */
  USAGE_RETENTION_DAYS?: string;
  /** How long /readyz waits for each store, in ms (default 2000). */
  READYZ_TIMEOUT_MS?: string;
  /** How long a cached API key record stands in for KV and D1 when both fail, in ms (default 86400000, 24 h). */
  API_KEY_STALE_IF_ERROR_MS?: string;
  /** Usage alerts: percentages of a limit that raise usage.threshold, comma-separated (default "80,100"). */
  WEBHOOK_USAGE_THRESHOLDS?: string;
  /** Days before a trial ends that trial.ending is sent (default 3). */
  WEBHOOK_TRIAL_ENDING_DAYS?: string;
  /** Days before a grant expires that grant.expiring is sent (default 3). */
  WEBHOOK_GRANT_EXPIRING_DAYS?: string;
  /** Secret: the HS256 key of console session cookies, their CSRF tokens and portal links (32+ characters; development has a default). */
  SESSION_SECRET?: string;
  /** Minutes a console session lasts (default 30). */
  CONSOLE_SESSION_MINUTES?: string;
  /** Origins that may embed the portal in an iframe, comma-separated (default: none). */
  PORTAL_FRAME_ANCESTORS?: string;
  /** The portal's accent colour, a CSS hex colour (default #3355cc). */
  PORTAL_ACCENT_COLOR?: string;
  /** The portal's logo: a path on this worker or a data:image/ URL (nothing is loaded from elsewhere). */
  PORTAL_LOGO_URL?: string;
  /** The name the portal shows in its header (default "Your plan"). */
  PORTAL_TITLE?: string;
  /**
   * Analytics (src/analytics/): "engine" (Workers Analytics Engine, the ANALYTICS binding), "local" (rollups in
   * D1, for `npm start`) or "off". Default: "local" where ENVIRONMENT is "development", "engine" elsewhere.
   */
  ANALYTICS_MODE?: string;
  /** The Cloudflare account whose Analytics Engine the analytics endpoints query (wrangler.toml, per environment). */
  ANALYTICS_ACCOUNT_ID?: string;
  /** Secret: a Cloudflare API token with Account Analytics Read, for the SQL API behind /admin/v1/analytics. */
  ANALYTICS_API_TOKEN?: string;
  /** Local mode: how long an isolate buffers its counters before a flush to D1, in ms (default 60000). */
  ANALYTICS_FLUSH_MS?: string;
  /** "on": benchmark mode (src/bench), set only by scripts/bench and honoured only where ENVIRONMENT is "development". */
  BENCH_INSTRUMENT?: string;
}
