import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
  // The tests apply the very same schema.sql that `npm start` and deploys apply: never a copy.
  const schema = await readD1Migrations({ projectPath: new URL(".", import.meta.url).pathname, migrationsDir: ".", migrationsPattern: "schema.sql" });
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_SCHEMA: schema,
            // Test-only secrets (real deployments set these with `wrangler secret put`).
            ADMIN_BOOTSTRAP_KEY: "tg_test-bootstrap-key-000000000000000000000000",
            OPERATOR_JWT_ISSUER: "https://operators.tollgate.test",
            OPERATOR_JWT_AUDIENCE: "tollgate-admin",
            OPERATOR_JWT_SECRET: "test-operator-secret-at-least-32-bytes-long!!",
          },
        },
      }),
    ],
    test: { setupFiles: ["./test/setup.ts"] },
  };
});
