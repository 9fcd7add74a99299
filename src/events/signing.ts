// Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"): the signed
// content is "<webhook-id>.<webhook-timestamp>.<body>", HMAC-SHA256 with the secret's bytes (the
// base64 after "whsec_"), sent as "v1,<base64>". Several signatures are space-separated: during a
// rotation both secrets sign, so a receiver with either one verifies.

const encoder = new TextEncoder();
const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 24;

/** A new endpoint secret: "whsec_" + base64 of 24 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** The webhook-signature header for `body`, signed with each secret. */
export async function signatures(secrets: string[], id: string, timestampSeconds: number, body: string) {
  const content = encoder.encode(`${id}.${timestampSeconds}.${body}`);
  const parts: string[] = [];
  for (const secret of secrets) {
    const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    parts.push(`v1,${toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", key, content)))}`);
  }
  return parts.join(" ");
}

/** The three Standard Webhooks headers of one delivery. */
export async function webhookHeaders(secrets: string[], id: string, timestampSeconds: number, body: string) {
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": await signatures(secrets, id, timestampSeconds, body),
  };
}

function secretBytes(secret: string): Uint8Array {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
