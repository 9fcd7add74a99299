// Credit top-ups bought through Stripe (docs/billing.md, "Credit top-ups"). Pure: the paid one-off
// invoice (no subscription) and the top-up price mappings in; one grant per mapped line out. A credit
// note naming such a line ends what is left of that line's top-up.
//
// The grant id is derived from the invoice and line ids, so one line grants once however often Stripe
// delivers the event, or another event about the same invoice: the grants table's primary key refuses
// a second row even when two deliveries race.
//
// Four eyes (docs/admin.md): a top-up Stripe was paid for is not a person's elevation, so it applies at
// once, proposed and decided by the Stripe webhook (the system actor), and audited with the event id,
// invoice, line and price.
import { z } from "zod";
import type { TopUpPrice } from "../domain/catalog";
import { DAY_MS } from "../domain/time";
import type { EntitlementSpec } from "../domain/types";
import type { GrantDbRow } from "../store/customer-rows";
import {
  priceOfLine,
  type StripeCreditNote,
  type StripeEvent,
  stripeInvoice,
  stripeInvoiceLine,
} from "./stripe-events";

/** The identity Stripe's grants are proposed and decided by (the audit actor of every Stripe write). */
export const STRIPE_ACTOR = "webhook:stripe";

// A grant id is at most 128 characters (the admin API's path parameter): 13 + 57 + 1 + 57. Stripe's
// ids are about 30.
const stripeId = z.string().min(1).max(57);
/** A one-off invoice as a top-up reads it: ids short enough to name its grants. */
export const stripeOneOffInvoice = stripeInvoice.extend({
  id: stripeId,
  lines: z
    .looseObject({ data: z.array(stripeInvoiceLine.extend({ id: stripeId })) })
    .nullable()
    .optional(),
});
export type StripeOneOffInvoice = z.output<typeof stripeOneOffInvoice>;

export const topUpGrantId = (invoiceId: string, lineId: string) => `grant_stripe_${invoiceId}_${lineId}`;

export interface TopUpGrants {
  grants: GrantDbRow[];
  /** The lines' prices without a top-up mapping (ignored; a price never stands for a line's id). */
  unmapped: string[];
}

/**
 * The top-up grants of a paid one-off invoice: each line whose price maps to a top-up grants
 * amount x quantity credits of the mapping's credits feature, from the payment time (`paidAt`) for
 * expiresInDays. Lines with unmapped prices (or with a plan's price) are ignored.
 */
export function planTopUpGrants(
  invoice: StripeOneOffInvoice,
  prices: Record<string, TopUpPrice>,
  ctx: { customerId: string; event: StripeEvent; paidAt: number; now: number },
): TopUpGrants {
  const grants: GrantDbRow[] = [];
  const unmapped: string[] = [];
  for (const line of invoice.lines?.data ?? []) {
    const price = priceOfLine(line);
    const topUp = price === null ? undefined : prices[price];
    if (!topUp) {
      if (price !== null) unmapped.push(price);
      continue;
    }
    const quantity = line.quantity ?? 1;
    if (quantity === 0) continue;
    const spec: EntitlementSpec = { enabled: true, limit: topUp.amount * quantity, topUp: true };
    grants.push({
      id: topUpGrantId(invoice.id, line.id),
      customer_id: ctx.customerId,
      feature_key: topUp.credits,
      mode: "add",
      spec: JSON.stringify(spec),
      reason: `Stripe payment: invoice ${invoice.id} line ${line.id} price ${price} x ${quantity} (${ctx.event.type} ${ctx.event.id})`,
      starts_at: ctx.paidAt,
      expires_at: ctx.paidAt + topUp.expiresInDays * DAY_MS,
      status: "active",
      elevated: 1, // it gives more than the plans do; Stripe's payment stands in for the second person
      proposed_by: STRIPE_ACTOR,
      decided_by: STRIPE_ACTOR,
      decided_at: ctx.now,
      created_at: ctx.now,
      updated_at: ctx.now,
    });
  }
  return { grants, unmapped };
}

/** The ids of the top-up grants a credit note's lines would have created (most name none). */
export const creditedGrantIds = (note: StripeCreditNote): string[] =>
  note.lines.data.flatMap((l) => (l.invoice_line_item ? [topUpGrantId(note.invoice, l.invoice_line_item)] : []));
