/**
 * Stripe webhook signature verification (https://docs.stripe.com/webhooks#verify-manually).
 *
 * Header: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`
 * Signature: hex(HMAC-SHA256(endpoint secret, `${t}.${raw body}`)).
 *
 * Everything is returned as a value: a forged or garbled request is ordinary input, not an exception.
 */

export type StripeSignatureFailure =
  | "missing_header"
  | "malformed_header"
  | "timestamp_out_of_tolerance"
  | "no_matching_signature";
export type StripeSignatureResult = { ok: true; timestamp: number } | { ok: false; reason: StripeSignatureFailure };

/** Stripe's own libraries default to 5 minutes; it bounds how long a captured request can be replayed. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();
// Only the digits are accepted (no sign, exponent or fraction), and at most 12 of them, so that
// Number() is exact and the value signed is the very string that appears in the header.
const TIMESTAMP = /^\d{1,12}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/i;
/**
 * At most this many v1 entries (Stripe sends one per live endpoint secret: one, two during a rotation).
 * More is refused as malformed before any HMAC, so a forged header cannot make one request cost
 * hundreds of HMACs over a 1 MB body.
 */
export const MAX_V1_ENTRIES = 8;

interface ParsedHeader {
  timestamp: string;
  v1: Uint8Array[];
}

/** Parses the header strictly; null means malformed. Unknown schemes (v0, future ones) are ignored, never trusted. */
function parseHeader(header: string): ParsedHeader | null {
  let timestamp: string | undefined;
  const v1: Uint8Array[] = [];
  let sawV1 = false;
  let v1Entries = 0;
  for (const item of header.split(",")) {
    const eq = item.indexOf("=");
    if (eq <= 0) return null;
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === "t") {
      // Two timestamps would make "which one was signed" ambiguous: refuse rather than pick one.
      if (timestamp !== undefined || !TIMESTAMP.test(value)) return null;
      timestamp = value;
    } else if (key === "v1") {
      sawV1 = true;
      if (++v1Entries > MAX_V1_ENTRIES) return null;
      // A v1 value that is not a SHA-256 hex digest can never match; it is skipped, not fatal,
      // so one odd entry cannot hide a valid one next to it.
      if (SHA256_HEX.test(value)) v1.push(hexToBytes(value));
    }
    // v0 is Stripe's test-mode scheme, and is not an HMAC we can check: ignoring it means a v0-only
    // header has no v1 and is rejected below (downgrade protection).
  }
  if (timestamp === undefined || !sawV1) return null;
  return { timestamp, v1 };
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesToHex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

/**
 * Verifies a Stripe-Signature header over the RAW body (the exact bytes received: re-serialised JSON
 * will not match). Several secrets are accepted so that an endpoint secret can be rotated.
 * `now` is ms since epoch; `toleranceSeconds` applies in both directions (past and future).
 */
export async function verifyStripeSignature(
  payload: string,
  header: string | null,
  secrets: string[],
  now: number,
  toleranceSeconds: number = DEFAULT_TOLERANCE_SECONDS,
): Promise<StripeSignatureResult> {
  if (header === null || header.trim() === "") return { ok: false, reason: "missing_header" };
  const parsed = parseHeader(header);
  if (parsed === null) return { ok: false, reason: "malformed_header" };

  // The signature is checked before the clock, so "timestamp_out_of_tolerance" is only ever reported
  // for a request that Stripe really signed (a replay or clock skew, not a forgery).
  const signed = encoder.encode(`${parsed.timestamp}.${payload}`);
  let matched = false;
  // An empty secret is a configuration accident; an HMAC under it is forgeable by anyone.
  for (const secret of secrets.filter((s) => s.length > 0)) {
    // One HMAC per secret, whatever the number of candidates; each candidate is then compared in
    // constant time, so no byte-by-byte early exit leaks how much of a guessed signature was right.
    const expected = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), signed));
    for (const candidate of parsed.v1) if (crypto.subtle.timingSafeEqual(expected, candidate)) matched = true;
    if (matched) break;
  }
  if (!matched) return { ok: false, reason: "no_matching_signature" };

  const timestamp = Number(parsed.timestamp);
  // A tolerance that is negative or not a number is a caller bug: fall back to the strictest value.
  const tolerance = Number.isFinite(toleranceSeconds) && toleranceSeconds >= 0 ? toleranceSeconds : 0;
  // Written as !(x <= t) so that a NaN clock fails closed instead of comparing false and passing.
  if (!(Math.abs(now / 1000 - timestamp) <= tolerance)) return { ok: false, reason: "timestamp_out_of_tolerance" };
  return { ok: true, timestamp };
}

/** Builds a valid header for a payload (used by tests and local tooling). */
export async function signStripePayload(payload: string, secret: string, timestampSeconds: number): Promise<string> {
  const t = String(Math.floor(timestampSeconds));
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(`${t}.${payload}`));
  return `t=${t},v1=${bytesToHex(mac)}`;
}
