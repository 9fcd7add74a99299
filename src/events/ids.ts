// Event ids derived from their cause: the same cause (a retried write, a second cron run, a replayed
// meter flush) always yields the same id, which D1 records once (store/outbound-events.ts) and which a
// receiver sees as the same `webhook-id` (Standard Webhooks: receivers dedupe on it).

const encoder = new TextEncoder();

/** "evt_" + 26 characters of base32 of SHA-256 over the cause's parts. */
export async function eventId(...cause: (string | number)[]): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(cause.join("\u001f"))));
  return `evt_${base32(digest).slice(0, 26)}`;
}

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}
