import {
  base64url,
  type CryptoKey,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createOperatorVerifier,
  extractOperatorToken,
  OPERATOR_ROLES,
  type OperatorJwtConfig,
} from "../src/auth/operator-jwt";

const ISSUER = "https://tollgate-test.cloudflareaccess.com";
const AUDIENCE = "tollgate-admin-aud";
const SECRET = "local-dev-secret-that-is-long-enough-0123456789";
const localConfig: OperatorJwtConfig = { issuer: ISSUER, audience: AUDIENCE, localSecret: SECRET };
const jwksConfig: OperatorJwtConfig = {
  issuer: ISSUER,
  audience: AUDIENCE,
  jwksUrl: "https://tollgate-test.cloudflareaccess.com/cdn-cgi/access/certs",
};
const nowSec = () => Math.floor(Date.now() / 1000);

interface Overrides {
  iss?: string;
  aud?: string | string[];
  exp?: number;
  claims?: JWTPayload;
  sub?: string | null;
}
function build(o: Overrides, alg: string, kid?: string): SignJWT {
  const jwt = new SignJWT({ tollgate_role: "admin", email: "ops@example.com", ...o.claims })
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setIssuer(o.iss ?? ISSUER)
    .setAudience(o.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(o.exp ?? nowSec() + 600);
  return o.sub === null ? jwt : jwt.setSubject(o.sub ?? "op_123");
}
const hs256 = (o: Overrides = {}, secret = SECRET) => build(o, "HS256").sign(new TextEncoder().encode(secret));

let privateKey: CryptoKey;
let otherPrivateKey: CryptoKey;
let publicJwk: JWK;
const es256 = (o: Overrides = {}, key = privateKey, kid = "key-1") => build(o, "ES256", kid).sign(key);
const jwksVerifier = () => createOperatorVerifier(jwksConfig, { jwks: createLocalJWKSet({ keys: [publicJwk] }) });

beforeAll(async () => {
  const pair = await generateKeyPair("ES256");
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "key-1", alg: "ES256", use: "sig" };
  otherPrivateKey = (await generateKeyPair("ES256")).privateKey;
});

describe("local HS256 verifier", () => {
  const verify = createOperatorVerifier(localConfig);

  it.each(OPERATOR_ROLES)("accepts a valid token with role %s", async (role) => {
    const result = await verify(await hs256({ claims: { tollgate_role: role } }));
    expect(result).toEqual({ ok: true, operator: { id: "op_123", email: "ops@example.com", role } });
  });

  it("picks the highest role from an array, ignoring unknown ones", async () => {
    const token = await hs256({ claims: { tollgate_role: ["viewer", "superuser", "approver", "support"] } });
    expect(await verify(token)).toMatchObject({ ok: true, operator: { role: "approver" } });
  });

  it("rejects unknown roles with no_role", async () => {
    expect(await verify(await hs256({ claims: { tollgate_role: "superuser" } }))).toEqual({
      ok: false,
      reason: "no_role",
    });
    expect(await verify(await hs256({ claims: { tollgate_role: ["root", 3] } }))).toEqual({
      ok: false,
      reason: "no_role",
    });
    expect(await verify(await hs256({ claims: { tollgate_role: undefined } }))).toEqual({
      ok: false,
      reason: "no_role",
    });
  });

  it("reads the role from a configured claim", async () => {
    const custom = createOperatorVerifier({ ...localConfig, roleClaim: "groups" });
    expect(await custom(await hs256({ claims: { groups: ["support"] } }))).toMatchObject({
      ok: true,
      operator: { role: "support" },
    });
    expect(await custom(await hs256())).toEqual({ ok: false, reason: "no_role" }); // tollgate_role is not read any more
  });

  it("omits a missing or malformed email and requires a subject", async () => {
    expect(await verify(await hs256({ claims: { email: undefined } }))).toEqual({
      ok: true,
      operator: { id: "op_123", role: "admin" },
    });
    expect(await verify(await hs256({ claims: { email: "not an email" } }))).toEqual({
      ok: true,
      operator: { id: "op_123", role: "admin" },
    });
    expect(await verify(await hs256({ sub: null }))).toEqual({ ok: false, reason: "invalid_token" });
  });

  it("rejects an expired token (beyond the 30s clock tolerance) but accepts one within it", async () => {
    expect(await verify(await hs256({ exp: nowSec() - 120 }))).toEqual({ ok: false, reason: "expired" });
    expect(await verify(await hs256({ exp: nowSec() - 5 }))).toMatchObject({ ok: true });
  });

  it("rejects a token without exp", async () => {
    const token = await new SignJWT({ tollgate_role: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject("op_1")
      .sign(new TextEncoder().encode(SECRET));
    expect(await verify(token)).toEqual({ ok: false, reason: "invalid_token" });
  });

  it("rejects a wrong issuer or audience", async () => {
    expect(await verify(await hs256({ iss: "https://evil.example" }))).toEqual({ ok: false, reason: "wrong_issuer" });
    expect(await verify(await hs256({ aud: "some-other-app" }))).toEqual({ ok: false, reason: "wrong_audience" });
    expect(await verify(await hs256({ aud: ["a", AUDIENCE] }))).toMatchObject({ ok: true });
  });

  it("rejects a token MACed with another secret", async () => {
    expect(await verify(await hs256({}, "another-secret-that-is-also-long-enough-000"))).toEqual({
      ok: false,
      reason: "invalid_token",
    });
  });

  it("rejects an ES256 token (local verifier accepts HS256 only)", async () => {
    expect(await verify(await es256())).toEqual({ ok: false, reason: "invalid_token" });
  });

  it("rejects garbage and reports a missing token", async () => {
    for (const junk of ["abc", "a.b.c", "tg_live_123", "x".repeat(20_000)])
      expect(await verify(junk)).toEqual({ ok: false, reason: "invalid_token" });
    expect(await verify(null)).toEqual({ ok: false, reason: "missing_token" });
    expect(await verify("")).toEqual({ ok: false, reason: "missing_token" });
  });
});

describe("JWKS verifier", () => {
  it("accepts a valid ES256 token signed by a published key", async () => {
    expect(await jwksVerifier()(await es256({ claims: { tollgate_role: "support" } }))).toEqual({
      ok: true,
      operator: { id: "op_123", email: "ops@example.com", role: "support" },
    });
  });

  it("rejects expired, wrong issuer, wrong audience", async () => {
    const verify = jwksVerifier();
    expect(await verify(await es256({ exp: nowSec() - 3600 }))).toEqual({ ok: false, reason: "expired" });
    expect(await verify(await es256({ iss: "https://other.cloudflareaccess.com" }))).toEqual({
      ok: false,
      reason: "wrong_issuer",
    });
    expect(await verify(await es256({ aud: "other-aud" }))).toEqual({ ok: false, reason: "wrong_audience" });
  });

  it("rejects a token signed with a key that is not in the set (same kid, or unknown kid)", async () => {
    const verify = jwksVerifier();
    expect(await verify(await es256({}, otherPrivateKey, "key-1"))).toEqual({ ok: false, reason: "invalid_token" });
    expect(await verify(await es256({}, otherPrivateKey, "key-2"))).toEqual({ ok: false, reason: "invalid_token" });
  });

  it("rejects an unsigned token (alg: none), for both verifiers", async () => {
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: "op_123", exp: nowSec() + 600, tollgate_role: "admin" };
    for (const header of [{ alg: "none" }, { alg: "none", typ: "JWT" }, { alg: "None" }]) {
      const token = `${enc(header)}.${enc(claims)}.`;
      expect(await jwksVerifier()(token)).toEqual({ ok: false, reason: "invalid_token" });
      expect(await createOperatorVerifier(localConfig)(token)).toEqual({ ok: false, reason: "invalid_token" });
    }
  });

  it("rejects an HS256 token MACed with the public key (algorithm confusion)", async () => {
    // The classic attack: use the published key material as the HMAC secret and set alg to HS256.
    const publicKeyAsSecret = new TextEncoder().encode(JSON.stringify(publicJwk));
    const forged = await build({}, "HS256", "key-1").sign(publicKeyAsSecret);
    expect(await jwksVerifier()(forged)).toEqual({ ok: false, reason: "invalid_token" });
    // ...and an HS256 token that the local verifier would accept is refused by the JWKS verifier.
    expect(await jwksVerifier()(await hs256())).toEqual({ ok: false, reason: "invalid_token" });
  });
});

describe("configuration", () => {
  it("reports not_configured without a key source, with both, with a short secret or a non-https JWKS URL", async () => {
    const token = await hs256();
    const bad: OperatorJwtConfig[] = [
      { issuer: ISSUER, audience: AUDIENCE },
      { ...jwksConfig, localSecret: SECRET },
      { ...localConfig, localSecret: "short" },
      { ...jwksConfig, jwksUrl: "http://tollgate-test.cloudflareaccess.com/cdn-cgi/access/certs" },
      { ...jwksConfig, jwksUrl: "not a url" },
      { ...localConfig, issuer: "" },
      { ...localConfig, audience: "" },
    ];
    for (const config of bad)
      expect(await createOperatorVerifier(config)(token), JSON.stringify(config)).toEqual({
        ok: false,
        reason: "not_configured",
      });
  });

  it("still reports missing_token first", async () => {
    expect(await createOperatorVerifier({ issuer: ISSUER, audience: AUDIENCE })(null)).toEqual({
      ok: false,
      reason: "missing_token",
    });
  });
});

describe("extractOperatorToken", () => {
  const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJvcCJ9.c2ln";

  it("prefers Cf-Access-Jwt-Assertion over Authorization", () => {
    expect(
      extractOperatorToken(
        new Headers({ "Cf-Access-Jwt-Assertion": "access.jwt.here", Authorization: `Bearer ${jwt}` }),
      ),
    ).toBe("access.jwt.here");
  });

  it("reads a JWT-shaped bearer token", () => {
    expect(extractOperatorToken(new Headers({ Authorization: `Bearer ${jwt}` }))).toBe(jwt);
    expect(extractOperatorToken(new Headers({ Authorization: `bearer ${jwt}` }))).toBe(jwt);
  });

  it("ignores API keys and other non-JWT authorization values", () => {
    for (const value of [
      "Bearer tg_live_abc123",
      "Bearer tg_a.b.c",
      "Bearer notajwt",
      "Bearer a.b",
      "Bearer a.b.c.d",
      "Bearer a+b.c.d",
      "Basic dXNlcjpwYXNz",
      `Bearer ${jwt} extra`,
      "",
    ]) {
      expect(extractOperatorToken(new Headers({ Authorization: value })), value).toBeNull();
    }
    expect(extractOperatorToken(new Headers())).toBeNull();
  });
});
