// The test environment is the worker's Env plus the test-only bindings of vitest.config.ts: the schema
// read from schema.sql, and the migrations with the database test/migrations.test.ts applies them to.
type TollgateEnv = import("../src/env").Env;
declare namespace Cloudflare {
  interface Env extends TollgateEnv {
    TEST_SCHEMA: import("cloudflare:test").D1Migration[];
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    MIGRATIONS_DB: D1Database;
    /** A second Worker that calls Tollgate only through its TollgateRpc entrypoint (test/fixtures/rpc-caller.mjs). */
    RPC_CALLER: Fetcher;
  }
}
