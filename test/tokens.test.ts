// Signed entitlement tokens, the JWKS and decision assertions, verified offline with jose and the
// JWKS response alone (exactly what a desktop app or an origin service does).
import { env } from "cloudflare:workers";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  generateKeyPair,
  type JSONWebKeySet,
  jwtVerify,
  SignJWT,
} from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { testFeatureKeys } from "./fixtures/catalog";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { DAY_MS, HOUR_MS, iso, MINUTE_MS, T0 } from "./helpers/time";
import { BOOTSTRAP, postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;
let jwks: JSONWebKeySet;

const ENTITLEMENTS_TYP = "tollgate-entitlements+jwt";
const DECISION_TYP = "tollgate-decision+jwt";
const at = (ms: number) => ({ currentDate: new Date(ms) });

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check", "sign"]);
  jwks = (await w.call("GET", "/.well-known/jwks.json")).json;
});

const mint = (body: Record<string, unknown>, opts: { key?: string; cf?: Record<string, unknown> } = {}) =>
  w.call("POST", "/v1/tokens", { key: opts.key ?? key, body, cf: opts.cf });

/** Offline verification: nothing but the JWKS document and jose. */
const verify = (token: string, opts: { audience?: string; typ?: string; now?: number } = {}) =>
  jwtVerify(token, createLocalJWKSet(jwks), {
    issuer: "tollgate",
    audience: opts.audience ?? "tollgate:entitlements",
    typ: opts.typ ?? ENTITLEMENTS_TYP,
    ...at(opts.now ?? T0),
  });

describe("GET /.well-known/jwks.json", () => {
  it("publishes every configured public key, cacheably, and never a private member", async () => {
    const res = await w.call("GET", "/.well-known/jwks.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    expect(res.json.keys.map((k: { kid: string; alg: string }) => [k.kid, k.alg])).toEqual([
      ["test-ed25519-1", "EdDSA"],
      ["test-es256-2", "ES256"],
    ]);
    for (const k of res.json.keys)
      expect(Object.keys(k).sort()).toEqual(
        k.kty === "EC" ? ["alg", "crv", "kid", "kty", "use", "x", "y"] : ["alg", "crv", "kid", "kty", "use", "x"],
      );
    expect(res.text).not.toMatch(/"d"/);
  });

  it("is a 503 problem when no signing key is configured", async () => {
    const bare = { ...env, TOKEN_SIGNING_KEYS: undefined } as unknown as Cloudflare.Env;
    const res = await w.call("GET", "/.well-known/jwks.json", { env: bare });
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    expect((await w.call("POST", "/v1/tokens", { key, body: { customerId: c.id }, env: bare })).status).toBe(503);
  });
});

describe("POST /v1/tokens", () => {
  it("signs the customer's evaluated entitlements; jose verifies it offline with the JWKS alone", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const res = await mint({ customerId: c.id, role: "admin", country: "de" });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      kid: "test-ed25519-1",
      issuer: "tollgate",
      audience: "tollgate:entitlements",
      issuedAt: iso(T0),
      expiresAt: iso(T0 + HOUR_MS),
      snapshotVersion: c.snapshotVersion,
    });
    expect(decodeProtectedHeader(res.json.token)).toEqual({
      alg: "EdDSA",
      kid: "test-ed25519-1",
      typ: ENTITLEMENTS_TYP,
    });
    const { payload } = await verify(res.json.token);
    expect(payload).toMatchObject({
      iss: "tollgate",
      sub: c.id,
      aud: "tollgate:entitlements",
      iat: T0 / 1000,
      exp: T0 / 1000 + 3600,
      snapshotVersion: c.snapshotVersion,
      context: { role: "admin", country: "DE" },
    });
    expect(typeof payload.jti).toBe("string");
    const ent = payload.entitlements as Record<string, Record<string, unknown>>;
    expect(ent.sso).toEqual({ type: "boolean", enabled: true, expiresAt: null });
    expect(ent.eu_hosting).toMatchObject({ enabled: true });
    expect(ent.api_calls).toEqual({
      type: "metered",
      enabled: true,
      limit: 1000,
      reset: "month",
      resetsAt: expect.any(String),
      expiresAt: null,
    });
    expect(ent.storage_gb).toMatchObject({
      type: "metered",
      enabled: true,
      limit: 50,
      reset: "day",
      resetsAt: "2026-03-11T00:00:00.000Z",
    });
    expect(ent.theme).toEqual({ type: "config", enabled: true, value: { name: "pro", dark: true }, expiresAt: null });
    expect(ent.max_file_size_mb).toMatchObject({ type: "config", value: 100 });
    expect(Object.keys(ent).sort()).toEqual(testFeatureKeys);
  });

  it("evaluates in the token's context: role and geo rules, with the edge country as default", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const { payload } = await verify(
      (await mint({ customerId: c.id, role: "viewer" }, { cf: { country: "US" } })).json.token,
    );
    const ent = payload.entitlements as Record<string, Record<string, unknown>>;
    expect(payload.context).toEqual({ role: "viewer", country: "US" });
    expect(ent.sso).toEqual({ type: "boolean", enabled: false, reason: "role_denied", expiresAt: null });
    expect(ent.eu_hosting).toMatchObject({ enabled: false, reason: "region_blocked" });
    const free = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const f = (await verify((await mint({ customerId: free.id })).json.token)).payload.entitlements as Record<
      string,
      Record<string, unknown>
    >;
    expect(f.sso).toEqual({ type: "boolean", enabled: false, reason: "not_entitled", expiresAt: null });
  });

  it("never outlives the earliest expiry among what it grants, and honours a shorter ttl", async () => {
    const trialEnd = T0 + 10 * MINUTE_MS + 500; // rounds DOWN to whole seconds
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(trialEnd) }],
    });
    const res = await mint({ customerId: c.id });
    expect(res.json.expiresAt).toBe(iso(T0 + 10 * MINUTE_MS));
    const { payload } = await verify(res.json.token);
    expect(payload.exp).toBe((T0 + 10 * MINUTE_MS) / 1000);
    expect((payload.entitlements as any).audit_export).toMatchObject({ enabled: true, expiresAt: iso(trialEnd) });
    expect((await mint({ customerId: c.id, ttlSeconds: 120 })).json.expiresAt).toBe(iso(T0 + 120_000));
    // What it does not grant does not bound it: a grant that starts later leaves the ttl alone.
    const later = await createCustomer(w, {
      id: uid(),
      // (An add-on now: a base plan now would be a second base plan next to Pro.)
      subscriptions: [{ planId: "pro", startedAt: iso(T0 + DAY_MS) }, { planId: "extra-calls" }],
    });
    const l = await mint({ customerId: later.id });
    expect(l.json.expiresAt).toBe(iso(T0 + HOUR_MS));
    expect(((await verify(l.json.token)).payload.entitlements as any).sso).toMatchObject({
      enabled: false,
      expiresAt: iso(T0 + DAY_MS),
    });
  });

  it("limits the token to the requested features and audience; unknown features are data, not errors", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const res = await mint({
      customerId: c.id,
      features: ["audit_export", "teleportation", "__proto__"],
      audience: "desktop-app",
    });
    expect(res.json.audience).toBe("desktop-app");
    const { payload } = await verify(res.json.token, { audience: "desktop-app" });
    expect(Object.keys(payload.entitlements as object).sort()).toEqual(["__proto__", "audit_export", "teleportation"]);
    expect((payload.entitlements as any).teleportation).toEqual({
      enabled: false,
      reason: "unknown_feature",
      expiresAt: null,
    });
  });

  it("rejects a tampered token, a wrong audience, an expired token and an unknown kid", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const { token } = (await mint({ customerId: c.id, ttlSeconds: 600 })).json;
    await expect(verify(token)).resolves.toBeTruthy();
    // Tampered: grant SSO in the payload, keep the signature.
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/")));
    claims.entitlements.sso = { type: "boolean", enabled: true, expiresAt: null };
    const forged = `${h}.${btoa(JSON.stringify(claims)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}.${s}`;
    await expect(verify(forged)).rejects.toMatchObject({ code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
    // Wrong audience.
    await expect(verify(token, { audience: "another-service" })).rejects.toMatchObject({
      code: "ERR_JWT_CLAIM_VALIDATION_FAILED",
      claim: "aud",
    });
    // Expired (the injected clock of the verifier moves past exp; no sleeping).
    await expect(verify(token, { now: T0 + 599_000 })).resolves.toBeTruthy();
    await expect(verify(token, { now: T0 + 600_000 })).rejects.toMatchObject({ code: "ERR_JWT_EXPIRED" });
    // Unknown kid: a key Tollgate never published.
    const rogue = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const sign = (kid: string, k: CryptoKey) =>
      new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid, typ: ENTITLEMENTS_TYP }).sign(k);
    await expect(verify(await sign("rogue-1", rogue.privateKey))).rejects.toMatchObject({
      code: "ERR_JWKS_NO_MATCHING_KEY",
    });
    // A known kid on someone else's key is a bad signature, not a match.
    await expect(verify(await sign("test-ed25519-1", rogue.privateKey))).rejects.toMatchObject({
      code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    });
    // The assertion type is not an entitlement token (explicit typing).
    await expect(verify(token, { typ: DECISION_TYP })).rejects.toMatchObject({
      code: "ERR_JWT_CLAIM_VALIDATION_FAILED",
      claim: "typ",
    });
  });

  it("rotation: tokens signed by the second key still verify while it is published", async () => {
    const keys = JSON.parse(env.TOKEN_SIGNING_KEYS as string) as object[];
    const rotated = { ...env, TOKEN_SIGNING_KEYS: JSON.stringify([...keys].reverse()) } as unknown as Cloudflare.Env;
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const res = await w.call("POST", "/v1/tokens", { key, body: { customerId: c.id }, env: rotated });
    expect(res.json.kid).toBe("test-es256-2");
    expect(decodeProtectedHeader(res.json.token)).toMatchObject({ alg: "ES256", kid: "test-es256-2" });
    expect((await verify(res.json.token)).payload.sub).toBe(c.id); // the JWKS fetched before the rotation
    // The published keys are the public halves of the secret's private keys, nothing more.
    const publicHalf = ({ d: _d, ...rest }: Record<string, string>, alg: string) => ({ ...rest, alg, use: "sig" });
    expect(jwks.keys).toEqual([
      publicHalf(keys[0] as Record<string, string>, "EdDSA"),
      publicHalf(keys[1] as Record<string, string>, "ES256"),
    ]);
  });

  const proCustomer = async () => (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;

  it("needs the sign scope (403)", async () => {
    for (const scopes of [["usage"], ["check"]])
      expect((await mint({ customerId: await proCustomer() }, { key: await createKey(w, scopes) })).status).toBe(403);
  });

  it("a customer-bound key mints for its customer, and gets a 403 for another one", async () => {
    const [a, b] = [await proCustomer(), await proCustomer()];
    const bound = await createKey(w, ["check", "sign"], a);
    expect((await mint({ customerId: a }, { key: bound })).status).toBe(200);
    const other = await mint({ customerId: b }, { key: bound });
    expect(other.status).toBe(403);
    expect(other.json.type).toBe("urn:tollgate:problem:forbidden");
  });

  it("needs a key at all (401)", async () => {
    expect((await w.call("POST", "/v1/tokens", { body: { customerId: await proCustomer() } })).status).toBe(401);
  });

  it("an unknown customer is a 404 problem", async () => {
    const nobody = await mint({ customerId: uid("nobody") });
    expect(nobody.status).toBe(404);
    expect(nobody.headers.get("content-type")).toBe("application/problem+json");
  });

  it("a ttl of at most a day is honoured, and a longer one is a 400 naming ttlSeconds", async () => {
    const a = await proCustomer();
    const tooLong = await mint({ customerId: a, ttlSeconds: 86_401 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.errors[0].path).toBe("json.ttlSeconds");
    expect((await mint({ customerId: a, ttlSeconds: 86_400 }, { key: BOOTSTRAP })).json.expiresAt).toBe(
      iso(T0 + DAY_MS),
    );
  });
});

describe("decision assertions (POST /v1/check with assert: true)", () => {
  it("returns a short-lived, audience-bound JWS of that one decision, verifiable with the JWKS", async () => {
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const plain = await postCheck(w, key, { customerId: c.id, feature: "sso", role: "admin" });
    expect(plain.json.assertion).toBeUndefined();
    const res = await postCheck(w, key, {
      customerId: c.id,
      feature: "sso",
      role: "admin",
      assert: true,
      assertAudience: "https://reports.example",
    });
    expect(res.json).toMatchObject({ allowed: true, reason: "ok", assertion: expect.any(String) });
    const { payload, protectedHeader } = await verify(res.json.assertion, {
      audience: "https://reports.example",
      typ: DECISION_TYP,
    });
    expect(protectedHeader).toMatchObject({ alg: "EdDSA", kid: "test-ed25519-1" });
    expect(payload).toMatchObject({
      iss: "tollgate",
      sub: c.id,
      iat: T0 / 1000,
      exp: T0 / 1000 + 60,
      context: { role: "admin" },
    });
    expect(payload.decision).toEqual({
      allowed: true,
      reason: "ok",
      feature: "sso",
      type: "boolean",
      expiresAt: null,
      snapshotVersion: c.snapshotVersion,
      version: c.version,
    });
    await expect(verify(res.json.assertion, { typ: DECISION_TYP })).rejects.toMatchObject({ claim: "aud" });
    await expect(verify(res.json.assertion, { audience: "https://reports.example" })).rejects.toMatchObject({
      claim: "typ",
    });
    await expect(
      verify(res.json.assertion, { audience: "https://reports.example", typ: DECISION_TYP, now: T0 + MINUTE_MS }),
    ).rejects.toMatchObject({ code: "ERR_JWT_EXPIRED" });
  });

  it("asserts denials too, and never for longer than the decision holds", async () => {
    const c = await createCustomer(w, {
      id: uid(),
      subscriptions: [{ planId: "pro", status: "trialing", trialEnd: iso(T0 + 20_000) }],
    });
    const res = await postCheck(w, key, { customerId: c.id, feature: "audit_export", assert: true });
    const { payload } = await verify(res.json.assertion, { audience: "tollgate:decision", typ: DECISION_TYP });
    expect(payload.exp).toBe(T0 / 1000 + 20);
    const denied = await postCheck(w, key, { customerId: c.id, feature: "eu_hosting", country: "US", assert: true });
    const d = await verify(denied.json.assertion, { audience: "tollgate:decision", typ: DECISION_TYP });
    expect(d.payload.decision).toMatchObject({ allowed: false, reason: "region_blocked", feature: "eu_hosting" });
    expect(d.payload.context).toEqual({ country: "US" });
  });
});
