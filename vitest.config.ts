import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const PROJECT = "tollgate";
const RUNNER = `vitest-plugin-runner-${PROJECT}`;

export default defineConfig(async () => {
  // The tests apply the very same schema.sql that `npm start` and deploys apply: never a copy.
  const schema = await readD1Migrations({
    projectPath: new URL(".", import.meta.url).pathname,
    migrationsDir: ".",
    migrationsPattern: "schema.sql",
  });
  // migrations/ applied in order must yield schema.sql (test/migrations.test.ts, on its own database).
  const migrations = await readD1Migrations({
    projectPath: new URL(".", import.meta.url).pathname,
    migrationsDir: "migrations",
  });
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          d1Databases: { MIGRATIONS_DB: "migrations-db" },
          // A second Worker bound to Tollgate's TollgateRpc entrypoint, as a calling app would be
          // (test/rpc.test.ts); the tests reach it through RPC_CALLER.
          serviceBindings: { RPC_CALLER: "rpc-caller" },
          workers: [
            {
              name: "rpc-caller",
              modules: true,
              scriptPath: "./test/fixtures/rpc-caller.mjs",
              compatibilityDate: "2026-10-01",
              serviceBindings: {
                // The worker under test runs as the pool's runner, named after this project (test.name).
                TOLLGATE: { name: RUNNER, entrypoint: "TollgateRpc" },
                TOLLGATE_SCOPED: { name: RUNNER, entrypoint: "TollgateRpc", props: { customerId: "rpc-scoped" } },
              },
            },
          ],
          // The webhook producer sends to a real local queue that no consumer reads: the tests hand the
          // deliveries to the worker's queue handler themselves (test/helpers/webhooks.ts), with their
          // clock and receivers, so no background consumer races them.
          queueProducers: { WEBHOOK_QUEUE: { queueName: "tollgate-webhooks-test" } },
          bindings: {
            TEST_SCHEMA: schema,
            TEST_MIGRATIONS: migrations,
            // Analytics off for every test but test/analytics.test.ts, which turns each mode on by env: the
            // local sink's D1 writes would otherwise show in the tests that count D1 rows.
            ANALYTICS_MODE: "off",
            // Test-only secrets (real deployments set these with `wrangler secret put`).
            ADMIN_BOOTSTRAP_KEY: "tg_test-bootstrap-key-000000000000000000000000",
            OPERATOR_JWT_ISSUER: "https://operators.tollgate.test",
            OPERATOR_JWT_AUDIENCE: "tollgate-admin",
            OPERATOR_JWT_SECRET: "test-operator-secret-at-least-32-bytes-long!!",
            // The keyed checksum of API keys (src/auth/api-keys.ts): forgeries are refused without any I/O.
            API_KEY_CHECKSUM_SECRET: "test-api-key-checksum-secret-0123456789",
            // Entitlement-token signing keys (test-only): the first signs, both are published in the JWKS.
            TOKEN_SIGNING_KEYS: JSON.stringify([
              {
                kty: "OKP",
                crv: "Ed25519",
                kid: "test-ed25519-1",
                x: "FxY5YxUlfA3ScbMEHRD3TINxPtC8M8ziwIY3oT1-Fp4",
                d: "UZW6y5_E6ao7dWU7rG81MXBwLxlqOa_EOPzUQ1cYda4",
              },
              {
                kty: "EC",
                crv: "P-256",
                kid: "test-es256-2",
                x: "mSmUBCJF2nnAPNBUHf2lWSYs-Jjw1ekBVCkCybRU3hg",
                y: "tJeqNmjT57gAvaAEuIxmZNxXec5QAgBLbs4FoTHN-_c",
                d: "6a_tkkgGix1kLQqGxqLEJ0LZsBxefkbnCSZDchBQawM",
              },
            ]),
          },
        },
      }),
    ],
    test: { name: PROJECT, setupFiles: ["./test/setup.ts"] },
  };
});
