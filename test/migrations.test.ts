// migrations/ applied in order (what `wrangler d1 migrations apply` does to a deployed database)
// must yield exactly schema.sql (what local development and the tests apply).
import { applyD1Migrations, type D1Migration } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import {
  diffSchemas,
  formatSchemaDiff,
  migrationNumberingProblems,
  normalizeSql,
  schemasEqual,
} from "../scripts/lib/schema-diff.mjs";

const bindings = env as unknown as { DB: D1Database; MIGRATIONS_DB: D1Database; TEST_MIGRATIONS: D1Migration[] };

const schemaOf = async (db: D1Database) =>
  (
    await db
      .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
      .all<{ type: string; name: string; sql: string }>()
  ).results;

beforeAll(async () => {
  await applyD1Migrations(bindings.MIGRATIONS_DB, bindings.TEST_MIGRATIONS);
});

describe("schema migrations", () => {
  it("are numbered 0001, 0002, ... without gaps, starting with the initial schema", () => {
    const names = bindings.TEST_MIGRATIONS.map((m) => m.name);
    expect(names[0]).toBe("0001_initial.sql");
    expect(migrationNumberingProblems(names)).toEqual([]);
  });

  it("applied in order yield exactly schema.sql (tables, indexes, triggers)", async () => {
    const expected = await schemaOf(bindings.DB);
    const actual = await schemaOf(bindings.MIGRATIONS_DB);
    const diff = diffSchemas(expected, actual);
    // On failure: before the first release, `cp schema.sql migrations/0001_initial.sql`; after it,
    // add migrations/NNNN_<what>.sql with the change (docs/operations.md, "Schema changes").
    expect(schemasEqual(diff), formatSchemaDiff(diff)).toBe(true);
    expect(expected.map((r) => r.name)).toEqual(
      expect.arrayContaining(["customers", "audit_log", "audit_log_no_update", "subscriptions_plan"]),
    );
  });

  it("seed the same rows (catalog_rev) as schema.sql", async () => {
    const meta = await bindings.MIGRATIONS_DB.prepare("SELECT key, value FROM meta ORDER BY key").all();
    expect(meta.results).toEqual([{ key: "catalog_rev", value: 0 }]);
  });

  it("keep the append-only audit log triggers working", async () => {
    const db = bindings.MIGRATIONS_DB;
    await db
      .prepare(
        "INSERT INTO audit_log (at, actor, actor_type, action, entity_type, entity_id) VALUES (1, 'test', 'system', 'x', 'y', 'z')",
      )
      .run();
    await expect(db.prepare("DELETE FROM audit_log").run()).rejects.toThrow(/append-only/);
  });

  it("compare statements up to comments, layout and case, but not up to meaning", () => {
    const a = [{ type: "table", name: "t", sql: "CREATE TABLE t (\n  a TEXT, -- note\n  b INTEGER NOT NULL\n)" }];
    expect(
      schemasEqual(diffSchemas(a, [{ type: "table", name: "t", sql: "create table t (a text, b integer not null)" }])),
    ).toBe(true);
    const changed = diffSchemas(a, [
      { type: "table", name: "t", sql: "CREATE TABLE t (a TEXT, b INTEGER)" },
      { type: "index", name: "t_a", sql: "CREATE INDEX t_a ON t (a)" },
    ]);
    expect(changed).toMatchObject({ missing: [], extra: ["index t_a"], different: [{ name: "table t" }] });
    expect(formatSchemaDiff(changed)).toContain("~ table t");
    expect(normalizeSql("CREATE INDEX IF NOT EXISTS x ON t ( a )")).toBe("create index x on t(a)");
  });

  it("reject badly numbered migration files", () => {
    expect(migrationNumberingProblems(["0001_initial.sql", "0003_gap.sql", "0003_again.sql", "0004-Bad.sql"])).toEqual([
      "0003_again.sql: expected number 0002",
      "0003_gap.sql: expected number 0004",
      "0004-Bad.sql: name it NNNN_lowercase_words.sql",
    ]);
  });
});
