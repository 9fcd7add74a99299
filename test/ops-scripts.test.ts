// The pure parts of the operations scripts (scripts/lib): arguments, targets, deploy checks, size report.
import { describe, expect, it } from "vitest";
import { describeProblem } from "../scripts/lib/admin-client.mjs";
import { formatApplyResult } from "../scripts/lib/catalog-report.mjs";
import { LOCAL_URL, parseCli, parseDotenv, resolveTarget, UsageError } from "../scripts/lib/cli.mjs";
import { missingSecrets, placeholdersIn, SIZE_LIMITS, sizeReport } from "../scripts/lib/deploy-report.mjs";

describe("parseCli", () => {
  const spec = { flags: ["dry-run", "allow-destructive"], options: ["env", "limit"] };
  it("reads positionals, flags and options (both --x v and --x=v)", () => {
    expect(parseCli(["apply", "cat.json", "--env", "staging", "--allow-destructive", "--limit=20"], spec)).toEqual({
      positionals: ["apply", "cat.json"],
      options: { env: "staging", allowDestructive: true, limit: "20" },
    });
  });
  it("refuses unknown options and missing values, so a typo never changes what runs", () => {
    expect(() => parseCli(["--alow-destructive"], spec)).toThrow(UsageError);
    expect(() => parseCli(["--env"], spec)).toThrow(/needs a value/);
    expect(() => parseCli(["--env", "--dry-run"], spec)).toThrow(/needs a value/);
    expect(() => parseCli(["--dry-run=yes"], spec)).toThrow(/takes no value/);
  });
});

describe("resolveTarget", () => {
  it("local: 127.0.0.1:8787 and the bootstrap key from .dev.vars", () => {
    const devVars = parseDotenv('# local\nADMIN_BOOTSTRAP_KEY="tg_local"\nOTHER=1\n');
    expect(resolveTarget({}, {}, devVars)).toEqual({ name: "local", url: LOCAL_URL, key: "tg_local" });
  });
  it("staging/production: TOLLGATE_URL and TOLLGATE_ADMIN_KEY; flags win; a missing one is a usage error", () => {
    const env = { TOLLGATE_URL: "https://tollgate-staging.example.workers.dev/", TOLLGATE_ADMIN_KEY: "tg_admin" };
    expect(resolveTarget({ env: "staging" }, env)).toEqual({
      name: "staging",
      url: "https://tollgate-staging.example.workers.dev",
      key: "tg_admin",
    });
    expect(resolveTarget({ env: "production", key: "tg_other" }, env).key).toBe("tg_other");
    expect(() => resolveTarget({ env: "production" }, {})).toThrow(/TOLLGATE_URL/);
    expect(() => resolveTarget({ env: "staging" }, { TOLLGATE_URL: "https://x" })).toThrow(/TOLLGATE_ADMIN_KEY/);
    expect(() => resolveTarget({ env: "prod" }, env)).toThrow(/one of local, staging, production/);
  });
});

describe("deploy checks", () => {
  it("finds every placeholder left in an environment", () => {
    const config = {
      kv_namespaces: [{ binding: "SNAPSHOTS", id: "REPLACE_WITH_STAGING_KV_NAMESPACE_ID" }],
      d1_databases: [{ binding: "DB", database_id: "6f0c5f55-0000-4000-8000-000000000000" }],
      vars: {
        ENVIRONMENT: "staging",
        OPERATOR_JWKS_URL: "https://REPLACE_WITH_TEAM.cloudflareaccess.com/cdn-cgi/access/certs",
      },
    };
    expect(placeholdersIn(config)).toEqual(["kv_namespaces.SNAPSHOTS.id", "vars.OPERATOR_JWKS_URL"]);
  });
  it("names the required secrets that `wrangler secret list` lacks", () => {
    const listed = [{ name: "TOKEN_SIGNING_KEYS", type: "secret_text" }];
    expect(missingSecrets(["TOKEN_SIGNING_KEYS", "STRIPE_WEBHOOK_SECRET"], listed)).toEqual(["STRIPE_WEBHOOK_SECRET"]);
    expect(missingSecrets(["A"], "not json")).toEqual(["A"]);
  });
  it("reports the bundle against the size limits", () => {
    const small = sizeReport([{ name: "index.js", raw: 1_200_000, gzip: 230_000 }]);
    expect(small).toMatchObject({ ok: true, warn: false });
    expect(small.lines.join("\n")).toContain("7.3% of 3 MB (Workers Free), 2.2% of 10 MB (Workers Paid)");
    expect(sizeReport([{ name: "index.js", raw: 20e6, gzip: SIZE_LIMITS.gzipFree + 1 }])).toMatchObject({
      ok: true,
      warn: true,
    });
    const huge = sizeReport([{ name: "index.js", raw: 40e6, gzip: SIZE_LIMITS.gzipPaid + 1 }]);
    expect(huge.ok).toBe(false);
    expect(huge.lines.at(-1)).toContain("TOO LARGE");
  });
});

describe("describeProblem", () => {
  it("prints a problem+json with its offending fields and request id", () => {
    const text = describeProblem(
      400,
      {
        title: "Request validation failed",
        detail: "1 invalid field(s)",
        errors: [{ path: "json.features.x.type", message: "Invalid option" }],
        requestId: "r1",
      },
      "PUT",
      "/admin/v1/catalog",
    );
    expect(text).toBe(
      "PUT /admin/v1/catalog failed: 400 Request validation failed\n  1 invalid field(s)\n  - json.features.x.type: Invalid option\n  (request id r1)",
    );
  });
});

describe("formatApplyResult", () => {
  const where = { file: "catalog.json", target: "http://127.0.0.1:8787" };
  const applied = { features: 9, plans: 4, regionGroups: 2, prices: 2 };
  it("says what was applied and the catalog revision it made", () => {
    expect(formatApplyResult({ applied, catalogRev: 12, version: "0.12" }, where)).toBe(
      'Applied catalog.json to http://127.0.0.1:8787: 9 features, 4 plans, 2 region groups, 2 price mappings. Catalog revision 12 (minVersion "0.12"); checks everywhere see it within CATALOG_CACHE_TTL_MS of KV having it.',
    );
    expect(formatApplyResult({ applied }, where)).toBe(
      "Applied catalog.json to http://127.0.0.1:8787: 9 features, 4 plans, 2 region groups, 2 price mappings.",
    );
  });
});
