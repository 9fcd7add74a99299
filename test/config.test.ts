// src/config.ts: every variable's default and the rule that keeps it; one parse per env object.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Config, configOf, DEVELOPMENT_CHECKSUM_SECRET, DEVELOPMENT_SESSION_SECRET } from "../src/config";
import { DAY_MS } from "../src/domain/time";
import type { Env } from "../src/env";

/** The configuration of an env that sets only `vars` (no bindings: config never reads them). */
const of = (vars: Record<string, unknown>) => configOf(vars as unknown as Env);

afterEach(() => {
  vi.restoreAllMocks();
});

describe("configOf", () => {
  it("has a default for everything", () => {
    expect(of({})).toEqual({
      environment: undefined,
      snapshotCache: {
        ttlMs: 5_000,
        maxEntries: 10_000,
        catalogTtlMs: 5_000,
        readThroughPerSecond: 50,
        readThroughBurst: 100,
        partTtlSeconds: 172_800,
        confirmedMaxMs: 60_000,
      },
      lifecycle: { pastDueGraceMs: 7 * DAY_MS },
      grants: { maxLifetimeMs: 90 * DAY_MS },
      scheduled: { maxChanges: 100 },
      retention: { auditMs: 400 * DAY_MS, historyMs: 400 * DAY_MS, usageMs: 400 * DAY_MS },
      readyz: { timeoutMs: 2_000 },
      operatorJwt: { issuer: "", audience: "", jwksUrl: undefined, localSecret: undefined },
      tokens: { issuer: "tollgate" },
      apiKeys: { checksumSecrets: [], staleIfErrorMs: DAY_MS },
      stripe: { webhookSecrets: [] },
      doJurisdictions: false,
      events: { usageThresholds: [80, 100], trialEndingLeadMs: 3 * DAY_MS, grantExpiringLeadMs: 3 * DAY_MS },
      usageSummary: { maxAgeMs: 5_000 },
      bench: false,
      ui: {
        sessionSecret: undefined,
        sessionTtlMs: 30 * 60_000,
        portal: {
          upgradeUrl: undefined,
          frameAncestors: [],
          accentColor: "#3355cc",
          logoUrl: undefined,
          title: "Your plan",
        },
      },
      analytics: {
        mode: "engine",
        flushMs: 60_000,
        accountId: undefined,
        apiToken: undefined,
        dataset: "tollgate_analytics",
      },
    } satisfies Config);
  });

  it("reads wrangler.toml's vars and the test secrets", () => {
    const config = configOf(env);
    expect(config.environment).toBe("development");
    expect(config.snapshotCache.ttlMs).toBe(5_000);
    expect(config.doJurisdictions).toBe(false);
    expect(config.operatorJwt).toMatchObject({
      issuer: env.OPERATOR_JWT_ISSUER,
      audience: env.OPERATOR_JWT_AUDIENCE,
      localSecret: env.OPERATOR_JWT_SECRET,
    });
  });

  it("reads the usage thresholds as sorted percentages; a bad list keeps the default", () => {
    const at = (raw: string) => configOf({ ...env, WEBHOOK_USAGE_THRESHOLDS: raw } as Cloudflare.Env).events;
    expect(at("100, 50,90").usageThresholds).toEqual([50, 90, 100]);
    expect(at("80,lots").usageThresholds).toEqual([80, 100]);
    expect(at("0").usageThresholds).toEqual([80, 100]);
  });

  // [variable, value, what the config holds]: a number as Number() reads it, or the default.
  const numbers: [string, unknown, (c: Config) => number, number][] = [
    ["SNAPSHOT_CACHE_TTL_MS", "250", (c) => c.snapshotCache.ttlMs, 250],
    ["SNAPSHOT_CACHE_TTL_MS", "1.5", (c) => c.snapshotCache.ttlMs, 1.5],
    ["SNAPSHOT_CACHE_TTL_MS", "0", (c) => c.snapshotCache.ttlMs, 5_000],
    ["SNAPSHOT_CACHE_TTL_MS", "soon", (c) => c.snapshotCache.ttlMs, 5_000],
    ["SNAPSHOT_CACHE_MAX_ENTRIES", " 50 ", (c) => c.snapshotCache.maxEntries, 50],
    ["USAGE_SUMMARY_MAX_AGE_MS", "0", (c) => c.usageSummary.maxAgeMs, 0],
    ["USAGE_SUMMARY_MAX_AGE_MS", "250", (c) => c.usageSummary.maxAgeMs, 250],
    ["USAGE_SUMMARY_MAX_AGE_MS", "600000", (c) => c.usageSummary.maxAgeMs, 5_000],
    ["USAGE_SUMMARY_MAX_AGE_MS", "-1", (c) => c.usageSummary.maxAgeMs, 5_000],
    ["SNAPSHOT_CACHE_MAX_ENTRIES", "1.5", (c) => c.snapshotCache.maxEntries, 10_000],
    ["READTHROUGH_PER_SECOND", "2.5", (c) => c.snapshotCache.readThroughPerSecond, 2.5],
    ["READTHROUGH_PER_SECOND", "0", (c) => c.snapshotCache.readThroughPerSecond, 50],
    ["PART_KV_TTL_SECONDS", "3600", (c) => c.snapshotCache.partTtlSeconds, 3600],
    ["PART_KV_TTL_SECONDS", "59", (c) => c.snapshotCache.partTtlSeconds, 172_800],
    ["USAGE_CONFIRMED_PART_MAX_MS", "0", (c) => c.snapshotCache.confirmedMaxMs, 0],
    ["USAGE_CONFIRMED_PART_MAX_MS", "-5", (c) => c.snapshotCache.confirmedMaxMs, 60_000],
    ["READTHROUGH_BURST", "10", (c) => c.snapshotCache.readThroughBurst, 10],
    ["READTHROUGH_BURST", "0.5", (c) => c.snapshotCache.readThroughBurst, 100],
    ["PAST_DUE_GRACE_DAYS", "2", (c) => c.lifecycle.pastDueGraceMs, 2 * DAY_MS],
    ["PAST_DUE_GRACE_DAYS", "0", (c) => c.lifecycle.pastDueGraceMs, 0],
    ["PAST_DUE_GRACE_DAYS", "0.5", (c) => c.lifecycle.pastDueGraceMs, DAY_MS / 2],
    ["PAST_DUE_GRACE_DAYS", "", (c) => c.lifecycle.pastDueGraceMs, 7 * DAY_MS],
    ["GRANT_MAX_LIFETIME_DAYS", "7", (c) => c.grants.maxLifetimeMs, 7 * DAY_MS],
    ["GRANT_MAX_LIFETIME_DAYS", "1.5", (c) => c.grants.maxLifetimeMs, 1.5 * DAY_MS],
    ["GRANT_MAX_LIFETIME_DAYS", "0", (c) => c.grants.maxLifetimeMs, 90 * DAY_MS],
    ["SCHEDULED_MAX_CHANGES", "2", (c) => c.scheduled.maxChanges, 2],
    ["SCHEDULED_MAX_CHANGES", "many", (c) => c.scheduled.maxChanges, 100],
    ["AUDIT_RETENTION_DAYS", "30", (c) => c.retention.auditMs, 30 * DAY_MS],
    ["AUDIT_RETENTION_DAYS", "0", (c) => c.retention.auditMs, 400 * DAY_MS],
    ["HISTORY_RETENTION_DAYS", "90", (c) => c.retention.historyMs, 90 * DAY_MS],
    ["HISTORY_RETENTION_DAYS", "forever", (c) => c.retention.historyMs, 400 * DAY_MS],
    ["USAGE_RETENTION_DAYS", "120", (c) => c.retention.usageMs, 120 * DAY_MS],
    ["READYZ_TIMEOUT_MS", "5", (c) => c.readyz.timeoutMs, 5],
    ["READYZ_TIMEOUT_MS", "0", (c) => c.readyz.timeoutMs, 2_000],
    ["READYZ_TIMEOUT_MS", "fast", (c) => c.readyz.timeoutMs, 2_000],
    ["API_KEY_STALE_IF_ERROR_MS", "3600000", (c) => c.apiKeys.staleIfErrorMs, 3_600_000],
    ["API_KEY_STALE_IF_ERROR_MS", "0", (c) => c.apiKeys.staleIfErrorMs, 0],
    ["API_KEY_STALE_IF_ERROR_MS", "a day", (c) => c.apiKeys.staleIfErrorMs, DAY_MS],
  ];
  it.each(numbers)("%s = %j", (name, value, read, expected) => {
    expect(read(of({ [name]: value }))).toBe(expected);
  });

  it("logs a PAST_DUE_GRACE_DAYS that is not a non-negative number, and keeps the default", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(of({ PAST_DUE_GRACE_DAYS: "-1" }).lifecycle.pastDueGraceMs).toBe(7 * DAY_MS);
    expect(of({ PAST_DUE_GRACE_DAYS: "a week" }).lifecycle.pastDueGraceMs).toBe(7 * DAY_MS);
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it("reads strings: empty is unset; the Stripe secrets are comma-separated", () => {
    expect(of({ TOKEN_ISSUER: "" }).tokens.issuer).toBe("tollgate");
    expect(of({ TOKEN_ISSUER: "https://tollgate.example" }).tokens.issuer).toBe("https://tollgate.example");
    expect(of({ OPERATOR_JWKS_URL: "" }).operatorJwt.jwksUrl).toBeUndefined();
    expect(of({ STRIPE_WEBHOOK_SECRET: " whsec_a, whsec_b,," }).stripe.webhookSecrets).toEqual(["whsec_a", "whsec_b"]);
    expect(of({ DO_JURISDICTIONS: "on" }).doJurisdictions).toBe(true);
    expect(of({ DO_JURISDICTIONS: "yes" }).doJurisdictions).toBe(false);
  });

  it("the API key checksum secrets: comma-separated; a default in development only", () => {
    expect(of({ API_KEY_CHECKSUM_SECRET: " new, old ," }).apiKeys.checksumSecrets).toEqual(["new", "old"]);
    expect(of({ ENVIRONMENT: "development" }).apiKeys.checksumSecrets).toEqual([DEVELOPMENT_CHECKSUM_SECRET]);
    expect(of({ ENVIRONMENT: "development", API_KEY_CHECKSUM_SECRET: "s" }).apiKeys.checksumSecrets).toEqual(["s"]);
    for (const environment of ["staging", "production", undefined])
      expect(of({ ENVIRONMENT: environment }).apiKeys.checksumSecrets).toEqual([]);
  });

  it("the console's session secret: 32 characters at least; a default in development only", () => {
    const long = "s".repeat(32);
    expect(of({ SESSION_SECRET: long, ENVIRONMENT: "production" }).ui.sessionSecret).toBe(long);
    expect(of({ SESSION_SECRET: "short", ENVIRONMENT: "production" }).ui.sessionSecret).toBeUndefined();
    expect(of({ ENVIRONMENT: "development" }).ui.sessionSecret).toBe(DEVELOPMENT_SESSION_SECRET);
    for (const environment of ["staging", "production", undefined])
      expect(of({ ENVIRONMENT: environment }).ui.sessionSecret).toBeUndefined();
  });

  it("keeps only portal settings that load nothing from elsewhere and cannot break the CSP", () => {
    const portal = of({
      PORTAL_FRAME_ANCESTORS: "https://app.example.com, https://x.test:8443, 'unsafe-inline', https://a.test/path",
      PORTAL_ACCENT_COLOR: "red;}body{",
      PORTAL_LOGO_URL: "https://cdn.example.com/logo.png",
      PORTAL_UPGRADE_URL: "javascript:alert(1)",
    }).ui.portal;
    expect(portal).toMatchObject({
      frameAncestors: ["https://app.example.com", "https://x.test:8443"],
      accentColor: "#3355cc",
      logoUrl: undefined,
      upgradeUrl: undefined,
    });
    const ok = of({
      PORTAL_LOGO_URL: "/logo.svg",
      PORTAL_ACCENT_COLOR: "#0a7",
      PORTAL_UPGRADE_URL: "https://a.test/u",
    });
    expect(ok.ui.portal).toMatchObject({ logoUrl: "/logo.svg", accentColor: "#0a7", upgradeUrl: "https://a.test/u" });
    expect(of({ PORTAL_LOGO_URL: "//evil.test/x.png" }).ui.portal.logoUrl).toBeUndefined();
  });

  it("honours BENCH_INSTRUMENT only in the development environment", () => {
    expect(of({ BENCH_INSTRUMENT: "on", ENVIRONMENT: "development" }).bench).toBe(true);
    expect(of({ BENCH_INSTRUMENT: "on", ENVIRONMENT: "staging" }).bench).toBe(false);
    expect(of({ BENCH_INSTRUMENT: "on" }).bench).toBe(false);
    expect(of({ ENVIRONMENT: "development" }).bench).toBe(false);
  });

  it("never fails, whatever the vars hold", () => {
    const odd = { SNAPSHOT_CACHE_TTL_MS: {}, PAST_DUE_GRACE_DAYS: [], TOKEN_ISSUER: 7, ENVIRONMENT: null };
    vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(() => of(odd)).not.toThrow();
  });

  it("parses an env object once, and never lends its config to another", () => {
    const first = { ...env, SCHEDULED_MAX_CHANGES: "2" } as Cloudflare.Env;
    expect(configOf(first)).toBe(configOf(first));
    expect(configOf({ ...first, SCHEDULED_MAX_CHANGES: "3" }).scheduled.maxChanges).toBe(3);
    expect(configOf(first).scheduled.maxChanges).toBe(2);
    expect(configOf(env).scheduled.maxChanges).toBe(100);
  });
});
