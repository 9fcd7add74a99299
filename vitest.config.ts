import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
  // The tests apply the very same schema.sql that `npm start` and deploys apply: never a copy.
  const schema = await readD1Migrations({ projectPath: import.meta.dirname, migrationsDir: ".", migrationsPattern: "schema.sql" });
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: { bindings: { TEST_SCHEMA: schema } },
      }),
    ],
    test: { setupFiles: ["./test/setup.ts"] },
  };
});
