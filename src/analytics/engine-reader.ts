// Reading the points of engine-sink.ts back with Analytics Engine's SQL API:
// POST https://api.cloudflare.com/client/v4/accounts/{account}/analytics_engine/sql, the query as the
// body, a bearer token with Account Analytics Read. Analytics Engine samples at high volume and says by
// how much in _sample_interval, so every count is a sum of it and every quantity a sum of it times the
// quantity. Time filters are on the dataset's timestamp column, at second resolution. Caller text only
// ever enters a query as a quoted string literal (quote()); everything else is fixed or a number.
import { Problem } from "../http/problem";
import { activityTable, type DenialDimension, type DenialRow, type UsageBucket } from "../store/analytics";
import type { PointReader } from "./points";

export interface EngineQueryConfig {
  accountId: string;
  apiToken: string;
  dataset: string;
}

/** The blob of each denial dimension (engine-sink.ts's layout). */
const DENIAL_BLOB: Record<DenialDimension, string> = { reason: "blob6", plan: "blob4", country: "blob5" };

/** A ClickHouse string literal: backslashes and single quotes escaped. */
export const quote = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

const seconds = (ms: number) => Math.floor(ms / 1000);
const between = (from: number, to: number) =>
  `timestamp >= toDateTime(${seconds(from)}) AND timestamp < toDateTime(${seconds(to)})`;

export function engineReader(cfg: EngineQueryConfig, outbound: typeof fetch): PointReader {
  const ds = cfg.dataset.replace(/[^A-Za-z0-9_]/g, "");
  async function sql<Row>(text: string): Promise<Row[]> {
    const url = `https://api.cloudflare.com/client/v4/accounts/${encodeURIComponent(cfg.accountId)}/analytics_engine/sql`;
    let res: Response;
    try {
      res = await outbound(url, {
        method: "POST",
        headers: { Authorization: `Bearer ${cfg.apiToken}` },
        body: `${text} FORMAT JSON`,
      });
    } catch (err) {
      throw new Problem("unavailable", `Analytics Engine's SQL API could not be reached: ${String(err)}`);
    }
    if (!res.ok)
      throw new Problem(
        "unavailable",
        `Analytics Engine's SQL API answered ${res.status}: ${(await res.text()).slice(0, 200)}`,
      );
    const body = (await res.json()) as { data?: Row[] };
    return body.data ?? [];
  }
  const num = (v: unknown) => Number(v ?? 0) || 0;
  return {
    async activity(from, to) {
      const [counts, active, usage] = await Promise.all([
        sql<{ feature: string; checks: unknown; denials: unknown }>(
          `SELECT blob2 AS feature, SUM(_sample_interval) AS checks, SUM(_sample_interval * (1 - double1)) AS denials
           FROM ${ds} WHERE blob1 = 'check' AND ${between(from, to)} GROUP BY feature`,
        ),
        sql<{ feature: string; active: unknown }>(
          `SELECT blob2 AS feature, COUNT(DISTINCT blob3) AS active FROM ${ds}
           WHERE double1 = 1 AND ${between(from, to)} GROUP BY feature`,
        ),
        sql<{ feature: string; total: unknown; max: unknown; p50: unknown; p90: unknown }>(
          `SELECT feature, SUM(u) AS total, MAX(u) AS max, quantileExactWeighted(0.5)(u, 1) AS p50,
             quantileExactWeighted(0.9)(u, 1) AS p90
           FROM (SELECT blob2 AS feature, blob3 AS customer, SUM(_sample_interval * double2) AS u FROM ${ds}
                 WHERE blob1 = 'consume' AND double1 = 1 AND ${between(from, to)} GROUP BY feature, customer)
           GROUP BY feature`,
        ),
      ]);
      const { out, of } = activityTable();
      for (const r of counts) Object.assign(of(r.feature), { checks: num(r.checks), denials: num(r.denials) });
      for (const r of active) of(r.feature).activeCustomers = num(r.active);
      for (const r of usage)
        of(r.feature).usage = { total: num(r.total), p50: num(r.p50), p90: num(r.p90), max: num(r.max) };
      return out;
    },
    async usage(feature, bucketMs, from, to) {
      const rows = await sql<{ t: unknown; total: unknown; customers: unknown }>(
        `SELECT toUnixTimestamp(toStartOfInterval(timestamp, INTERVAL '${seconds(bucketMs)}' SECOND)) AS t,
           SUM(_sample_interval * double2) AS total, COUNT(DISTINCT blob3) AS customers
         FROM ${ds} WHERE blob1 = 'consume' AND double1 = 1 AND blob2 = ${quote(feature)} AND ${between(from, to)}
         GROUP BY t ORDER BY t`,
      );
      return rows.map((r): UsageBucket => ({ t: num(r.t) * 1000, total: num(r.total), customers: num(r.customers) }));
    },
    async denials(by, from, to, limit) {
      const blob = DENIAL_BLOB[by];
      const rows = await sql<{ featureKey: string; key: string; count: unknown }>(
        `SELECT blob2 AS featureKey, ${blob} AS key, SUM(_sample_interval) AS count FROM ${ds}
         WHERE blob1 = 'check' AND double1 = 0 AND ${between(from, to)}
         GROUP BY featureKey, key ORDER BY count DESC LIMIT ${Math.floor(limit)}`,
      );
      return rows.map((r): DenialRow => ({ featureKey: r.featureKey, key: r.key, count: num(r.count) }));
    },
  };
}
