// GET /admin/v1/usage/export: every customer's period totals streamed from D1 (NDJSON or CSV),
// keyset-paged while streaming, and one customer's raw events streamed from R2.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { exportPeriods } from "../src/store/usage-ledger";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { countingEnv } from "./helpers/counting";
import { ledgerEvents } from "./helpers/ledger";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, iso, T0 } from "./helpers/time";
import { expectProblem, testWorker, uid } from "./helpers/worker";

const w = testWorker();
let key: string;
let viewer: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["usage"]);
  viewer = await operatorToken("viewer", "val-viewer");
});

const DAY0 = Date.parse("2026-03-10T00:00:00.000Z"); // the day of T0
const meter = (customerId: string) => env.METER.get(env.METER.idFromName(customerId));
const consume = (customerId: string, amount: number) =>
  w.call("POST", "/v1/usage", { key, body: { customerId, feature: "api_calls", amount } });
const exportOf = (query: string, headers: Record<string, string> = {}) =>
  w.call("GET", `/admin/v1/usage/export?${query}`, { key: viewer, headers });
const ndjson = (text: string) =>
  text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));

/** A meter-lab customer who used `first` on T0's day and `second` on the next (api_calls: a day's counter). */
async function twoDays(first: number, second: number) {
  const id = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "meter-lab" }] })).id;
  await w.at(T0, () => consume(id, first));
  await w.at(T0 + DAY_MS, () => consume(id, second));
  await meter(id).flush();
  return id;
}

describe("period totals", () => {
  it("stream as NDJSON: closed periods final, the open one a running total", async () => {
    const a = await twoDays(3, 4);
    const b = await twoDays(5, 6);
    const res = await exportOf(`from=${iso(DAY0)}&to=${iso(DAY0 + 2 * DAY_MS)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    const mine = ndjson(res.text).filter((r) => r.customerId === a || r.customerId === b);
    const row = (customerId: string, day: number, total: number, final: boolean) => ({
      customerId,
      feature: "api_calls",
      periodStart: iso(DAY0 + day * DAY_MS),
      periodEnd: iso(DAY0 + (day + 1) * DAY_MS),
      total,
      final,
    });
    // Ordered by period start, then customer.
    expect(mine).toEqual(
      [row(a, 0, 3, true), row(b, 0, 5, true), row(a, 1, 4, false), row(b, 1, 6, false)].sort(
        (x, y) => x.periodStart.localeCompare(y.periodStart) || x.customerId.localeCompare(y.customerId),
      ),
    );
    // `to` bounds the period starts.
    const day0 = ndjson((await exportOf(`from=${iso(DAY0)}&to=${iso(DAY0 + DAY_MS)}`)).text);
    expect(day0.filter((r) => r.customerId === a)).toEqual([row(a, 0, 3, true)]);
  });

  it("stream as CSV with format=csv or Accept: text/csv", async () => {
    const a = await twoDays(7, 1);
    const q = `from=${iso(DAY0)}&to=${iso(DAY0 + DAY_MS)}`;
    for (const res of [await exportOf(`${q}&format=csv`), await exportOf(q, { Accept: "text/csv" })]) {
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
      const lines = res.text.split("\r\n");
      expect(lines[0]).toBe("customerId,feature,periodStart,periodEnd,total,final");
      expect(lines.filter((l) => l.startsWith(`${a},`))).toEqual([
        `${a},api_calls,${iso(DAY0)},${iso(DAY0 + DAY_MS)},7,true`,
      ]);
    }
  });

  it("pages through D1 while streaming: 1,234 periods, each exactly once, in order", async () => {
    // Seeded in one batch, in a range no other test uses.
    const from = Date.parse("2030-01-01T00:00:00.000Z");
    const ids = Array.from({ length: 617 }, (_, i) => `exp-${String(i).padStart(4, "0")}`);
    const insert = env.DB.prepare(
      "INSERT INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, final, through_seq, closed_at) VALUES (?1, 'm', ?2, ?3, ?4, ?5, 1, 1, ?4)",
    );
    await env.DB.batch(
      ids.flatMap((id, i) => [
        insert.bind(id, "api_calls", from, from + DAY_MS, i),
        insert.bind(id, "seats", from + DAY_MS, from + 2 * DAY_MS, i + 1),
      ]),
    );
    const rows = ndjson((await exportOf(`from=${iso(from)}&to=${iso(from + 2 * DAY_MS)}`)).text);
    expect(rows).toHaveLength(1234);
    expect(rows.map((r) => `${r.periodStart}/${r.customerId}`)).toEqual([
      ...ids.map((id) => `${iso(from)}/${id}`),
      ...ids.map((id) => `${iso(from + DAY_MS)}/${id}`),
    ]);
    expect(rows.reduce((s, r) => s + r.total, 0)).toBe(2 * ((616 * 617) / 2) + 617);
  });
});

describe("raw events", () => {
  it("stream one customer's events of the window from R2, each once, with the totals' sum", async () => {
    const a = await twoDays(2, 9);
    const res = await exportOf(`from=${iso(DAY0)}&to=${iso(DAY0 + DAY_MS)}&customerId=${a}&raw=true`);
    expect(res.status).toBe(200);
    const lines = ndjson(res.text);
    expect(lines.map((l) => [l.kind, l.amount, l.periodStart])).toEqual([
      ["consume", 2, iso(DAY0)],
      ["close", 2, iso(DAY0)],
    ]);
    expect(lines.map((l) => l.seq)).toEqual(
      (await ledgerEvents(a)).filter((e) => e.periodStart === DAY0).map((e) => e.seq),
    );
    const csv = await exportOf(`from=${iso(DAY0)}&to=${iso(DAY0 + 2 * DAY_MS)}&customerId=${a}&raw=true&format=csv`);
    expect(csv.text.split("\r\n")[0]).toBe(
      "customerId,meterId,seq,kind,feature,amount,periodStart,periodEnd,occurredAt,idempotencyKey,entityId",
    );
    expect(csv.text.split("\r\n").filter((l) => l !== "")).toHaveLength(4); // header, day 0's two, day 1's one
  });
});

describe("refusals", () => {
  it("bad windows and a raw export without a customer are 400s; the export needs an operator", async () => {
    const q = `from=${iso(DAY0)}&to=${iso(DAY0 + DAY_MS)}`;
    expectProblem(await exportOf(`from=${iso(DAY0)}&to=${iso(DAY0)}`), 400, "validation");
    expectProblem(await exportOf("from=yesterday&to=today"), 400, "validation");
    expectProblem(await exportOf(`to=${iso(DAY0)}`), 400, "validation");
    expectProblem(await exportOf(`${q}&raw=true`), 400, "validation");
    expectProblem(await exportOf(`${q}&format=xml`), 400, "validation");
    expectProblem(
      await exportOf(`from=${iso(DAY0)}&to=${iso(DAY0 + 400 * DAY_MS)}&customerId=x&raw=true`),
      400,
      "validation",
    );
    expectProblem(await exportOf(`${q}&customerId=../acme&raw=true`), 400, "validation");
    expect((await w.call("GET", `/admin/v1/usage/export?${q}`)).status).toBe(401);
    expect((await w.call("GET", `/admin/v1/usage/export?${q}`, { key })).status).toBe(403);
  });
});

describe("at scale", () => {
  it("100,000 customers in one period: the first and the last page of the export each read about a page of rows (501 and 502 of 100,000)", async () => {
    const start = Date.parse("2031-01-01T00:00:00.000Z");
    // One statement seeds them all (the way test/catalog-scale.test.ts seeds): every monthly customer's
    // period starts on the same instant, the export's worst case for a keyset on the start.
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
       INSERT INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, final, through_seq, closed_at)
       SELECT printf('scale-%06d', i), 'm', 'api_calls', ?1, ?2, 1, 1, 1, ?2 FROM n`,
    )
      .bind(start, start + 31 * DAY_MS)
      .run();
    const { counter, env: counted } = countingEnv();
    const first = await exportPeriods(counted.DB, start, start + DAY_MS, null, 500);
    const firstRead = counter.d1RowsRead;
    const deep = await exportPeriods(
      counted.DB,
      start,
      start + DAY_MS,
      [start, "scale-099400", "api_calls", start + 31 * DAY_MS],
      500,
    );
    const deepRead = counter.d1RowsRead - firstRead;
    expect(first.map((r) => r.customerId).slice(0, 2)).toEqual(["scale-000000", "scale-000001"]);
    expect(deep).toHaveLength(500);
    expect(deep[0]?.customerId).toBe("scale-099401");
    expect(firstRead).toBeLessThan(600); // measured: 501
    expect(deepRead).toBeLessThan(600); // measured: 502
  }, 60_000);
});
