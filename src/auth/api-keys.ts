// API keys: `tg_` + 32 random bytes (base64url). Only the SHA-256 of the whole key is stored;
// a key is looked up by its hash and the stored hash is compared again in constant time.
import type { Scope } from "../domain/types";

export const KEY_PREFIX = "tg_";

export interface ApiKeyRecord {
  id: string;
  hash: string;
  scopes: Scope[];
  customerId: string | null;
  revokedAt: number | null;
}

export function generateApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return KEY_PREFIX + base64url(bytes);
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

/** A well-formed key is `tg_` + 43 base64url characters; anything else is refused before any lookup. */
export function looksLikeApiKey(value: string): boolean {
  return /^tg_[A-Za-z0-9_-]{43}$/.test(value);
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
