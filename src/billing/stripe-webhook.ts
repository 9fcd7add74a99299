// Applying one verified Stripe event to D1: load what the event touches, plan the change (pure,
// stripe-sync.ts), then commit the rows, their audit records and the event id in ONE D1 batch, so
// an event is either applied and remembered, or neither (and Stripe's retry tries again).
import type { z } from "zod";
import { isCurrentAt } from "../domain/lifecycle";
import type { Env } from "../env";
import { Problem } from "../http/problem";
import type { Services } from "../services";
import { customerIdByBillingId } from "../store/customers";
import { isDecidedMeanwhile } from "../store/grants";
import { plansOfPrices } from "../store/prices";
import {
  basePlanGuard,
  insertSubscriptionStatement,
  isWriteConflict,
  liveBaseSubscriptions,
  subscriptionsOfExternal,
  updateSubscriptionStatements,
} from "../store/subscriptions";
import { recordWebhookEventStatement, webhookEventSeen } from "../store/webhook-events";
import { type AuditEntry, commitWrite, STRIPE_WEBHOOK } from "../write/commit";
import { subscriptionChangeAudit } from "../write/subscription-audit";
import { createBillingCustomer } from "./stripe-customer";
import {
  CREDIT_NOTE_EVENT,
  isInvoiceEvent,
  isSubscriptionEvent,
  type StripeEvent,
  stripeCreditNote,
  stripeInvoice,
  stripeSubscription,
  subscriptionOfInvoice,
} from "./stripe-events";
import { creditNoteChange, type GrantChange, topUpChange } from "./stripe-grant-events";
import { planInvoiceEvent, planSubscriptionEvent, type SyncPlan } from "./stripe-sync";
import { stripeOneOffInvoice } from "./stripe-top-ups";

/** applied (changed may be 0: nothing to change), duplicate (seen before), stale (older than the rows), ignored (type not handled). */
export type WebhookOutcome = "applied" | "duplicate" | "stale" | "ignored";
export interface WebhookResult {
  eventId: string;
  outcome: WebhookOutcome;
  /** Subscriptions created or changed, and grants created or ended (customers created are not counted). */
  changed: number;
}

export async function applyStripeEvent(
  env: Env,
  services: Services,
  event: StripeEvent,
  graceMs: number,
  requestId: string,
): Promise<WebhookResult> {
  const db = env.DB;
  const now = services.clock.now();
  const result = (outcome: WebhookOutcome, changed = 0): WebhookResult => ({ eventId: event.id, outcome, changed });
  const handled = isSubscriptionEvent(event.type) || isInvoiceEvent(event.type) || event.type === CREDIT_NOTE_EVENT;
  if (!handled) return result("ignored"); // acknowledged, not recorded
  if (await webhookEventSeen(db, event.id)) return result("duplicate");

  const eventMs = event.created * 1000;
  const recordEvent = recordWebhookEventStatement(db, event, now);
  let plan: SyncPlan;
  let customerId: string | null = null;
  let grantChange: GrantChange | null = null;
  // The event id goes first: a concurrent delivery of the same event fails on it (and is answered as
  // a duplicate) before its other statements can be judged.
  const statements: D1PreparedStatement[] = [recordEvent];
  const audits: AuditEntry[] = [];
  if (isSubscriptionEvent(event.type)) {
    const sub = parse(stripeSubscription, event.data.object, "data.object");
    const existing = await subscriptionsOfExternal(db, sub.id);
    const prices = await plansOfPrices(
      db,
      sub.items.data.flatMap((i) => [i.price.id, ...(i.price.product ? [i.price.product] : [])]),
    );
    customerId = existing[0]?.customerId ?? (await customerIdByBillingId(db, sub.customer));
    // The customer's other current base plans: this subscription's live base plan replaces them.
    const linked = new Set(existing.map((r) => r.id));
    const otherBases = customerId
      ? (await liveBaseSubscriptions(db, customerId)).filter((r) => !linked.has(r.id) && isCurrentAt(r, now))
      : [];
    plan = planSubscriptionEvent(
      event.type,
      sub,
      customerId ?? sub.customer,
      prices,
      { eventMs, existing, graceMs, otherBases },
      () => `sub_${crypto.randomUUID()}`,
    );
    if (plan.outcome === "apply" && plan.inserts.length > 0 && customerId === null) {
      customerId = sub.customer; // unknown billing customer: created (stripe-customer.ts)
      const { statement, audit } = createBillingCustomer(db, customerId, reasonOf(event), now);
      statements.push(statement);
      audits.push(audit);
    }
  } else if (isInvoiceEvent(event.type)) {
    const subscriptionId = subscriptionOfInvoice(parse(stripeInvoice, event.data.object, "data.object"));
    const existing = subscriptionId ? await subscriptionsOfExternal(db, subscriptionId) : [];
    customerId = existing[0]?.customerId ?? null;
    plan = planInvoiceEvent(event.type, { eventMs, existing, graceMs });
    // A one-off invoice paid (no subscription): its lines may buy credit top-ups.
    if (!subscriptionId && event.type === "invoice.paid")
      grantChange = await topUpChange(db, event, parse(stripeOneOffInvoice, event.data.object, "data.object"), now);
  } else {
    plan = { outcome: "apply", inserts: [], updates: [], unmapped: [], extraBase: [], basePlanLive: false };
    grantChange = await creditNoteChange(db, event, parse(stripeCreditNote, event.data.object, "data.object"), now);
  }

  if (plan.outcome === "unmapped") {
    // Not recorded: Stripe retries (for up to three days), and the retry applies once the price is mapped.
    throw new Problem(
      "unprocessable",
      `No plan is mapped to price(s) ${plan.prices.join(", ")}; map them with PUT /admin/v1/prices/{priceId}. Stripe will retry.`,
      { unmappedPrices: plan.prices },
    );
  }
  let changed = 0;
  if (plan.outcome === "apply") {
    const why = reasonOf(event, plan.unmapped, plan.extraBase);
    for (const row of plan.inserts) {
      statements.push(insertSubscriptionStatement(db, { ...row, createdAt: now, updatedAt: now }));
      audits.push(subscriptionChangeAudit("create", null, row, why));
    }
    for (const u of plan.updates) {
      const after = { ...u.after, updatedAt: now };
      statements.push(...updateSubscriptionStatements(db, u.before, after, now));
      if (u.replaced)
        audits.push(subscriptionChangeAudit("replaced", u.before, after, `${why}; replaced by its base plan`));
      else if (u.relevant) audits.push(subscriptionChangeAudit("update", u.before, after, why));
    }
    changed = plan.inserts.length + plan.updates.filter((u) => u.relevant).length;
    // A concurrent write (an operator's, another event's) cannot give the customer a second base plan meanwhile.
    if (plan.basePlanLive && customerId) statements.push(basePlanGuard(db, customerId, now));
  }
  const customers = changed > 0 && customerId ? [customerId] : [];
  if (grantChange) {
    statements.push(...grantChange.statements);
    audits.push(...grantChange.audits);
    customers.push(...grantChange.customers);
    changed += grantChange.changed;
  }
  try {
    await commitWrite(env, services, STRIPE_WEBHOOK, { statements, audits, customers, requestId }, now);
  } catch (err) {
    if (/UNIQUE constraint failed: webhook_events\.id/.test(String(err))) return result("duplicate"); // a concurrent delivery won
    if (isWriteConflict(err) || isDecidedMeanwhile(err) || /UNIQUE constraint failed/.test(String(err))) {
      throw new Problem(
        "conflict",
        "A concurrent change touched the same subscription or grant; Stripe will retry this event.",
        { reason: "write_conflict" },
      );
    }
    throw err;
  }
  return result(plan.outcome === "stale" ? "stale" : "applied", changed);
}

function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const errors = r.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join("."), message: i.message }));
  throw new Problem("unprocessable", "The event does not have the shape Tollgate expects; it was not applied.", {
    errors,
  });
}

const reasonOf = (event: StripeEvent, unmapped: string[] = [], extraBase: string[] = []) =>
  `${event.type} ${event.id}${unmapped.length ? `; unmapped prices ignored: ${unmapped.join(", ")}` : ""}${
    extraBase.length ? `; second base plan prices ignored: ${extraBase.join(", ")}` : ""
  }`;
