// Four eyes on grants: who may apply, approve, reject or revoke one. Next to grant-policy.ts (the
// window and elevation rules a grant must meet), these say who must look at it:
// - support proposes: the grant is pending (no effect on checks) until an approver approves it;
// - approver/admin: a grant that is not elevated applies at once; an elevated one is pending too,
//   even for an admin: four eyes means a second person, whatever the first one's role;
// - an elevated grant is proposed by a person: an operator, or an API key an operator made (it counts
//   as that operator); the bootstrap key and keys it made stand for nobody in particular (403);
// - approval is by an approver+ who is not the proposer (people compared, not credentials:
//   write/accountable.ts), and an elevated grant only by an operator (a person with a JWT), never by an
//   API key or the bootstrap key;
// - pending grants are rejected, active ones revoked.
// Plain functions over the principal, the identities it and the proposer stand for, and the stored
// grant: the route loads, resolves the identities, calls these, and writes.
import { roleOf } from "../auth/admin";
import type { Principal } from "../auth/principal";
import { type FieldError, Problem } from "../http/problem";
import type { GrantDbRow } from "../store/customer-rows";
import type { GrantStatus } from "../store/grants";
import { isPerson } from "./accountable";
import type { GrantTerms } from "./grant-policy";

export type GrantDecision = "approve" | "reject" | "revoke";

/** Each decision: the status it takes a grant from, the status it leaves it in, and its audit action. */
export const GRANT_DECISIONS: Record<GrantDecision, { from: GrantStatus; to: GrantStatus; action: string }> = {
  approve: { from: "pending", to: "active", action: "grant.approve" },
  reject: { from: "pending", to: "rejected", action: "grant.reject" },
  revoke: { from: "active", to: "revoked", action: "grant.revoke" },
};

/** A new grant applies at once only when it is not elevated and its proposer is an approver or above. */
export function appliesAtOnce(proposer: Principal, elevated: boolean): boolean {
  return !elevated && roleOf(proposer) !== "support";
}

/** 403 unless an elevated grant's proposer (`identity`, from accountable.ts) is a person. */
export function assertMayPropose(identity: string, elevated: boolean): void {
  if (elevated && !isPerson(identity))
    throw new Problem(
      "forbidden",
      "An elevated grant is proposed by a person: use an operator token, or an API key an operator created, not the bootstrap key or a key it created.",
    );
}

/**
 * The row a proposal is stored as: active and decided by its proposer when it applies at once, else
 * pending. `me` is the person the proposer stands for (accountable.ts), so a grant proposed through a
 * key counts as proposed by the key's creator.
 */
export function proposedGrant(
  id: string,
  terms: GrantTerms,
  elevated: boolean,
  proposer: Principal,
  me: string,
  now: number,
): GrantDbRow {
  const applies = appliesAtOnce(proposer, elevated);
  return {
    id,
    customer_id: terms.customerId,
    feature_key: terms.featureKey,
    mode: terms.mode,
    spec: JSON.stringify(terms.spec),
    reason: terms.reason,
    starts_at: terms.startsAt,
    expires_at: terms.expiresAt,
    status: applies ? "active" : "pending",
    elevated: elevated ? 1 : 0,
    proposed_by: me,
    decided_by: applies ? me : null,
    decided_at: applies ? now : null,
    created_at: now,
    updated_at: now,
  };
}

/** 409 unless the grant is in the status the decision takes it from. */
export function assertDecidable(grant: GrantDbRow, decision: GrantDecision): void {
  if (grant.status === GRANT_DECISIONS[decision].from) return;
  throw new Problem(
    "conflict",
    decision === "revoke"
      ? `Grant '${grant.id}' is ${grant.status}; only an active grant is revoked (reject a pending one).`
      : `Grant '${grant.id}' is ${grant.status}, not pending.`,
  );
}

/**
 * Before the grant is judged again: it is pending (409), and the approver is not its proposer (403).
 * Both are the people they stand for (accountable.ts), not credentials: proposing with a key you made
 * and approving with your own token is one person.
 */
export function assertMayApprove(approver: string, proposer: string, grant: GrantDbRow): void {
  assertDecidable(grant, "approve");
  if (approver === proposer)
    throw new Problem("forbidden", "Four eyes: a grant is approved by someone other than its proposer.");
}

/**
 * Once its elevation is known again (the customer's plans may have changed since the proposal): an
 * elevated grant is approved by a person (403), was proposed by one (403: a grant the bootstrap key
 * proposed before that was refused), and the window and elevation rules still hold at approval
 * (`termsErrors`, from grant-policy.ts; 409: propose it again).
 */
export function assertApprovable(
  approver: Principal,
  proposer: string,
  elevated: boolean,
  termsErrors: FieldError[],
): void {
  if (elevated && approver.kind !== "operator")
    throw new Problem("forbidden", "An elevated grant is approved by a person: use an operator token, not an API key.");
  if (elevated && !isPerson(proposer))
    throw new Problem(
      "forbidden",
      `Four eyes: this elevated grant was proposed by '${proposer}', which is not one person; a person proposes it again.`,
    );
  if (termsErrors.length > 0)
    throw new Problem("conflict", "The grant can no longer be approved as proposed; propose it again.", {
      errors: termsErrors,
    });
}

/** The grant after a decision: its new status, decided by `decider` (an identity) now; an approval also records the elevation it was approved at. */
export function decidedGrant(
  before: GrantDbRow,
  decision: GrantDecision,
  decider: string,
  now: number,
  elevated?: boolean,
): GrantDbRow {
  return {
    ...before,
    elevated: elevated === undefined ? before.elevated : elevated ? 1 : 0,
    status: GRANT_DECISIONS[decision].to,
    decided_by: decider,
    decided_at: now,
    updated_at: now,
  };
}
