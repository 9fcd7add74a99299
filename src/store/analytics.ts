// Analytics in D1: the local rollups (written by analytics/local-sink.ts, read by the analytics
// endpoints in local mode) and the reads every mode makes of the source of record: entitled customers
// per feature, upsell candidates from the current periods' totals, trial conversions. Every read
// answers a bounded result (one row per feature, per plan, per bucket, or a page).
import { batchRows, query } from "./batch";

export interface RollupCell {
  hour: number;
  kind: "check" | "consume";
  feature: string;
  plan: string;
  country: string;
  reason: string;
  allowed: 0 | 1;
  count: number;
  quantity: number;
}

export interface CustomerCell {
  hour: number;
  feature: string;
  customerId: string;
  checks: number;
  denials: number;
  consumes: number;
  used: number;
}

/** D1 binds at most 100 parameters per statement: the cells of a flush go in multi-row upserts that fit. */
const MAX_PARAMS = 100;

/** `INSERT ... VALUES (?1, ..), (..) ON CONFLICT ...` for `rows` rows of `width` parameters. */
function upsertSql(head: string, width: number, rows: number, conflict: string): string {
  const values = Array.from(
    { length: rows },
    (_, r) => `(${Array.from({ length: width }, (_, i) => `?${r * width + i + 1}`).join(", ")})`,
  );
  return `${head} VALUES ${values.join(", ")} ${conflict}`;
}

function upserts<T>(
  db: D1Database,
  cells: T[],
  width: number,
  head: string,
  conflict: string,
  params: (c: T) => unknown[],
) {
  const per = Math.floor(MAX_PARAMS / width);
  const out: D1PreparedStatement[] = [];
  for (let i = 0; i < cells.length; i += per) {
    const chunk = cells.slice(i, i + per);
    out.push(db.prepare(upsertSql(head, width, chunk.length, conflict)).bind(...chunk.flatMap(params)));
  }
  return out;
}

/** One flush: every cell added to its row, in multi-row upserts, in one batch. */
export async function writeRollups(db: D1Database, rollups: RollupCell[], customers: CustomerCell[]): Promise<void> {
  const statements = [
    ...upserts(
      db,
      rollups,
      9,
      "INSERT INTO analytics_rollups (hour, kind, feature_key, plan_id, country, reason, allowed, count, quantity)",
      `ON CONFLICT (hour, kind, feature_key, plan_id, country, reason, allowed)
       DO UPDATE SET count = count + excluded.count, quantity = quantity + excluded.quantity`,
      (r) => [r.hour, r.kind, r.feature, r.plan, r.country, r.reason, r.allowed, r.count, r.quantity],
    ),
    ...upserts(
      db,
      customers,
      7,
      "INSERT INTO analytics_customer_hours (hour, feature_key, customer_id, checks, denials, consumes, used)",
      `ON CONFLICT (hour, feature_key, customer_id) DO UPDATE SET checks = checks + excluded.checks,
       denials = denials + excluded.denials, consumes = consumes + excluded.consumes, used = used + excluded.used`,
      (c) => [c.hour, c.feature, c.customerId, c.checks, c.denials, c.consumes, c.used],
    ),
  ];
  if (statements.length > 0) await db.batch(statements);
}

/** Rollup rows older than `before`, at most `limit` per table per call (the cron's bounded clean-up). */
export async function deleteRollupsBefore(db: D1Database, before: number, limit: number): Promise<number> {
  const [a, b] = await db.batch([
    db
      .prepare(
        "DELETE FROM analytics_rollups WHERE rowid IN (SELECT rowid FROM analytics_rollups WHERE hour < ?1 LIMIT ?2)",
      )
      .bind(before, limit),
    db
      .prepare(
        "DELETE FROM analytics_customer_hours WHERE rowid IN (SELECT rowid FROM analytics_customer_hours WHERE hour < ?1 LIMIT ?2)",
      )
      .bind(before, limit),
  ]);
  return (a?.meta.changes ?? 0) + (b?.meta.changes ?? 0);
}

export interface FeatureActivity {
  checks: number;
  denials: number;
  activeCustomers: number;
  usage: { total: number; p50: number; p90: number; max: number };
}

/**
 * Per feature over [from, to) (hour rows): checks and denials, distinct customers with an allowed
 * check or an admitted consume, and the distribution of units per consuming customer (nearest rank:
 * the p-th percentile is the ceil(p/100 x n)-th smallest total).
 */
/** Per-feature activity being filled in: `of(feature)` is its entry, made empty on first use. */
export function activityTable() {
  const out = new Map<string, FeatureActivity>();
  const of = (f: string) => {
    let a = out.get(f);
    if (!a) {
      a = { checks: 0, denials: 0, activeCustomers: 0, usage: { total: 0, p50: 0, p90: 0, max: 0 } };
      out.set(f, a);
    }
    return a;
  };
  return { out, of };
}

export async function rollupActivity(db: D1Database, from: number, to: number): Promise<Map<string, FeatureActivity>> {
  const [counts, active, usage] = await batchRows(db, [
    query<{ feature_key: string; checks: number | null; denials: number | null }>(
      db
        .prepare(
          `SELECT feature_key, SUM(CASE WHEN kind = 'check' THEN count END) AS checks,
             SUM(CASE WHEN kind = 'check' AND allowed = 0 THEN count END) AS denials
           FROM analytics_rollups WHERE hour >= ?1 AND hour < ?2 GROUP BY feature_key`,
        )
        .bind(from, to),
    ),
    query<{ feature_key: string; active: number }>(
      db
        .prepare(
          `SELECT feature_key, COUNT(DISTINCT customer_id) AS active FROM analytics_customer_hours
           WHERE hour >= ?1 AND hour < ?2 AND (checks > denials OR used > 0) GROUP BY feature_key`,
        )
        .bind(from, to),
    ),
    query<{ feature_key: string; total: number; max: number; p50: number; p90: number }>(
      db
        .prepare(
          `WITH per AS (
             SELECT feature_key, customer_id, SUM(used) AS u FROM analytics_customer_hours
             WHERE hour >= ?1 AND hour < ?2 AND used > 0 GROUP BY feature_key, customer_id),
           ranked AS (
             SELECT feature_key, u, ROW_NUMBER() OVER (PARTITION BY feature_key ORDER BY u) AS r,
               COUNT(*) OVER (PARTITION BY feature_key) AS n FROM per)
           SELECT feature_key, SUM(u) AS total, MAX(u) AS max,
             MIN(CASE WHEN r >= (n * 50 + 99) / 100 THEN u END) AS p50,
             MIN(CASE WHEN r >= (n * 90 + 99) / 100 THEN u END) AS p90
           FROM ranked GROUP BY feature_key`,
        )
        .bind(from, to),
    ),
  ] as const);
  const { out, of } = activityTable();
  for (const r of counts) Object.assign(of(r.feature_key), { checks: r.checks ?? 0, denials: r.denials ?? 0 });
  for (const r of active) of(r.feature_key).activeCustomers = r.active;
  for (const r of usage) of(r.feature_key).usage = { total: r.total, p50: r.p50, p90: r.p90, max: r.max };
  return out;
}

export interface UsageBucket {
  t: number;
  total: number;
  customers: number;
}

/** Units consumed (admitted) of one feature per bucket of `bucketMs` (an hour or a day), with the customers that consumed. */
export async function rollupUsage(
  db: D1Database,
  feature: string,
  bucketMs: number,
  from: number,
  to: number,
): Promise<UsageBucket[]> {
  const { results } = await db
    .prepare(
      `SELECT hour - hour % ?4 AS t, SUM(used) AS total, COUNT(DISTINCT customer_id) AS customers
       FROM analytics_customer_hours WHERE feature_key = ?1 AND hour >= ?2 AND hour < ?3 AND used > 0
       GROUP BY t ORDER BY t`,
    )
    .bind(feature, from, to, bucketMs)
    .all<UsageBucket>();
  return results;
}

export type DenialDimension = "reason" | "plan" | "country";
const DENIAL_COLUMN: Record<DenialDimension, string> = { reason: "reason", plan: "plan_id", country: "country" };

export interface DenialRow {
  featureKey: string;
  key: string;
  count: number;
}

/** Denied checks per feature and one dimension, most first. */
export async function rollupDenials(
  db: D1Database,
  by: DenialDimension,
  from: number,
  to: number,
  limit: number,
): Promise<DenialRow[]> {
  const column = DENIAL_COLUMN[by]; // from a fixed map: never caller text in the SQL
  const { results } = await db
    .prepare(
      `SELECT feature_key AS featureKey, ${column} AS key, SUM(count) AS count FROM analytics_rollups
       WHERE kind = 'check' AND allowed = 0 AND hour >= ?1 AND hour < ?2
       GROUP BY feature_key, ${column} ORDER BY count DESC, featureKey, key LIMIT ?3`,
    )
    .bind(from, to, limit)
    .all<DenialRow>();
  return results;
}

/** Every catalog feature key, in key order (the catalog is bounded by its own limits). */
export async function featureKeys(db: D1Database): Promise<string[]> {
  const { results } = await db.prepare("SELECT key FROM features ORDER BY key").all<{ key: string }>();
  return results.map((r) => r.key);
}

/**
 * Customers with a live subscription (trialing, active, past_due) whose plan, at the version it is on,
 * enables the feature; grants are not counted. One row per feature; it reads an entry per live subscription.
 */
export async function entitledCustomers(db: D1Database): Promise<Map<string, number>> {
  const { results } = await db
    .prepare(
      `SELECT e.key AS feature_key, COUNT(DISTINCT s.customer_id) AS n
       FROM subscriptions s
       JOIN plans p ON p.id = s.plan_id
       JOIN plan_versions pv ON pv.plan_id = s.plan_id AND pv.version = COALESCE(s.plan_version, p.version)
       JOIN json_each(pv.entitlements) e
       WHERE s.status IN ('trialing', 'active', 'past_due') AND json_extract(e.value, '$.enabled') = 1
       GROUP BY e.key`,
    )
    .all<{ feature_key: string; n: number }>();
  return new Map(results.map((r) => [r.feature_key, r.n]));
}

export interface UpsellRow {
  customerId: string;
  planId: string;
  featureKey: string;
  used: number;
  limit: number;
}

/**
 * Customers whose current period's total (usage_periods rows whose period contains `now`, summed over
 * meters) is at least `threshold` x their limit: the sum of what their live subscriptions' plans give
 * (base plan and add-ons, at the versions they are on; plans always add), left out when one of them is
 * unlimited; grants are not counted. planId is the base plan. In (customer, feature) order after the
 * cursor, `limit` rows at most.
 */
export async function upsellCandidates(
  db: D1Database,
  q: { now: number; feature?: string; threshold: number; after: [string, string] | null; limit: number },
): Promise<UpsellRow[]> {
  const { results } = await db
    .prepare(
      `WITH used AS (
         SELECT customer_id, feature_key, SUM(total) AS used FROM usage_periods
         WHERE period_start <= ?1 AND (period_end IS NULL OR period_end > ?1)
           AND (?2 IS NULL OR feature_key = ?2) AND (?3 IS NULL OR (customer_id, feature_key) > (?3, ?4))
         GROUP BY customer_id, feature_key),
       limits AS (
         SELECT u.customer_id, u.feature_key, SUM(json_extract(e.value, '$.limit')) AS lim,
           MAX(json_type(e.value, '$.limit') NOT IN ('integer', 'real')) AS unlimited,
           MAX(CASE WHEN p.kind = 'base' THEN s.plan_id END) AS plan_id
         FROM used u
         JOIN subscriptions s ON s.customer_id = u.customer_id AND s.status IN ('trialing', 'active', 'past_due')
         JOIN plans p ON p.id = s.plan_id
         JOIN plan_versions pv ON pv.plan_id = s.plan_id AND pv.version = COALESCE(s.plan_version, p.version)
         JOIN json_each(pv.entitlements) e ON e.key = u.feature_key
         GROUP BY u.customer_id, u.feature_key)
       SELECT u.customer_id AS customerId, COALESCE(l.plan_id, '') AS planId, u.feature_key AS featureKey,
         u.used AS used, l.lim AS "limit"
       FROM used u JOIN limits l ON l.customer_id = u.customer_id AND l.feature_key = u.feature_key
       WHERE l.unlimited = 0 AND l.lim > 0 AND u.used >= ?5 * l.lim
       ORDER BY u.customer_id, u.feature_key LIMIT ?6`,
    )
    .bind(q.now, q.feature ?? null, q.after?.[0] ?? null, q.after?.[1] ?? null, q.threshold, q.limit)
    .all<UpsellRow>();
  return results;
}

export interface TrialRow {
  planId: string;
  started: number;
  converted: number;
  expired: number;
}

/**
 * Trials started in [from, to), per plan: converted (went on paying: active or past due now, or
 * cancelled after the trial's end) and expired (ran out, or cancelled during the trial); the rest are
 * still trialing. Reads the partial index subscriptions_trials.
 */
export async function trialConversions(db: D1Database, from: number, to: number): Promise<TrialRow[]> {
  const { results } = await db
    .prepare(
      `SELECT plan_id AS planId, COUNT(*) AS started,
         SUM(CASE WHEN status IN ('active', 'past_due') OR (status = 'canceled' AND ended_at >= trial_end) THEN 1 ELSE 0 END) AS converted,
         SUM(CASE WHEN status = 'expired' OR (status = 'canceled' AND (ended_at IS NULL OR ended_at < trial_end)) THEN 1 ELSE 0 END) AS expired
       FROM subscriptions WHERE trial_end IS NOT NULL AND started_at >= ?1 AND started_at < ?2
       GROUP BY plan_id ORDER BY plan_id LIMIT 1000`,
    )
    .bind(from, to)
    .all<TrialRow>();
  return results;
}
