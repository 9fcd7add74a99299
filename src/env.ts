// Bindings and configuration (wrangler.toml [vars], Worker secrets / .dev.vars). A leaf: the Hono
// context type that sits on top of the services is in app-env.ts.

export interface Env {
  SNAPSHOTS: KVNamespace;
  DB: D1Database;
  METER: DurableObjectNamespace<import("./meter/customer-meter").CustomerMeter>;
  ENVIRONMENT?: string;
  /** In-isolate snapshot cache TTL in ms (default 5000). */
  SNAPSHOT_CACHE_TTL_MS?: string;
  /** "on" routes customers with a residency to their Durable Object jurisdiction (deployed only). */
  DO_JURISDICTIONS?: string;
  /** Secret: a bootstrap admin API key, for the first deploy and local development. */
  ADMIN_BOOTSTRAP_KEY?: string;
  /** Secret: JSON array of private JWKs (Ed25519 "OKP" or ES256 "EC"), each with a kid; the first signs tokens. */
  TOKEN_SIGNING_KEYS?: string;
  /** The `iss` of entitlement tokens and decision assertions (default "tollgate"). */
  TOKEN_ISSUER?: string;
  /** Secret: the Stripe webhook endpoint secret(s), whsec_...; comma-separated during a rotation. */
  STRIPE_WEBHOOK_SECRET?: string;
  /** Days a past_due subscription keeps access (default 7). */
  PAST_DUE_GRACE_DAYS?: string;
  /** Subscriptions the cron handler changes per run at most (default 100). */
  SCHEDULED_MAX_CHANGES?: string;
  [key: string]: unknown;
}
