// The Stripe events that create or end grants rather than subscriptions (docs/billing.md, "Credit
// top-ups"): a paid one-off invoice tops up credits, a credit note on such an invoice ends what is
// left of its top-ups. Loads what the event touches and returns the statements and audit entries;
// stripe-webhook.ts commits them with the event id in one batch.
import { customerIdByBillingId } from "../store/customers";
import { decideGrantStatement, grantsByIds, grantWire, insertGrantStatement } from "../store/grants";
import { topUpsOfPrices } from "../store/prices";
import type { AuditEntry } from "../write/commit";
import { createBillingCustomer } from "./stripe-customer";
import { priceOfLine, type StripeCreditNote, type StripeEvent } from "./stripe-events";
import { creditedGrantIds, planTopUpGrants, STRIPE_ACTOR, type StripeOneOffInvoice } from "./stripe-top-ups";

export interface GrantChange {
  statements: D1PreparedStatement[];
  audits: AuditEntry[];
  /** Customers whose grants changed (recompiled). */
  customers: string[];
  /** Grants created or ended. */
  changed: number;
}

const none = (): GrantChange => ({ statements: [], audits: [], customers: [], changed: 0 });

/** invoice.paid of an invoice without a subscription: a top-up grant per line whose price maps to one. */
export async function topUpChange(
  db: D1Database,
  event: StripeEvent,
  invoice: StripeOneOffInvoice,
  now: number,
): Promise<GrantChange> {
  const lines = invoice.lines?.data ?? [];
  const prices = await topUpsOfPrices(
    db,
    lines.flatMap((l) => priceOfLine(l) ?? []),
  );
  if (Object.keys(prices).length === 0 || !invoice.customer) return none();
  const billingId = invoice.customer;
  const known = await customerIdByBillingId(db, billingId);
  const customerId = known ?? billingId;
  const paidAt = (invoice.status_transitions?.paid_at ?? event.created) * 1000;
  const plan = planTopUpGrants(invoice, prices, { customerId, event, paidAt, now });
  // A line granted before (a redelivery under another event id, or a race lost) is not granted again.
  const existing = await grantsByIds(
    db,
    plan.grants.map((g) => g.id),
  );
  const grants = plan.grants.filter((g) => !existing.has(g.id));
  if (grants.length === 0) return none();
  const out = none();
  if (known === null) {
    // Unknown billing customer: created, named by Stripe's id, as subscription events do.
    const { statement, audit } = createBillingCustomer(db, billingId, `${event.type} ${event.id}`, now);
    out.statements.push(statement);
    out.audits.push(audit);
  }
  const ignored = plan.unmapped.length > 0 ? `; unmapped prices ignored: ${plan.unmapped.join(", ")}` : "";
  for (const g of grants) {
    out.statements.push(insertGrantStatement(db, g));
    out.audits.push({
      action: "grant.create",
      entityType: "grant",
      entityId: g.id,
      customerId,
      after: grantWire(g),
      reason: `${g.reason}${ignored}`,
    });
  }
  return { ...out, customers: [customerId], changed: grants.length };
}

/** credit_note.created: each active top-up grant of a credited invoice line ends now (revoked). */
export async function creditNoteChange(
  db: D1Database,
  event: StripeEvent,
  note: StripeCreditNote,
  now: number,
): Promise<GrantChange> {
  const out = none();
  for (const before of (await grantsByIds(db, creditedGrantIds(note))).values()) {
    if (before.status !== "active") continue;
    const after = { ...before, status: "revoked" as const, decided_by: STRIPE_ACTOR, decided_at: now, updated_at: now };
    out.statements.push(decideGrantStatement(db, ["active"], after));
    out.audits.push({
      action: "grant.revoke",
      entityType: "grant",
      entityId: before.id,
      customerId: before.customer_id,
      before: grantWire(before),
      after: grantWire(after),
      reason: `${event.type} ${event.id}: credit note ${note.id} on invoice ${note.invoice}; the unused credits end`,
    });
    out.customers.push(before.customer_id);
    out.changed++;
  }
  return out;
}
