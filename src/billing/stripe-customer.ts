// The customer a Stripe event names but Tollgate does not know yet: created, named by Stripe's id, in the
// event's own batch, and audited. (Link an existing customer first by setting its billingCustomerId
// through the admin API.) Shared by subscription events and one-off top-ups.
import { customerWire, insertCustomerStatement, newCustomerRow } from "../store/customers";
import type { AuditEntry } from "../write/commit";

export function createBillingCustomer(
  db: D1Database,
  billingId: string,
  reason: string,
  now: number,
): { statement: D1PreparedStatement; audit: AuditEntry } {
  const created = { id: billingId, name: "", residency: null, billingCustomerId: billingId };
  return {
    statement: insertCustomerStatement(db, created, now),
    audit: {
      action: "customer.create",
      entityType: "customer",
      entityId: billingId,
      customerId: billingId,
      after: customerWire(newCustomerRow(created, now)),
      reason,
    },
  };
}
