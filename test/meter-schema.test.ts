// The meter's SQLite schema is versioned (src/meter/schema.ts): new meters start at the current
// version, and meters created before versioning (the version 1 tables, no version row) are
// recognised as version 1 and keep their data.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CustomerMeter } from "../src/meter/customer-meter";
import { METER_SCHEMA_VERSION, migrateMeterSchema, schemaVersion } from "../src/meter/schema";
import { uid } from "./helpers";

const meter = () => env.METER.get(env.METER.idFromName(uid("schema")));
const versionRow = (sql: SqlStorage) =>
  sql.exec("SELECT value FROM meta WHERE key = 'schema_version'").toArray()[0]?.value ?? null;

describe("meter schema", () => {
  it("a new meter is at the current version, with the version recorded", async () => {
    await runInDurableObject(meter(), (_m: CustomerMeter, state) => {
      expect(schemaVersion(state.storage.sql)).toBe(METER_SCHEMA_VERSION);
      expect(versionRow(state.storage.sql)).toBe(METER_SCHEMA_VERSION);
    });
  });

  it("a meter from before versioning (tables, no version row) is version 1 and keeps its counters", async () => {
    await runInDurableObject(meter(), (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      sql.exec("INSERT INTO counters (feature, period_start, period_end, used) VALUES ('api_calls', 0, NULL, 7)");
      sql.exec("DELETE FROM meta WHERE key = 'schema_version'");
      expect(schemaVersion(sql)).toBe(1);
      migrateMeterSchema(sql);
      expect(versionRow(sql)).toBe(METER_SCHEMA_VERSION);
      expect(sql.exec("SELECT used FROM counters WHERE feature = 'api_calls'").one().used).toBe(7);
    });
  });

  it("an empty store is version 0: nothing has been created yet", async () => {
    await runInDurableObject(meter(), (_m: CustomerMeter, state) => {
      const sql = state.storage.sql;
      for (const t of ["counters", "idempotency", "reservations", "outbox", "meta", "terms_version"])
        sql.exec(`DROP TABLE ${t}`);
      expect(schemaVersion(sql)).toBe(0);
      migrateMeterSchema(sql);
      expect(schemaVersion(sql)).toBe(METER_SCHEMA_VERSION);
    });
  });
});
