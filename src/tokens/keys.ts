// Signing keys for entitlement tokens and decision assertions, from the Worker secret
// TOKEN_SIGNING_KEYS: a JSON array of private JWKs (Ed25519 "OKP" or P-256 "EC"), each with a kid.
// The FIRST key signs; every key is published in the JWKS, so a rotation is: add the new key second,
// wait for JWKS caches to expire, move it first, and drop the old one once its tokens have expired.
// Parsed and imported once per isolate (per secret value); failures are values, never thrown.
import { importJWK } from "jose";
import { z } from "zod";

export type SigningAlg = "EdDSA" | "ES256";

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  key: CryptoKey;
}

/** What /.well-known/jwks.json publishes: public members only (never `d`). */
export interface PublicJwk {
  kty: "OKP" | "EC";
  crv: "Ed25519" | "P-256";
  x: string;
  y?: string;
  kid: string;
  alg: SigningAlg;
  use: "sig";
}

export interface KeyRing {
  /** The key that signs (the first in the secret). */
  signer: SigningKey;
  jwks: { keys: PublicJwk[] };
}

export type KeyRingResult =
  | { ok: true; ring: KeyRing }
  | { ok: false; reason: "not_configured" | "invalid_json" | "invalid_key" | "duplicate_kid"; detail: string };

const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);
const kid = z.string().min(1).max(128);
const privateJwk = z.discriminatedUnion("kty", [
  z.object({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: b64url, d: b64url, kid }),
  z.object({ kty: z.literal("EC"), crv: z.literal("P-256"), x: b64url, y: b64url, d: b64url, kid }),
]);
const keySet = z.union([z.array(privateJwk).min(1).max(10), privateJwk.transform((k) => [k])]);

let cached: { secret: string; result: Promise<KeyRingResult> } | null = null;

/** The key ring for this secret value, imported once per isolate. */
export function loadKeyRing(secret: string | undefined): Promise<KeyRingResult> {
  if (!secret)
    return Promise.resolve({ ok: false, reason: "not_configured", detail: "the secret TOKEN_SIGNING_KEYS is not set" });
  if (cached?.secret !== secret) cached = { secret, result: buildKeyRing(secret) };
  return cached.result;
}

async function buildKeyRing(secret: string): Promise<KeyRingResult> {
  let json: unknown;
  try {
    json = JSON.parse(secret);
  } catch {
    return { ok: false, reason: "invalid_json", detail: "TOKEN_SIGNING_KEYS is not JSON" };
  }
  const parsed = keySet.safeParse(json);
  // The zod message could echo key material: report only where the problem is.
  if (!parsed.success)
    return {
      ok: false,
      reason: "invalid_key",
      detail: `TOKEN_SIGNING_KEYS: bad member at ${parsed.error.issues.map((i) => i.path.join(".")).join(", ")}`,
    };
  const jwks = parsed.data;
  if (new Set(jwks.map((k) => k.kid)).size !== jwks.length)
    return { ok: false, reason: "duplicate_kid", detail: "TOKEN_SIGNING_KEYS has two keys with one kid" };
  const first = jwks[0];
  if (!first) return { ok: false, reason: "invalid_key", detail: "TOKEN_SIGNING_KEYS has no key" };
  const alg: SigningAlg = first.kty === "OKP" ? "EdDSA" : "ES256";
  let key: CryptoKey;
  try {
    key = (await importJWK(first, alg)) as CryptoKey;
  } catch (err) {
    return {
      ok: false,
      reason: "invalid_key",
      detail: `TOKEN_SIGNING_KEYS: key '${first.kid}' cannot be imported (${(err as Error).name})`,
    };
  }
  const published = jwks.map(
    (k): PublicJwk =>
      k.kty === "OKP"
        ? { kty: "OKP", crv: "Ed25519", x: k.x, kid: k.kid, alg: "EdDSA", use: "sig" }
        : { kty: "EC", crv: "P-256", x: k.x, y: k.y, kid: k.kid, alg: "ES256", use: "sig" },
  );
  return { ok: true, ring: { signer: { kid: first.kid, alg, key }, jwks: { keys: published } } };
}
