// Entities (issue 17, docs/model.md "Entities"): users, seats, workspaces or devices inside a customer.
// A check or usage may name one (`entityId`); then two more bounds decide besides the customer's own:
// a feature with `seat: "<seats feature>"` needs the entity to hold one of that feature's seats (else
// not_entitled), and an entitlement with `perEntity: { limit, reset }` caps each entity's own usage per
// period (else limit_reached), on top of the customer's pooled limit. The snapshot lists no entities:
// which entity holds a seat, and how much each used, is the meter's (meter/entities.ts). Pure: the
// meter decides a consume with the same rules atomically; the check path applies its one read here.
import type { DeniedBy, EntityView, Evaluation, SnapshotFeature } from "./types";

/** The seats feature whose seat an entity needs to use `key` (a seats feature is its own); undefined: none. */
export const seatOf = (key: string, f: Pick<SnapshotFeature, "type" | "seat"> | undefined): string | undefined =>
  f?.seat ?? (f?.type === "seats" ? key : undefined);

/** Whether a per-entity bound takes `amount` more on top of what is used and held (a negative amount always fits). */
export const boundFits = (b: { limit: number; used: number; reserved: number; amount: number }): boolean =>
  b.amount <= 0 || b.used + b.reserved + b.amount <= b.limit;

/** What an answer says of an entity: its seat, and its usage against its own bound (the remaining room). */
export function entityView(
  id: string,
  seat: { feature: string; held: boolean } | undefined,
  b: { limit: number; used: number; reserved: number; resetsAt: number | null } | undefined,
): EntityView {
  const view: EntityView = { id, ...(seat ? { seat } : {}) };
  if (!b) return view;
  const remaining = Math.max(0, b.limit - b.used - b.reserved);
  return { ...view, limit: b.limit, used: b.used, remaining, resetsAt: b.resetsAt };
}

/** One per-entity bound as a read found it: the limit, the entity's usage of its period, what the check asks. */
export interface EntityBoundRead {
  feature: string;
  limit: number;
  used: number;
  /** Held for the entity by its open reservations (counted against its limit, like used). */
  reserved: number;
  resetsAt: number | null;
  /** Units (or credits) the checked quantity would add. */
  amount: number;
}

/**
 * Completes an evaluation for an entity. The customer's answer stands when it denies; else a missing seat
 * denies (not_entitled, deniedBy seat), then a per-entity bound the quantity does not fit (limit_reached,
 * deniedBy entity_limit). `remaining` becomes the smaller of the customer's and the entity's.
 */
export function applyEntity(
  ev: Evaluation,
  id: string,
  seat: { feature: string; held: boolean } | undefined,
  bounds: readonly EntityBoundRead[],
): Evaluation {
  const entity = entityView(
    id,
    seat,
    bounds.find((b) => b.feature === ev.feature),
  );
  const out: Evaluation = { ...ev, entity };
  const left = entity.remaining;
  if (left !== undefined && ev.allowed) out.remaining = ev.remaining == null ? left : Math.min(ev.remaining, left);
  if (!ev.allowed) return out;
  const deny = (reason: Evaluation["reason"], deniedBy: DeniedBy): Evaluation => ({
    ...out,
    allowed: false,
    reason,
    deniedBy,
  });
  if (seat && !seat.held) return deny("not_entitled", "seat");
  if (!bounds.every(boundFits)) return deny("limit_reached", "entity_limit");
  return out;
}

/** A seats feature's evaluation completed with how many of its seats are assigned. */
export function applySeats(ev: Evaluation, assigned: number): Evaluation {
  if (ev.type !== "seats" || !ev.effective) return ev;
  const limit = ev.limit ?? null;
  return { ...ev, used: assigned, remaining: limit === null ? null : Math.max(0, limit - assigned) };
}
