// The parts of Stripe's event payloads Tollgate reads, as zod schemas (loose: Stripe adds fields),
// and the few accessors that hide differences between Stripe API versions.
// https://docs.stripe.com/api/events/object, /api/subscriptions/object, /api/invoices/object
import { z } from "zod";

const seconds = z.number().int().nonnegative().nullable().optional();
const idOrObject = z
  .union([z.string().min(1), z.looseObject({ id: z.string().min(1) })])
  .transform((v) => (typeof v === "string" ? v : v.id));

export const stripeEvent = z.looseObject({
  id: z.string().min(1).max(255),
  type: z.string().min(1).max(255),
  /** Unix seconds: when Stripe created the event (the out-of-order guard compares these). */
  created: z.number().int().nonnegative(),
  data: z.looseObject({ object: z.looseObject({}) }),
});
export type StripeEvent = z.output<typeof stripeEvent>;

export const STRIPE_STATUSES = [
  "incomplete",
  "incomplete_expired",
  "trialing",
  "active",
  "past_due",
  "canceled",
  "unpaid",
  "paused",
] as const;

export const stripeSubscription = z.looseObject({
  id: z.string().min(1).max(255),
  customer: idOrObject,
  // An unknown status is refused (422, Stripe retries) rather than guessed at.
  status: z.enum(STRIPE_STATUSES),
  items: z.looseObject({
    data: z.array(
      z.looseObject({
        id: z.string().min(1),
        price: z.looseObject({ id: z.string().min(1), product: idOrObject.optional() }),
        // Since API version 2025-03-31 the period lives on each item, not on the subscription.
        current_period_start: seconds,
        current_period_end: seconds,
      }),
    ),
  }),
  start_date: seconds,
  billing_cycle_anchor: seconds,
  trial_end: seconds,
  current_period_start: seconds,
  current_period_end: seconds,
  cancel_at: seconds,
  cancel_at_period_end: z.boolean().nullable().optional(),
  canceled_at: seconds,
  ended_at: seconds,
});
export type StripeSubscription = z.output<typeof stripeSubscription>;

/**
 * One invoice line: its price is `price` (an object or id) before API version 2025-03-31 and
 * `pricing.price_details.price` from it on; both are read (https://docs.stripe.com/api/invoice-line-item/object).
 */
export const stripeInvoiceLine = z.looseObject({
  id: z.string().min(1).max(255),
  quantity: z.number().int().nonnegative().nullable().optional(),
  price: idOrObject.nullable().optional(),
  pricing: z
    .looseObject({ price_details: z.looseObject({ price: idOrObject.nullable().optional() }).nullable().optional() })
    .nullable()
    .optional(),
});
export type StripeInvoiceLine = z.output<typeof stripeInvoiceLine>;

export const priceOfLine = (line: StripeInvoiceLine): string | null =>
  line.pricing?.price_details?.price ?? line.price ?? null;

export const stripeInvoice = z.looseObject({
  id: z.string().min(1).max(255),
  customer: idOrObject.nullable().optional(),
  subscription: idOrObject.nullable().optional(),
  // The first page of lines, as the event embeds it (`has_more` says there are more; those are not read).
  lines: z
    .looseObject({ data: z.array(stripeInvoiceLine) })
    .nullable()
    .optional(),
  status_transitions: z.looseObject({ paid_at: seconds }).nullable().optional(),
  // Since API version 2025-03-31: invoice.parent.subscription_details.subscription.
  parent: z
    .looseObject({
      subscription_details: z.looseObject({ subscription: idOrObject.nullable().optional() }).nullable().optional(),
    })
    .nullable()
    .optional(),
});
export type StripeInvoice = z.output<typeof stripeInvoice>;

export const subscriptionOfInvoice = (inv: StripeInvoice): string | null =>
  inv.subscription ?? inv.parent?.subscription_details?.subscription ?? null;

/** A credit note (https://docs.stripe.com/api/credit_notes/object): its lines name the invoice lines they credit. */
export const stripeCreditNote = z.looseObject({
  id: z.string().min(1).max(255),
  invoice: idOrObject,
  lines: z.looseObject({
    data: z.array(z.looseObject({ invoice_line_item: z.string().min(1).nullable().optional() })),
  }),
});
export type StripeCreditNote = z.output<typeof stripeCreditNote>;

export const SUBSCRIPTION_EVENTS = [
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
] as const;
export const INVOICE_EVENTS = ["invoice.payment_failed", "invoice.paid"] as const;
export const CREDIT_NOTE_EVENT = "credit_note.created";
export type SubscriptionEventType = (typeof SUBSCRIPTION_EVENTS)[number];
export type InvoiceEventType = (typeof INVOICE_EVENTS)[number];

export const isSubscriptionEvent = (t: string): t is SubscriptionEventType =>
  (SUBSCRIPTION_EVENTS as readonly string[]).includes(t);
export const isInvoiceEvent = (t: string): t is InvoiceEventType => (INVOICE_EVENTS as readonly string[]).includes(t);
