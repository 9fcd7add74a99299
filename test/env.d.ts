// The test environment is the worker's Env plus the schema the vitest config reads from schema.sql.
type TollgateEnv = import("../src/env").Env;
declare namespace Cloudflare {
  interface Env extends TollgateEnv {
    TEST_SCHEMA: import("cloudflare:test").D1Migration[];
  }
}
