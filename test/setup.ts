import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// schema.sql, read by vitest.config.ts: the same file npm start and deploys apply.
await applyD1Migrations(env.DB, env.TEST_SCHEMA);
