// GET /v1/usage/{customerId} no longer aggregates every ledger row the customer ever had (security
// review M1): past periods are the closed periods' totals (usage_periods, written by the meter when a
// period closes), bounded by `from`/`to` (default: the last year) and served a page at a time
// (`limit`, opaque `cursor`, `nextCursor`); only the open period comes from the meter.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ledgerPrefix } from "../src/store/ledger-objects";
import { periodTotalStatements } from "../src/store/usage-ledger";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["usage"]);
});

const DAY0 = Date.parse("2026-03-10T00:00:00.000Z"); // the day of T0
const meter = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));
const consume = (customerId: string, amount: number) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount } });
const usage = (customerId: string, query = "") =>
  w.call("GET", `/v1/usage/${customerId}?feature=api_calls${query}`, { key });

/** A customer on meter-lab (api_calls: a day's counter) who used `day + 1` units on each of `days` days from T0's. */
async function customerWithDays(days: number) {
  const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
  for (let day = 0; day < days; day++) {
    await w.at(T0 + day * DAY_MS, () => consume(id, day + 1));
  }
  await meter(id).flush();
  return id;
}
const dayPeriod = (day: number) => ({
  periodStart: iso(DAY0 + day * DAY_MS),
  periodEnd: iso(DAY0 + (day + 1) * DAY_MS),
  total: day + 1,
});

describe("past periods come from the closed periods' totals", () => {
  it("still answer when the events behind them are gone (they are never re-summed)", async () => {
    const id = await customerWithDays(4); // days 0, 1, 2 closed; day 3 open
    await w.at(T0 + 3 * DAY_MS, async () => {
      const objects = await env.LEDGER.list({ prefix: ledgerPrefix(id) });
      expect(objects.objects.length).toBeGreaterThan(0);
      await env.LEDGER.delete(objects.objects.map((o) => o.key));
      const res = await usage(id);
      expect(res.status).toBe(200);
      expect(res.json.features[0]).toMatchObject({ used: 4, past: [dayPeriod(2), dayPeriod(1), dayPeriod(0)] });
      expect(res.json.nextCursor).toBeNull();
    });
  });

  it("and the D1 plan reads them through usage_periods, by customer and feature", async () => {
    const plan = await env.DB.prepare(
      `EXPLAIN QUERY PLAN SELECT feature_key, period_start, period_end, SUM(total) FROM usage_periods
       WHERE customer_id = ?1 AND feature_key IN (SELECT value FROM json_each(?2)) AND period_start >= ?3 AND period_start < ?4
       GROUP BY feature_key, period_start, period_end`,
    )
      .bind("c", '["api_calls"]', 0, 1)
      .all<{ detail: string }>();
    expect(plan.results.map((r) => r.detail).join("\n")).toMatch(/usage_periods USING INDEX usage_periods_by_feature/);
  });
});

describe("a late record (a timestamp in a period that had closed)", () => {
  it("adds to that period's total once, however often its flush is repeated", async () => {
    const id = await customerWithDays(2); // day 0 closed with 1
    await w.at(T0 + DAY_MS, async () => {
      const late = await w.call("POST", "/v1/usage", {
        key,
        body: { customerId: id, feature: "api_calls", amount: 5, mode: "record", timestamp: iso(T0) },
      });
      expect(late.json).toMatchObject({ allowed: true, used: 2 }); // today's counter is not charged
      await meter(id).flush();
      expect((await usage(id)).json.features[0].past).toEqual([{ ...dayPeriod(0), total: 6 }]);
      // A totals write whose acknowledgement was lost is sent again: its seqs are in the row already.
      const row = await env.DB.prepare(
        "SELECT meter_id, period_start, period_end, through_seq FROM usage_periods WHERE customer_id = ?1 AND period_start = ?2",
      )
        .bind(id, DAY0)
        .first<{ meter_id: string; period_start: number; period_end: number; through_seq: number }>();
      const again = {
        feature: "api_calls",
        period: { start: row!.period_start, end: row!.period_end },
        delta: 5,
        final: true,
        firstSeq: row!.through_seq,
        lastSeq: row!.through_seq,
      };
      await env.DB.batch(periodTotalStatements(env.DB, id, row!.meter_id, [again], T0 + DAY_MS));
      expect((await usage(id)).json.features[0].past).toEqual([{ ...dayPeriod(0), total: 6 }]);
    });
  });
});

describe("pages", () => {
  it("walk every closed period exactly once, newest first, `limit` at a time", async () => {
    const id = await customerWithDays(8); // 7 closed days
    await w.at(T0 + 7 * DAY_MS, async () => {
      const seen: unknown[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await usage(id, `&limit=3${cursor ? `&cursor=${cursor}` : ""}`);
        expect(res.status).toBe(200);
        const past = res.json.features[0].past;
        expect(past.length).toBeLessThanOrEqual(3);
        // Every page carries the open period, as before.
        expect(res.json.features[0]).toMatchObject({ used: 8, periodStart: iso(DAY0 + 7 * DAY_MS) });
        seen.push(...past);
        cursor = res.json.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0].map(dayPeriod));
    });
  });

  it("a cursor this API did not issue is a 400", async () => {
    const id = await customerWithDays(1);
    for (const cursor of ["nope", btoa(JSON.stringify({ a: 1 })), btoa(JSON.stringify(["api_calls", "x", null]))]) {
      const p = expectProblem(await usage(id, `&cursor=${encodeURIComponent(cursor)}`), 400, "validation");
      expect(p.errors).toEqual([{ path: "query.cursor", message: "invalid cursor" }]);
    }
    for (const limit of ["0", "201", "x"]) expectProblem(await usage(id, `&limit=${limit}`), 400, "validation");
  });
});

describe("from and to", () => {
  it("bound the periods by their start; from must be before to", async () => {
    const id = await customerWithDays(6); // days 0..4 closed
    await w.at(T0 + 5 * DAY_MS, async () => {
      const fromDay2 = await usage(id, `&from=${iso(DAY0 + 2 * DAY_MS)}`);
      expect(fromDay2.json.features[0].past).toEqual([dayPeriod(4), dayPeriod(3), dayPeriod(2)]);
      const window = await usage(id, `&from=${iso(DAY0 + DAY_MS)}&to=${iso(DAY0 + 3 * DAY_MS)}`);
      expect(window.json.features[0].past).toEqual([dayPeriod(2), dayPeriod(1)]);
      const p = expectProblem(await usage(id, `&from=${iso(DAY0 + 3 * DAY_MS)}&to=${iso(DAY0)}`), 400, "validation");
      expect(p.errors?.[0]?.path).toBe("query.from");
      expectProblem(await usage(id, "&from=yesterday"), 400, "validation");
    });
  });

  it("default to the last year: older periods are there only when asked for", async () => {
    const id = await customerWithDays(2); // day 0 closed
    const later = T0 + 400 * DAY_MS;
    await w.at(later, async () => {
      await consume(id, 1); // closes day 1
      await meter(id).flush();
      const recent = await usage(id);
      expect(recent.json.features[0].past).toEqual([]);
      const all = await usage(id, `&from=${iso(DAY0 - DAY_MS)}`);
      expect(all.json.features[0].past).toEqual([dayPeriod(1), dayPeriod(0)]);
    });
  });
});
