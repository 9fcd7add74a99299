// Stripe-Signature verification costs one HMAC per configured secret, whatever the header carries: a
// forged header with hundreds of v1 entries over a 1 MB body is refused before any HMAC, and the usual
// headers (one v1; two during a rotation; a valid v1 among wrong ones) still verify.
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_V1_ENTRIES, signStripePayload, verifyStripeSignature } from "../src/billing/stripe-signature";
import { PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET } from "./helpers/stripe";

const NOW = 1_760_000_000_000;
const T = NOW / 1000;
const body = JSON.stringify({ id: "evt_1", type: "invoice.paid" });
const wrong = (i: number) => `v1=${i.toString(16).padStart(64, "0")}`;

afterEach(() => vi.restoreAllMocks());

describe("Stripe signature cost", () => {
  it("computes one HMAC per secret, whatever the number of v1 entries", async () => {
    const header = await signStripePayload(body, WEBHOOK_SECRET, T);
    const many = `${header},${Array.from({ length: MAX_V1_ENTRIES - 1 }, (_, i) => wrong(i)).join(",")}`;
    const sign = vi.spyOn(crypto.subtle, "sign");
    const verify = vi.spyOn(crypto.subtle, "verify");
    const result = await verifyStripeSignature(body, many, [PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET], NOW);
    expect(result).toEqual({ ok: true, timestamp: T });
    expect(sign.mock.calls.length + verify.mock.calls.length).toBe(2); // one per secret, not per entry
  });

  it(`a header with more than ${MAX_V1_ENTRIES} v1 entries is malformed, refused before any HMAC`, async () => {
    const header = await signStripePayload(body, WEBHOOK_SECRET, T);
    const flood = `${header},${Array.from({ length: 800 }, (_, i) => wrong(i)).join(",")}`;
    const sign = vi.spyOn(crypto.subtle, "sign");
    const verify = vi.spyOn(crypto.subtle, "verify");
    const big = "a".repeat(1_000_000);
    expect(await verifyStripeSignature(big, flood, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "malformed_header",
    });
    expect(sign.mock.calls.length + verify.mock.calls.length).toBe(0);
  });

  it("a valid v1 among wrong ones, and either secret during a rotation, still verify", async () => {
    const header = await signStripePayload(body, PREVIOUS_WEBHOOK_SECRET, T);
    const t = header.split(",")[0];
    const v1 = header.split(",")[1];
    const mixed = `${t},${wrong(1)},${v1},${wrong(2)}`;
    expect(await verifyStripeSignature(body, mixed, [WEBHOOK_SECRET, PREVIOUS_WEBHOOK_SECRET], NOW)).toEqual({
      ok: true,
      timestamp: T,
    });
    expect(await verifyStripeSignature(body, mixed, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });
});
