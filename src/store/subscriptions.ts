// Subscriptions in D1: create, read and list them, write a lifecycle change with an optimistic guard,
// and the wire form. Statements that are part of a write are returned, not run, so the caller can put
// them in one batch with the audit records (src/write/commit.ts).
import type { LifecycleSubscription } from "../domain/lifecycle";
import { iso, isoOrNull } from "../domain/time";
import type { SubscriptionStatus } from "../domain/types";
import { type SubscriptionDbRow, toSubscriptionRow } from "./customer-rows";

/** A subscription row with everything the lifecycle, the webhooks and the wire need. */
export interface SubscriptionRecord extends LifecycleSubscription {
  customerId: string;
  externalUpdatedAt: number | null;
  /** The provider's time of the last invoice event applied: invoices have their own watermark (docs/billing.md). */
  invoiceUpdatedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export const toSubscriptionRecord = (r: SubscriptionDbRow): SubscriptionRecord => ({
  ...toSubscriptionRow(r),
  customerId: r.customer_id,
  externalId: r.external_id,
  externalUpdatedAt: r.external_updated_at,
  invoiceUpdatedAt: r.invoice_updated_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export async function readSubscription(db: D1Database, id: string): Promise<SubscriptionRecord | null> {
  const row = await db.prepare("SELECT * FROM subscriptions WHERE id = ?1").bind(id).first<SubscriptionDbRow>();
  return row ? toSubscriptionRecord(row) : null;
}

export interface SubscriptionFilter {
  customerId?: string;
  status?: SubscriptionStatus;
  planId?: string;
  /** Keyset cursor: subscriptions with a greater id. */
  afterId: string | null;
  /** Rows to read (a page reads one more than it shows: http/pagination.ts). */
  limit: number;
}

/** Subscriptions, by id. */
export async function listSubscriptions(db: D1Database, q: SubscriptionFilter): Promise<SubscriptionRecord[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    args.push(value);
    where.push(sql.replace("?", `?${args.length}`));
  };
  if (q.customerId) add("customer_id = ?", q.customerId);
  if (q.status) add("status = ?", q.status);
  if (q.planId) add("plan_id = ?", q.planId);
  if (q.afterId !== null) add("id > ?", q.afterId);
  args.push(q.limit);
  const sql = `SELECT * FROM subscriptions ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id LIMIT ?${args.length}`;
  const rows = await db
    .prepare(sql)
    .bind(...args)
    .all<SubscriptionDbRow>();
  return rows.results.map(toSubscriptionRecord);
}

/** What an operator gives for a new subscription; everything but the plan has a default. */
export interface NewSubscription {
  id?: string;
  planId: string;
  status: SubscriptionStatus;
  startedAt?: number;
  trialEnd?: number | null;
  currentPeriodStart?: number | null;
  currentPeriodEnd?: number | null;
  billingAnchor?: number | null;
  cancelAt?: number | null;
  graceUntil?: number | null;
}

/**
 * The record a new subscription is stored as: it starts now unless told otherwise, and its first
 * period and billing anchor start when it does. No id given: a fresh `sub_<uuid>`.
 */
export function newSubscriptionRecord(customerId: string, s: NewSubscription, now: number): SubscriptionRecord {
  const startedAt = s.startedAt ?? now;
  return {
    id: s.id ?? `sub_${crypto.randomUUID()}`,
    customerId,
    planId: s.planId,
    status: s.status,
    startedAt,
    trialEnd: s.trialEnd ?? null,
    currentPeriodStart: s.currentPeriodStart ?? startedAt,
    currentPeriodEnd: s.currentPeriodEnd ?? null,
    billingAnchor: s.billingAnchor ?? startedAt,
    cancelAt: s.cancelAt ?? null,
    graceUntil: s.graceUntil ?? null,
    endedAt: null,
    scheduledPlanId: null,
    scheduledChangeAt: null,
    externalId: null,
    externalUpdatedAt: null,
    invoiceUpdatedAt: null,
    createdAt: now,
    updatedAt: now,
  };
}

/** Inserts a subscription: one made by newSubscriptionRecord, or one a billing provider created. */
export function insertSubscriptionStatement(db: D1Database, s: SubscriptionRecord): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO subscriptions (id, customer_id, plan_id, status, started_at, trial_end, current_period_start, current_period_end,
         billing_anchor, cancel_at, grace_until, ended_at, external_id, external_updated_at, invoice_updated_at, created_at, updated_at,
         plan_version)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
         COALESCE(?18, (SELECT version FROM plans WHERE id = ?3)))`,
    )
    .bind(
      s.id,
      s.customerId,
      s.planId,
      s.status,
      s.startedAt,
      s.trialEnd,
      s.currentPeriodStart,
      s.currentPeriodEnd,
      s.billingAnchor,
      s.cancelAt,
      s.graceUntil,
      s.endedAt,
      s.externalId,
      s.externalUpdatedAt,
      s.invoiceUpdatedAt,
      s.createdAt,
      s.updatedAt,
      // A new subscription is on its plan's current version unless told otherwise (grandfathering pins it).
      s.planVersion ?? null,
    );
}

/** A billing provider's subscription: its base row (external_id = id) and add-on rows ("id/<item>"), by a range scan on the unique index. */
export async function subscriptionsOfExternal(db: D1Database, externalId: string): Promise<SubscriptionRecord[]> {
  const rows = await db
    .prepare(
      "SELECT * FROM subscriptions WHERE external_id = ?1 OR (external_id >= ?1 || '/' AND external_id < ?1 || '0') ORDER BY external_id",
    )
    .bind(externalId)
    .all<SubscriptionDbRow>();
  return rows.results.map(toSubscriptionRecord);
}

/**
 * The kind (base or add-on) of each of these plans that exists; a missing id is an unknown plan. (Read
 * here, not with the catalog, because a subscription's plan is checked when the subscription is written.)
 */
export async function planKinds(db: D1Database, planIds: string[]): Promise<Map<string, "base" | "addon">> {
  const rows = await db
    .prepare("SELECT id, kind FROM plans WHERE id IN (SELECT value FROM json_each(?1))")
    .bind(JSON.stringify([...new Set(planIds)]))
    .all<{ id: string; kind: "base" | "addon" }>();
  return new Map(rows.results.map((r) => [r.id, r.kind]));
}

// Every column a change may touch, paired with the record field that holds it.
const MUTABLE: [column: string, field: keyof SubscriptionRecord][] = [
  ["plan_id", "planId"],
  ["status", "status"],
  ["trial_end", "trialEnd"],
  ["current_period_start", "currentPeriodStart"],
  ["current_period_end", "currentPeriodEnd"],
  ["billing_anchor", "billingAnchor"],
  ["cancel_at", "cancelAt"],
  ["grace_until", "graceUntil"],
  ["ended_at", "endedAt"],
  ["scheduled_plan_id", "scheduledPlanId"],
  ["scheduled_change_at", "scheduledChangeAt"],
  ["external_updated_at", "externalUpdatedAt"],
  ["invoice_updated_at", "invoiceUpdatedAt"],
];

/**
 * Writes `after` over `before`, only if the row still holds exactly `before` (compare-and-set on every
 * mutable column). Two writers that read the same row (an operator and the cron, two webhook
 * deliveries) cannot both win: the loser's whole D1 batch, audit record included, rolls back with a
 * WriteConflict (see isWriteConflict). Put both statements in the same batch, in this order.
 */
export function updateSubscriptionStatements(
  db: D1Database,
  before: SubscriptionRecord,
  after: SubscriptionRecord,
  now: number,
): D1PreparedStatement[] {
  const n = MUTABLE.length;
  const set = MUTABLE.map(([col], i) => `${col} = ?${i + 2}`).join(", ");
  const same = MUTABLE.map(([col], i) => `${col} IS ?${i + 2 + n}`).join(" AND ");
  // A plan change puts the subscription on the new plan's current version; otherwise its version stays.
  const version = `plan_version = CASE WHEN ?2 IS ?${2 + n} THEN plan_version ELSE (SELECT version FROM plans WHERE id = ?2) END`;
  const update = db
    .prepare(`UPDATE subscriptions SET ${set}, ${version}, updated_at = ?${2 + 2 * n} WHERE id = ?1 AND ${same}`)
    .bind(before.id, ...MUTABLE.map(([, f]) => after[f] ?? null), ...MUTABLE.map(([, f]) => before[f] ?? null), now);
  return [update, conflictGuard(db)];
}

/**
 * Fails the batch (so D1 rolls all of it back) when the statement before it changed no row. SQLite's
 * RAISE() only works inside triggers, so the failure is a NOT NULL violation that can only happen here.
 */
export function conflictGuard(db: D1Database): D1PreparedStatement {
  return db.prepare("INSERT INTO meta (key, value) SELECT 'write_conflict_guard', NULL WHERE changes() = 0");
}

/** The error D1 reports when conflictGuard fired: someone else changed the row first. */
export function isWriteConflict(err: unknown): boolean {
  return /NOT NULL constraint failed: meta\.value/.test(
    String(err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : err),
  );
}

/**
 * A subscription that still counts at ?2, in SQL: the domain's isCurrentAt (domain/lifecycle.ts) for
 * rows whose ends are due but not yet recorded (a billing provider's rows end by its webhooks only).
 */
const CURRENT_SQL = `s.status IN ('trialing', 'active', 'past_due')
  AND (s.ended_at IS NULL OR s.ended_at > ?2) AND (s.cancel_at IS NULL OR s.cancel_at > ?2)
  AND (s.external_id IS NOT NULL OR (
    (s.status <> 'trialing' OR s.trial_end IS NULL OR s.trial_end > ?2)
    AND (s.status <> 'past_due' OR COALESCE(s.grace_until, s.started_at) > ?2)))`;

/** The customer's base-plan subscriptions in a live status (oldest first): the candidates for isCurrentAt. */
export async function liveBaseSubscriptions(db: D1Database, customerId: string): Promise<SubscriptionRecord[]> {
  const rows = await db
    .prepare(
      `SELECT s.* FROM subscriptions s JOIN plans p ON p.id = s.plan_id
       WHERE s.customer_id = ?1 AND p.kind = 'base' AND s.status IN ('trialing', 'active', 'past_due')
       ORDER BY s.started_at, s.id`,
    )
    .bind(customerId)
    .all<SubscriptionDbRow>();
  return rows.results.map(toSubscriptionRecord);
}

/**
 * Fails the batch when, after the statements before it, the customer has more than one base-plan
 * subscription that counts at `now`: two writers that each checked there was none before cannot both
 * commit (D1 runs batches one at a time). The failure is a duplicate of meta's one seeded key, a
 * UNIQUE violation only this guard can cause (see isBasePlanConflict); a write with it changes nothing.
 */
export function basePlanGuard(db: D1Database, customerId: string, now: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO meta (key, value) SELECT 'catalog_rev', 0 WHERE (SELECT COUNT(*) FROM subscriptions s
         JOIN plans p ON p.id = s.plan_id WHERE s.customer_id = ?1 AND p.kind = 'base' AND ${CURRENT_SQL}) > 1`,
    )
    .bind(customerId, now);
}

/** The error D1 reports when basePlanGuard fired: a concurrent write gave the customer a base plan first. */
export function isBasePlanConflict(err: unknown): boolean {
  return /UNIQUE constraint failed: meta\.key/.test(
    String(err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : err),
  );
}

/** The wire form: instants as ISO-8601 strings. */
export function subscriptionWire(s: SubscriptionRecord) {
  return {
    id: s.id,
    customerId: s.customerId,
    planId: s.planId,
    status: s.status,
    startedAt: iso(s.startedAt),
    trialEnd: isoOrNull(s.trialEnd),
    currentPeriodStart: isoOrNull(s.currentPeriodStart),
    currentPeriodEnd: isoOrNull(s.currentPeriodEnd),
    billingAnchor: isoOrNull(s.billingAnchor),
    cancelAt: isoOrNull(s.cancelAt),
    graceUntil: isoOrNull(s.graceUntil),
    endedAt: isoOrNull(s.endedAt),
    scheduledPlanId: s.scheduledPlanId,
    scheduledChangeAt: isoOrNull(s.scheduledChangeAt),
    externalId: s.externalId,
    createdAt: iso(s.createdAt),
    updatedAt: iso(s.updatedAt),
  };
}

/** What the audit log records for a subscription: the wire form without the bookkeeping timestamps. */
export function subscriptionAudit(s: SubscriptionRecord) {
  const { createdAt: _c, updatedAt: _u, ...rest } = subscriptionWire(s);
  return rest;
}

/**
 * Subscriptions not managed by a billing provider with a lifecycle change due at `now` (trial end,
 * scheduled cancellation, end of grace, scheduled plan change, period renewal), in id order after a cursor.
 */
export async function dueSubscriptions(
  db: D1Database,
  after: string,
  now: number,
  limit: number,
): Promise<SubscriptionRecord[]> {
  const rows = await db.prepare(DUE_SQL).bind(after, now, limit).all<SubscriptionDbRow>();
  return rows.results.map(toSubscriptionRecord);
}

const DUE_SQL = `SELECT * FROM subscriptions
  WHERE id > ?1 AND external_id IS NULL AND status IN ('trialing', 'active', 'past_due') AND (
    cancel_at <= ?2
    OR (status = 'trialing' AND trial_end <= ?2)
    OR (status = 'past_due' AND COALESCE(grace_until, started_at) <= ?2)
    OR (scheduled_plan_id IS NOT NULL AND scheduled_change_at <= ?2)
    OR (status = 'active' AND current_period_start IS NOT NULL AND current_period_end > current_period_start AND current_period_end <= ?2))
  ORDER BY id LIMIT ?3`;
