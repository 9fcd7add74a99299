/**
 * Operator (human) authentication for the admin API: a JWT verified with jose.
 * Production: Cloudflare Access (or any IdP) publishing a JWKS. Local development: an HS256 secret.
 * Every outcome is a value; nothing a client sends can make this throw.
 */
import { createRemoteJWKSet, errors, type JWSAlgorithm, type JWTVerifyGetKey, jwtVerify } from "jose";
import { z } from "zod";

/** Ordered from least to most privileged: the index is the rank. */
export const OPERATOR_ROLES = ["viewer", "support", "approver", "admin"] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];
export interface Operator {
  id: string;
  email?: string;
  role: OperatorRole;
}
export interface OperatorJwtConfig {
  issuer: string;
  audience: string;
  /** Either a JWKS URL (e.g. Cloudflare Access: https://<team>.cloudflareaccess.com/cdn-cgi/access/certs) ... */
  jwksUrl?: string;
  /** ... or a local-development key: a symmetric secret (HS256). */
  localSecret?: string;
  /** The claim that carries the role (default "tollgate_role"); may be a string or an array of strings, the highest role wins. */
  roleClaim?: string;
}
export type OperatorAuthFailure =
  | "missing_token"
  | "invalid_token"
  | "expired"
  | "wrong_issuer"
  | "wrong_audience"
  | "no_role"
  | "not_configured";
export type OperatorAuthResult = { ok: true; operator: Operator } | { ok: false; reason: OperatorAuthFailure };
export interface OperatorVerifierOptions {
  /** Key set used instead of fetching `jwksUrl` (tests, or keys from elsewhere): e.g. jose `createLocalJWKSet`. */
  jwks?: JWTVerifyGetKey;
}

// RFC 8725 §2.1/§3.1: the verifier, never the token header, decides the algorithms. Each key source
// gets its own list, and the lists do not overlap: a JWKS verifier that also accepted HS256 could be
// fed a token MACed with the *public* key as the secret (algorithm confusion). "none" is never listed.
const JWKS_ALGORITHMS: JWSAlgorithm[] = ["RS256", "ES256", "EdDSA"];
const LOCAL_ALGORITHMS: JWSAlgorithm[] = ["HS256"];
const CLOCK_TOLERANCE_SECONDS = 30;
// RFC 7518 §3.2 / RFC 8725 §3.5: an HS256 key must be at least as long as the hash output (256 bits).
const MIN_SECRET_BYTES = 32;
// Tokens are parsed before they are authenticated; refuse absurd sizes up front.
const MAX_TOKEN_LENGTH = 16 * 1024;

// One remote key set per URL for the life of the isolate, so jose's key cache and fetch cooldown
// actually work across requests (a new set per request would refetch the JWKS every time).
const remoteKeySets = new Map<string, JWTVerifyGetKey>();
function remoteKeySet(jwksUrl: string): JWTVerifyGetKey | null {
  if (!URL.canParse(jwksUrl)) return null;
  const url = new URL(jwksUrl);
  if (url.protocol !== "https:") return null; // the keys are the trust anchor: never fetch them in clear
  let set = remoteKeySets.get(url.href);
  if (!set) {
    set = createRemoteJWKSet(url);
    remoteKeySets.set(url.href, set);
  }
  return set;
}

// RFC 8725 §3.10: the signature proves who issued the claims, not that they have the shape we use.
// Loose object: the role claim's name is configurable and is read (and filtered) separately below.
const claimsSchema = z.looseObject({
  sub: z.string().min(1).max(256), // RFC 7519 §4.1.2: unique within the issuer; becomes the operator id
  email: z.email().max(320).optional().catch(undefined), // informational: an odd value is dropped, not fatal
});

const isRole = (value: unknown): value is OperatorRole => OPERATOR_ROLES.includes(value as OperatorRole);

/** Maps every jose error class to a reason. Anything unknown (e.g. a network error while fetching the
 * JWKS) fails closed as invalid_token: the request is unauthenticated either way. */
function failureFor(err: unknown): OperatorAuthFailure {
  if (!(err instanceof errors.JOSEError)) return "invalid_token";
  const e = err as errors.AnyJOSEError;
  switch (e.code) {
    case "ERR_JWT_EXPIRED":
      return "expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      // jose checks claims only after the signature, so these are authentic tokens meant for someone else.
      return e.claim === "iss" ? "wrong_issuer" : e.claim === "aud" ? "wrong_audience" : "invalid_token"; // nbf, missing exp/sub
    case "ERR_JOSE_ALG_NOT_ALLOWED": // alg "none", or HS256 shown to the JWKS verifier
    case "ERR_JOSE_NOT_SUPPORTED":
    case "ERR_JWS_INVALID":
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
    case "ERR_JWT_INVALID":
    case "ERR_JWK_INVALID":
    case "ERR_JWKS_INVALID": // the JWKS endpoint served garbage
    case "ERR_JWKS_TIMEOUT": // the JWKS endpoint did not answer
    case "ERR_JWKS_NO_MATCHING_KEY": // unknown kid: signed by someone else, or keys rotated away
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
    case "ERR_JWE_INVALID": // JWE errors cannot come out of jwtVerify; listed for exhaustiveness
    case "ERR_JWE_DECRYPTION_FAILED":
      return "invalid_token";
    default: {
      const unreachable: never = e; // a new jose error code fails to compile here
      void unreachable;
      return "invalid_token"; // base JOSEError ("ERR_JOSE_GENERIC") at runtime
    }
  }
}

/** Builds the verifier once per configuration; `not_configured` is reported per call, never thrown. */
export function createOperatorVerifier(
  config: OperatorJwtConfig,
  opts: OperatorVerifierOptions = {},
): (token: string | null) => Promise<OperatorAuthResult> {
  const roleClaim = config.roleClaim ?? "tollgate_role";
  const wantsJwks = config.jwksUrl !== undefined || opts.jwks !== undefined;
  const secret = config.localSecret === undefined ? undefined : new TextEncoder().encode(config.localSecret);

  // Exactly one key source. Both at once is refused: a development secret left in a production
  // config would let whoever knows it mint admin tokens next to the real IdP.
  let key: JWTVerifyGetKey | Uint8Array | null = null;
  let algorithms = JWKS_ALGORITHMS;
  if (wantsJwks && secret === undefined) key = opts.jwks ?? remoteKeySet(config.jwksUrl ?? "");
  else if (!wantsJwks && secret !== undefined && secret.byteLength >= MIN_SECRET_BYTES)
    [key, algorithms] = [secret, LOCAL_ALGORITHMS];
  if (!config.issuer || !config.audience || !roleClaim) key = null;

  return async (token) => {
    if (token === null || token.trim() === "") return { ok: false, reason: "missing_token" };
    if (key === null) return { ok: false, reason: "not_configured" };
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: "invalid_token" };
    let payload: unknown;
    try {
      const verifyOptions = {
        algorithms,
        issuer: config.issuer,
        audience: config.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        // RFC 8725 §3.8/§3.9: issuer and audience are mandatory. RFC 7519 §4.1.4 makes "exp" optional;
        // a token that never expires is not acceptable for a human session, so we require it.
        requiredClaims: ["exp", "sub"],
      };
      // Two calls only because TypeScript cannot pick the jwtVerify overload for the union type.
      payload = (
        key instanceof Uint8Array
          ? await jwtVerify(token.trim(), key, verifyOptions)
          : await jwtVerify(token.trim(), key, verifyOptions)
      ).payload;
    } catch (err) {
      return { ok: false, reason: failureFor(err) };
    }
    const parsed = claimsSchema.safeParse(payload);
    if (!parsed.success) return { ok: false, reason: "invalid_token" };

    // Unknown roles are ignored (an IdP may carry roles for other apps); the highest known one wins.
    // Own properties only: a role claim named like an Object.prototype member must not resolve to it.
    const raw = Object.hasOwn(parsed.data, roleClaim) ? parsed.data[roleClaim] : undefined;
    const ranks = (Array.isArray(raw) ? raw : [raw]).filter(isRole).map((r) => OPERATOR_ROLES.indexOf(r));
    if (ranks.length === 0) return { ok: false, reason: "no_role" };
    const role = OPERATOR_ROLES[Math.max(...ranks)];
    if (!role) return { ok: false, reason: "no_role" };
    const operator: Operator = { id: parsed.data.sub, role };
    if (parsed.data.email !== undefined) operator.email = parsed.data.email;
    return { ok: true, operator };
  };
}

// Three base64url segments; the signature may be empty so that an unsigned token reaches the verifier
// and is logged as invalid_token rather than silently looking like "no credentials".
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Cf-Access-Jwt-Assertion first (set by Cloudflare Access), then `Authorization: Bearer <jwt>`, but only
 * when the bearer value is JWT-shaped: API keys ("tg_...") share that header and belong to another verifier. */
export function extractOperatorToken(headers: Headers): string | null {
  const access = headers.get("Cf-Access-Jwt-Assertion")?.trim();
  if (access) return access;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(headers.get("Authorization") ?? "");
  const value = match?.[1];
  if (value === undefined || value.startsWith("tg_") || !JWT_SHAPE.test(value)) return null;
  return value;
}
