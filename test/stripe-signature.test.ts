import { describe, expect, it } from "vitest";
import { signStripePayload, verifyStripeSignature } from "../src/billing/stripe-signature";
import { PREVIOUS_WEBHOOK_SECRET, WEBHOOK_SECRET } from "./helpers/stripe";

const BODY = '{"id":"evt_1","type":"customer.subscription.updated","data":{"object":{"id":"sub_1"}}}';
const T = 1_760_000_000; // seconds
const NOW = T * 1000; // ms

const hexOf = (header: string) =>
  header
    .split(",")
    .find((p) => p.startsWith("v1="))!
    .slice(3);

describe("verifyStripeSignature", () => {
  it("accepts a valid signature and returns the signed timestamp", async () => {
    const header = await signStripePayload(BODY, WEBHOOK_SECRET, T);
    expect(header).toMatch(/^t=1760000000,v1=[0-9a-f]{64}$/);
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW)).toEqual({ ok: true, timestamp: T });
  });

  it("accepts a header with several v1 entries when only one matches (and ignores v0)", async () => {
    const good = hexOf(await signStripePayload(BODY, WEBHOOK_SECRET, T));
    const other = hexOf(await signStripePayload(BODY, "whsec_someone_else", T));
    const header = `t=${T},v1=${other},v1=${"0".repeat(64)},v1=${good},v0=${"a".repeat(64)}`;
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW)).toEqual({ ok: true, timestamp: T });
  });

  it("accepts the second secret of a rotation", async () => {
    const header = await signStripePayload(BODY, PREVIOUS_WEBHOOK_SECRET, T);
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET, PREVIOUS_WEBHOOK_SECRET], NOW)).toEqual({
      ok: true,
      timestamp: T,
    });
  });

  it("rejects a tampered body", async () => {
    const header = await signStripePayload(BODY, WEBHOOK_SECRET, T);
    const tampered = BODY.replace("sub_1", "sub_2");
    expect(await verifyStripeSignature(tampered, header, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
    // Whitespace matters: the HMAC is over the raw bytes, not over the parsed JSON.
    expect(await verifyStripeSignature(`${BODY}\n`, header, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });

  it("rejects a signature made with another secret", async () => {
    const header = await signStripePayload(BODY, "whsec_wrong", T);
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET, PREVIOUS_WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });

  it("rejects when no usable secret is configured (empty list, empty string)", async () => {
    const header = await signStripePayload(BODY, WEBHOOK_SECRET, T);
    expect(await verifyStripeSignature(BODY, header, [], NOW)).toEqual({ ok: false, reason: "no_matching_signature" });
    expect(await verifyStripeSignature(BODY, header, [""], NOW)).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });

  it("rejects a tampered timestamp (t is part of the signed string)", async () => {
    const header = (await signStripePayload(BODY, WEBHOOK_SECRET, T)).replace(`t=${T}`, `t=${T + 1}`);
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });

  it("enforces the tolerance in both directions", async () => {
    const header = await signStripePayload(BODY, WEBHOOK_SECRET, T);
    const stale = { ok: false, reason: "timestamp_out_of_tolerance" };
    // Exactly at the edge is accepted, one second beyond is not.
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW + 300_000)).toEqual({
      ok: true,
      timestamp: T,
    });
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW + 301_000)).toEqual(stale); // signed in the past
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW - 301_000)).toEqual(stale); // signed in the future
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW + 61_000, 60)).toEqual(stale);
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW + 59_000, 60)).toEqual({
      ok: true,
      timestamp: T,
    });
  });

  it("fails closed on a nonsensical clock or tolerance", async () => {
    const header = await signStripePayload(BODY, WEBHOOK_SECRET, T);
    const stale = { ok: false, reason: "timestamp_out_of_tolerance" };
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], Number.NaN)).toEqual(stale);
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW + 1000, Number.NaN)).toEqual(stale);
    expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW + 1000, -5)).toEqual(stale);
  });

  it("reports a missing header", async () => {
    expect(await verifyStripeSignature(BODY, null, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "missing_header",
    });
    expect(await verifyStripeSignature(BODY, "  ", [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "missing_header",
    });
  });

  it("reports malformed headers", async () => {
    const sig = hexOf(await signStripePayload(BODY, WEBHOOK_SECRET, T));
    const malformed = [
      `v1=${sig}`, // no t=
      `t=abc,v1=${sig}`, // non-numeric t
      `t=-1,v1=${sig}`,
      `t=1e9,v1=${sig}`,
      `t=,v1=${sig}`,
      `t=${T}`, // no v1
      `t=${T},t=${T},v1=${sig}`, // duplicate t
      `t=${T},v1`, // item without "="
      "garbage",
    ];
    for (const header of malformed) {
      expect(await verifyStripeSignature(BODY, header, [WEBHOOK_SECRET], NOW), header).toEqual({
        ok: false,
        reason: "malformed_header",
      });
    }
  });

  it("rejects a v0-only header (no downgrade to the test-mode scheme)", async () => {
    const sig = hexOf(await signStripePayload(BODY, WEBHOOK_SECRET, T));
    expect(await verifyStripeSignature(BODY, `t=${T},v0=${sig}`, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "malformed_header",
    });
  });

  it("treats a v1 value that is not a hex digest as non-matching", async () => {
    expect(await verifyStripeSignature(BODY, `t=${T},v1=zz`, [WEBHOOK_SECRET], NOW)).toEqual({
      ok: false,
      reason: "no_matching_signature",
    });
  });
});
