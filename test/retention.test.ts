// Retention (store/retention.ts): the cron archives audit and history rows older than their
// retention to R2, deletes them from D1 in bounded pages, and an archived audit month reads back
// exactly as the audit API showed it before. The file's first rows are the old ones (ids rise with
// time, as they do in production), so nothing else is written before them.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { applyRetention } from "../src/store/retention";
import { operatorToken } from "./helpers/operators";
import { DAY_MS, T0 } from "./helpers/time";
import { testWorker, uid } from "./helpers/worker";

const w = testWorker();
const RETENTION = { auditMs: 400 * DAY_MS, historyMs: 400 * DAY_MS, usageMs: 400 * DAY_MS };
const at = (s: string) => Date.parse(s);

const insertAudit = (entityId: string, instant: number, n: number) =>
  env.DB.prepare(
    `INSERT INTO audit_log (at, actor, actor_type, action, entity_type, entity_id, customer_id, before, after, reason, request_id)
     VALUES (?1, 'ops@example.com', 'operator', 'customer.update', 'customer', ?2, ?2, ?3, ?4, 'a "quoted", reason', ?5)`,
  ).bind(instant, entityId, JSON.stringify({ n }), JSON.stringify({ n: n + 1, tags: ["a,b"] }), `req-${n}`);

describe("audit retention", () => {
  it("archives old entries by month, deletes them, and the archive reads back identical", async () => {
    const entity = uid();
    const old = [at("2024-11-03T10:00:00Z"), at("2024-11-20T10:00:00Z"), at("2024-12-01T00:00:00Z")];
    await env.DB.batch([...old.map((t, i) => insertAudit(entity, t, i)), insertAudit(entity, T0 - DAY_MS, 9)]);
    const viewer = await operatorToken("viewer", "val-viewer");
    const list = async () =>
      (await w.call("GET", `/admin/v1/audit?entityId=${entity}&limit=50`, { key: viewer })).json.items;
    const before = await list();
    expect(before).toHaveLength(4);

    const report = await applyRetention(env.DB, env.LEDGER, RETENTION, T0);
    expect(report.archived.audit_log).toBe(3);
    expect(report.more).toBe(false);
    const after = await list();
    expect(after).toEqual(before.slice(0, 1)); // newest first: only the recent one is left

    const month = async (m: string) => {
      const res = await w.call("GET", `/admin/v1/audit/archive?month=${m}`, { key: viewer });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
      return res.text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l));
    };
    // Oldest first in the archive; newest first in the list: the same entries, field for field.
    expect([...(await month("2024-11")), ...(await month("2024-12"))]).toEqual(before.slice(1).reverse());
    expect(await month("2025-01")).toEqual([]);

    // Again: nothing more to archive, the objects are unchanged.
    expect((await applyRetention(env.DB, env.LEDGER, RETENTION, T0)).archived.audit_log).toBe(0);
    expect((await env.LEDGER.list({ prefix: "archive/audit_log/" })).objects).toHaveLength(2);
  });

  it("keeps the log append-only for every row not archived", async () => {
    const { id } = (await env.DB.prepare("SELECT MAX(id) AS id FROM audit_log").first<{ id: number }>())!;
    await expect(env.DB.prepare("DELETE FROM audit_log WHERE id = ?1").bind(id).run()).rejects.toThrow(/append-only/);
    await expect(env.DB.prepare("UPDATE audit_log SET actor = 'x'").run()).rejects.toThrow(/append-only/);
  });

  it("an archive month must be yyyy-mm, and the archive needs an operator", async () => {
    const viewer = await operatorToken("viewer", "val-viewer");
    for (const m of ["2024-13", "2024-1", "x"])
      expect((await w.call("GET", `/admin/v1/audit/archive?month=${m}`, { key: viewer })).status).toBe(400);
    expect((await w.call("GET", "/admin/v1/audit/archive?month=2024-11")).status).toBe(401);
  });
});

describe("history retention", () => {
  it("drops what was superseded before the cutoff, keeps the row in force at it, and archives the dropped", async () => {
    const c = uid();
    const part = env.DB.prepare(
      "INSERT INTO part_history (customer_id, rev, compiled_at, part) VALUES (?1, ?2, ?3, ?4)",
    );
    await env.DB.batch([
      part.bind(c, 1, T0 - 500 * DAY_MS, '{"rev":1}'),
      part.bind(c, 2, T0 - 450 * DAY_MS, '{"rev":2}'), // in force at the cutoff (T0 - 400 days)
      part.bind(c, 3, T0 - 10 * DAY_MS, '{"rev":3}'),
      env.DB.prepare(
        "INSERT INTO usage_events_legacy (customer_id, meter_id, seq, feature_key, amount, kind, period_start, period_end, occurred_at) VALUES (?1, '', 1, 'api_calls', 2, 'consume', 0, 1, ?2), (?1, '', 2, 'api_calls', 3, 'consume', 0, 1, ?3)",
      ).bind(c, T0 - 401 * DAY_MS, T0 - 399 * DAY_MS),
      env.DB.prepare(
        `INSERT INTO usage_periods (customer_id, meter_id, feature_key, period_start, period_end, total, final, through_seq, closed_at)
         VALUES (?1, 'm', 'api_calls', ?2, ?3, 7, 1, 1, ?3), (?1, 'm', 'seats', ?2, NULL, 2, 0, 1, ?3), (?1, 'm', 'api_calls', ?3, ?4, 1, 1, 2, ?4)`,
      ).bind(c, T0 - 500 * DAY_MS, T0 - 470 * DAY_MS, T0 - 440 * DAY_MS),
    ]);
    const report = await applyRetention(env.DB, env.LEDGER, RETENTION, T0);
    expect(report.archived).toMatchObject({ part_history: 1, usage_events_legacy: 1, usage_periods: 2 });
    // Closed periods older than the retention go; a never-resetting feature's open total stays.
    const periods = await env.DB.prepare("SELECT feature_key, final FROM usage_periods WHERE customer_id = ?1")
      .bind(c)
      .all();
    expect(periods.results).toEqual([{ feature_key: "seats", final: 0 }]);
    const revs = await env.DB.prepare("SELECT rev FROM part_history WHERE customer_id = ?1 ORDER BY rev").bind(c).all();
    expect(revs.results).toEqual([{ rev: 2 }, { rev: 3 }]);
    const legacy = await env.DB.prepare("SELECT seq FROM usage_events_legacy WHERE customer_id = ?1").bind(c).all();
    expect(legacy.results).toEqual([{ seq: 2 }]);
    const archived = (await env.LEDGER.list({ prefix: "archive/part_history/" })).objects;
    expect(archived).toHaveLength(1);
    const body = await (await env.LEDGER.get(archived[0]!.key))!.text();
    expect(JSON.parse(body.trim())).toEqual({
      customer_id: c,
      rev: 1,
      compiled_at: T0 - 500 * DAY_MS,
      part: '{"rev":1}',
    });
  });
});
