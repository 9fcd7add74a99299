// Security review, lower-severity notes: the bootstrap key and HS256 operator tokens in production.
// Anyone holding OPERATOR_JWT_SECRET mints an operator token with any sub and role (four eyes would
// mean nothing), and the bootstrap key is an admin with every scope and no expiry that stands for
// nobody. With ENVIRONMENT "production" the worker refuses both (401), whatever the secrets say;
// staging and development keep them. scripts/deploy.mjs refuses a production deploy that would carry
// either, and warns for staging (the pure check: credentialProblems).
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { credentialProblems } from "../scripts/lib/deploy-report.mjs";
import { BOOTSTRAP, expectProblem, testWorker } from "./helpers";
import { operatorToken } from "./helpers/operators";

const inEnvironment = (ENVIRONMENT: string) => testWorker({ env: { ...env, ENVIRONMENT } as Cloudflare.Env });
let adminToken: string;

beforeAll(async () => {
  adminToken = await operatorToken("admin", "kim-production");
});

describe("production refuses HS256 operator tokens and the bootstrap key", () => {
  it("an HS256 operator token is a 401 in production", async () => {
    const w = inEnvironment("production");
    const res = expectProblem(await w.call("GET", "/admin/v1/customers?limit=1", { key: adminToken }), 401);
    expect(res.detail).toMatch(/Operator token rejected/);
  });

  it("the bootstrap key is a 401 in production, on the admin and the public API", async () => {
    const w = inEnvironment("production");
    expectProblem(await w.call("GET", "/admin/v1/customers?limit=1", { key: BOOTSTRAP }), 401);
    expectProblem(await w.call("GET", "/v1/check?customerId=nobody&feature=sso", { key: BOOTSTRAP }), 401);
  });

  it("staging and development still take both", async () => {
    for (const environment of ["staging", "development"]) {
      const w = inEnvironment(environment);
      expect((await w.call("GET", "/admin/v1/customers?limit=1", { key: adminToken })).status).toBe(200);
      expect((await w.call("GET", "/admin/v1/customers?limit=1", { key: BOOTSTRAP })).status).toBe(200);
    }
  });
});

describe("deploy: credentialProblems", () => {
  const config = (vars: Record<string, string> = {}, required: string[] = []) => ({ vars, secrets: { required } });
  const listed = [{ name: "TOKEN_SIGNING_KEYS" }, { name: "ADMIN_BOOTSTRAP_KEY" }, { name: "OPERATOR_JWT_SECRET" }];

  it("production: the bootstrap key or the HS256 secret, set as a secret, a var or a required secret, fails", () => {
    const fromSecrets = credentialProblems("production", config(), listed);
    expect(fromSecrets.map((p) => [p.level, p.name])).toEqual([
      ["fail", "ADMIN_BOOTSTRAP_KEY"],
      ["fail", "OPERATOR_JWT_SECRET"],
    ]);
    expect(fromSecrets[0]!.message).toMatch(/wrangler secret delete ADMIN_BOOTSTRAP_KEY --env production/);
    expect(fromSecrets[1]!.message).toMatch(/OPERATOR_JWKS_URL/);
    const fromConfig = credentialProblems("production", config({ OPERATOR_JWT_SECRET: "x" }, ["ADMIN_BOOTSTRAP_KEY"]));
    expect(fromConfig.map((p) => [p.level, p.name])).toEqual([
      ["fail", "ADMIN_BOOTSTRAP_KEY"],
      ["fail", "OPERATOR_JWT_SECRET"],
    ]);
    expect(fromConfig[1]!.message).toMatch(/\[env\.production\.vars\]/);
  });

  it("staging warns; nothing set is no problem", () => {
    expect(credentialProblems("staging", config(), listed).map((p) => p.level)).toEqual(["warn", "warn"]);
    expect(credentialProblems("production", config(), [{ name: "TOKEN_SIGNING_KEYS" }])).toEqual([]);
    expect(credentialProblems("production", config())).toEqual([]);
  });
});
