// The meter's own SQLite schema, versioned: each Durable Object carries its tables with it, so a
// schema change cannot be applied once like a D1 migration; every meter upgrades itself when it
// next starts (the constructor runs this under blockConcurrencyWhile, before any call is served).
//
// To change the schema, append a version to MIGRATIONS; never edit one that has shipped. The
// version a meter is at is the `schema_version` row of its `meta` table. Meters created before
// versioning have the version 1 tables but no row: they are recognised as version 1.
//
// Tables (version 10):
//   counters      one row per metered feature and period definition (domain/periods.ts
//                 periodDefinition): that definition's current period and usage
//   idempotency   answers by idempotency key (kept 24 h; indexed by created_at, version 6)
//   reservations  held units: open, then settled, released or expired
//   outbox        ledger entries not yet in R2 (meter/ledger.ts)
//   pending_totals period totals not yet in D1 (version 6, meter/period-totals.ts)
//   meta          key/value: customer_id, last_seen, flush_failures, schema_version,
//                 ledger_unnamed_through (version 3), ledger_batch and totals_written_at
//                 (version 6)
//   terms_version one row: the newest terms version ("c.k") the meter has seen (version 4,
//                 meter/terms-version.ts)
//   usage_alerts  alerts raised per counter period; event_outbox: raised alerts not yet in D1
//                 (version 5, meter/usage-alerts.ts)
//   leases        a sharded customer's shard: its lease per feature, definition and period
//                 (version 7, meter/shard-leases.ts)
//   top_ups       credits drawn from each top-up grant, and from each carried balance (issue 17,
//                 meter/top-ups.ts); rollovers: unused allowance carried into later periods (meter/rollovers.ts)
//   entity_counters each entity's usage of a feature with a per-entity limit; seats: seats assigned to
//                 entities (version 9, meter/entities.ts); outbox.entity_id: the entity of an entry (version 10)
const MIGRATIONS: readonly (string | ((sql: SqlStorage) => void))[] = [
  // 1: the schema as it was when versioning began (IF NOT EXISTS: a pre-versioning meter may run it).
  `
  CREATE TABLE IF NOT EXISTS counters (feature TEXT PRIMARY KEY, period_start INTEGER NOT NULL, period_end INTEGER, used REAL NOT NULL);
  CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, answer TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, feature TEXT NOT NULL, amount REAL NOT NULL, expires_at INTEGER NOT NULL,
    state TEXT NOT NULL, terms TEXT NOT NULL, answer TEXT, created_at INTEGER NOT NULL, closed_at INTEGER);
  CREATE INDEX IF NOT EXISTS reservations_open ON reservations (state, feature, expires_at);
  CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, feature TEXT NOT NULL, amount REAL NOT NULL,
    period_start INTEGER NOT NULL, period_end INTEGER, occurred_at INTEGER NOT NULL, idempotency_key TEXT);
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
  `,
  // 2: counters keyed by (feature, definition), so that a feature whose reset changes and changes
  // back finds its own counter again (security review M7). A version 1 row does not say which
  // definition it was counted under: it keeps its period and usage with the definition
  // UNRECORDED_DEFINITION, and the meter gives it to the first definition whose current period is
  // exactly that period, or closes it into the ledger when that period ends (customer-meter.ts).
  `
  CREATE TABLE counters_v2 (feature TEXT NOT NULL, definition TEXT NOT NULL DEFAULT '', period_start INTEGER NOT NULL,
    period_end INTEGER, used REAL NOT NULL, PRIMARY KEY (feature, definition));
  INSERT INTO counters_v2 (feature, definition, period_start, period_end, used)
    SELECT feature, '', period_start, period_end, used FROM counters;
  DROP TABLE counters;
  ALTER TABLE counters_v2 RENAME TO counters;
  `,
  // 3: the D1 ledger's rows name the meter object (meter_id, D1 migration 0003), because every
  // meter counts its seq from 1. Entries still in the outbox may have reached D1 already, under the
  // default meter id, with the acknowledgement lost: the last of them is remembered, and they are
  // sent under the default id again (meter/ledger.ts), so that retry stays idempotent. A new meter
  // has none (0).
  `
  INSERT OR IGNORE INTO meta (key, value) SELECT 'ledger_unnamed_through', COALESCE(MAX(seq), 0) FROM outbox;
  `,
  // 4: the meter is the authority on the terms it enforces (issue 13): the newest version of the
  // customer's terms it has seen, customer revision and catalog revision (domain/version.ts), from a
  // consume or reserve or from a write's push. A call whose terms are older is refused (stale_terms).
  // An existing meter starts at 0.0: the first call teaches it. Idempotent (IF NOT EXISTS, OR IGNORE).
  `
  CREATE TABLE IF NOT EXISTS terms_version (id INTEGER PRIMARY KEY CHECK (id = 1), customer_rev INTEGER NOT NULL,
    catalog_rev INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  INSERT OR IGNORE INTO terms_version (id, customer_rev, catalog_rev, updated_at) VALUES (1, 0, 0, 0);
  `,
  // 5: usage alerts for outbound webhooks (issue 15, meter/usage-alerts.ts): which alerts were raised for
  // which counter period (once per period per threshold), and the raised ones not yet recorded in D1.
  `
  CREATE TABLE IF NOT EXISTS usage_alerts (feature TEXT NOT NULL, definition TEXT NOT NULL, period_start INTEGER NOT NULL,
    alert TEXT NOT NULL, PRIMARY KEY (feature, definition, period_start, alert));
  CREATE TABLE IF NOT EXISTS event_outbox (cause TEXT PRIMARY KEY, event TEXT NOT NULL);
  `,
  // 6: the raw ledger goes to R2 and D1 keeps period totals (issue 14, docs/storage.md). Idempotency keys
  // get an index on created_at, so their clean-up reads only the expired rows, never the whole table.
  // pending_totals: the change of each period's total not yet in D1 (meter/period-totals.ts). It starts
  // with what D1 lacks today: each open counter's usage not still in the outbox (the events flushed so
  // far went to D1's old per-event table, which no total was read from until the period closed), and the
  // total of each period whose close is still queued, less its queued events; the queued entries add
  // the rest when they are flushed. period_end -1: a never-resetting feature (NULLs never conflict).
  `
  CREATE INDEX IF NOT EXISTS idempotency_by_created ON idempotency (created_at);
  CREATE TABLE IF NOT EXISTS pending_totals (feature TEXT NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER NOT NULL,
    delta REAL NOT NULL, final INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    PRIMARY KEY (feature, period_start, period_end));
  INSERT INTO pending_totals (feature, period_start, period_end, delta, final, first_seq, last_seq)
    SELECT feature, period_start, COALESCE(period_end, -1), SUM(used), 0, 0, 0 FROM counters
    GROUP BY feature, period_start, COALESCE(period_end, -1);
  INSERT INTO pending_totals (feature, period_start, period_end, delta, final, first_seq, last_seq)
    SELECT feature, period_start, COALESCE(period_end, -1), SUM(amount), 0, 0, 0 FROM outbox WHERE kind = 'close'
    GROUP BY feature, period_start, COALESCE(period_end, -1) HAVING true
    ON CONFLICT (feature, period_start, period_end) DO UPDATE SET delta = delta + excluded.delta;
  INSERT INTO pending_totals (feature, period_start, period_end, delta, final, first_seq, last_seq)
    SELECT feature, period_start, COALESCE(period_end, -1), -SUM(amount), 0, 0, 0 FROM outbox WHERE kind IN ('consume', 'record', 'settle')
    GROUP BY feature, period_start, COALESCE(period_end, -1) HAVING true
    ON CONFLICT (feature, period_start, period_end) DO UPDATE SET delta = delta + excluded.delta;
  `,
  // 7: allowance leases (issue 16, meter/shard-leases.ts): on a sharded customer's meter, the lease it
  // holds from the coordinator per (feature, definition, period), the seq of its last message, the
  // bound it was granted under, when it is returned (expires_at; 0: nothing out), whether a return
  // still has to reach the coordinator, and what the coordinator last said of the rest.
  `
  CREATE TABLE IF NOT EXISTS leases (feature TEXT NOT NULL, definition TEXT NOT NULL, period_start INTEGER NOT NULL,
    granted REAL NOT NULL, seq INTEGER NOT NULL, bound REAL NOT NULL, expires_at INTEGER NOT NULL, unreported INTEGER NOT NULL,
    unleased REAL NOT NULL, others_used REAL NOT NULL, shard INTEGER NOT NULL, shards INTEGER NOT NULL, residency TEXT,
    PRIMARY KEY (feature, definition, period_start));
  `,
  // 8: credits and rollover (issue 17, meter/top-ups.ts, meter/rollovers.ts): how much of each top-up grant
  // (or carried balance) was drawn, and the carried balances.
  `
  CREATE TABLE IF NOT EXISTS top_ups (feature TEXT NOT NULL, grant_id TEXT NOT NULL, used REAL NOT NULL, until INTEGER,
    PRIMARY KEY (feature, grant_id));
  CREATE TABLE IF NOT EXISTS rollovers (feature TEXT NOT NULL, id TEXT NOT NULL, amount REAL NOT NULL, from_at INTEGER NOT NULL,
    until INTEGER NOT NULL, PRIMARY KEY (feature, id));
  `,
  // 9: entities (issue 17, meter/entities.ts): each entity's usage of a feature with a per-entity limit, in
  // its current period (one row per feature and entity; ended periods collected by period_end), and the
  // seats of seats features assigned to named entities.
  `
  CREATE TABLE IF NOT EXISTS entity_counters (feature TEXT NOT NULL, entity_id TEXT NOT NULL, period_start INTEGER NOT NULL,
    period_end INTEGER, used REAL NOT NULL, PRIMARY KEY (feature, entity_id));
  CREATE INDEX IF NOT EXISTS entity_counters_by_end ON entity_counters (period_end);
  CREATE TABLE IF NOT EXISTS seats (feature TEXT NOT NULL, entity_id TEXT NOT NULL, assigned_at INTEGER NOT NULL,
    PRIMARY KEY (feature, entity_id));
  CREATE INDEX IF NOT EXISTS seats_by_entity ON seats (entity_id);
  `,
  // 10: the entity of each ledger entry (outbox.entity_id). A step of its own, and only when the column is
  // missing: ADD COLUMN is the one statement here that cannot be run twice.
  (sql) => {
    const has = sql.exec("SELECT 1 FROM pragma_table_info('outbox') WHERE name = 'entity_id'").toArray().length > 0;
    if (!has) sql.exec("ALTER TABLE outbox ADD COLUMN entity_id TEXT");
  },
];

/** The meta key of the last outbox seq queued before the ledger named meters (version 3). */
export const LEDGER_UNNAMED_THROUGH = "ledger_unnamed_through";

/** The definition of a counter migrated from version 1, which did not record it (the column's default). */
export const UNRECORDED_DEFINITION = "";

/** The version the code expects; a meter below it is migrated on start. */
export const METER_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the meter's tables to the current version. Synchronous: SQLite storage calls do not await. */
export function migrateMeterSchema(sql: SqlStorage): void {
  const { version, recorded } = readVersion(sql);
  if (recorded && version >= METER_SCHEMA_VERSION) return;
  for (const step of MIGRATIONS.slice(version)) typeof step === "string" ? sql.exec(step) : step(sql);
  sql.exec(
    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    METER_SCHEMA_VERSION,
  );
}

/** 0 for a new meter; 1 for one created before versioning (its tables, no version row). */
export function schemaVersion(sql: SqlStorage): number {
  return readVersion(sql).version;
}

function readVersion(sql: SqlStorage): { version: number; recorded: boolean } {
  const hasMeta = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").toArray().length > 0;
  if (!hasMeta) return { version: 0, recorded: false };
  const row = sql.exec("SELECT value FROM meta WHERE key = 'schema_version'").toArray()[0];
  return row ? { version: Number(row.value), recorded: true } : { version: 1, recorded: false };
}
