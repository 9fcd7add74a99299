// API keys: `tg_` + 32 random bytes (base64url, 43 characters) + `_` + an 8-character keyed checksum, the
// first 8 base64url characters of HMAC-SHA256(API_KEY_CHECKSUM_SECRET, "tg_<43>"). The checksum lets the
// check path refuse a made-up key without any KV or D1 read (review M5): 48 bits, so a guesser finds one
// accepted checksum per 2^48 tries, and even that one only reaches a lookup. Keys made before checksums
// (`tg_<43>`, the legacy format) are still accepted and looked up. Only the SHA-256 of the whole key is
// stored; a key is looked up by its hash and the stored hash is compared again in constant time.
import { configOf } from "../config";
import type { Scope } from "../domain/types";
import type { Env } from "../env";
import { Problem } from "../http/problem";

export const KEY_PREFIX = "tg_";
const CHECKSUM_LENGTH = 8;

/** The checksum secrets (the first makes new keys); without any, no checksummed key can be made or verified. */
export function checksumSecretsOf(env: Env): string[] {
  const secrets = configOf(env).apiKeys.checksumSecrets;
  if (secrets.length === 0)
    throw new Problem(
      "unavailable",
      "API keys cannot be made or verified: API_KEY_CHECKSUM_SECRET is not configured.",
      {
        headers: { "Retry-After": "300" },
      },
    );
  return secrets;
}

export interface ApiKeyRecord {
  id: string;
  hash: string;
  scopes: Scope[];
  customerId: string | null;
  revokedAt: number | null;
}

/** `tg_` + 32 random bytes: the body of a key, and the whole of a legacy-format key. */
export function generateApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return KEY_PREFIX + base64url(bytes);
}

/** A new key: a fresh body with its checksum under `secret` (the first of API_KEY_CHECKSUM_SECRET). */
export async function generateCheckedApiKey(secret: string): Promise<string> {
  const body = generateApiKey();
  return `${body}_${await keyChecksum(secret, body)}`;
}

let hmacKeys = new Map<string, Promise<CryptoKey>>();

/** The checksum of a key body: the first 8 base64url characters of HMAC-SHA256(secret, body). */
export async function keyChecksum(secret: string, body: string): Promise<string> {
  let key = hmacKeys.get(secret);
  if (!key) {
    if (hmacKeys.size >= 8) hmacKeys = new Map(); // a handful of secrets per isolate at most (rotations)
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    hmacKeys.set(secret, key);
  }
  const mac = await crypto.subtle.sign("HMAC", await key, new TextEncoder().encode(body));
  return base64url(new Uint8Array(mac)).slice(0, CHECKSUM_LENGTH);
}

/** Whether `checksum` is the body's under one of `secrets` (during a rotation: the new one and the old), in constant time. */
export async function checksumVerifies(body: string, checksum: string, secrets: readonly string[]): Promise<boolean> {
  let ok = false;
  for (const secret of secrets) if (sameDigest(await keyChecksum(secret, body), checksum)) ok = true;
  return ok;
}

export async function hashApiKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return toHex(new Uint8Array(digest));
}

/** Constant-time equality of two hex digests of equal length (timingSafeEqual is workerd's). */
export function sameDigest(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  if (x.byteLength !== y.byteLength) return false;
  return crypto.subtle.timingSafeEqual(x, y);
}

export type KeyShape = { body: string; checksum: string } | { body: string; checksum: null };

/**
 * A presented key's parts: `tg_<43>_<8>` (body and checksum) or the legacy `tg_<43>` (no checksum); null for
 * anything else, which is refused before any lookup. (Both lengths are fixed, so the `_` that base64url may
 * contain never makes the split ambiguous.)
 */
export function keyShape(value: string): KeyShape | null {
  const m = /^(tg_[A-Za-z0-9_-]{43})(?:_([A-Za-z0-9_-]{8}))?$/.exec(value);
  if (!m) return null;
  return { body: m[1] as string, checksum: m[2] ?? null };
}

/** A well-formed key, of either format. */
export function looksLikeApiKey(value: string): boolean {
  return keyShape(value) !== null;
}

export function displayPrefix(key: string): string {
  return key.slice(0, 10);
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
