#!/usr/bin/env node
// Deploys Tollgate to a named environment with wrangler, checking first everything that can be checked.
//
//   npm run deploy -- --env staging|production [--dry-run] [--outdir DIR]
//
// In order; nothing remote changes until every local check has passed:
//   1. configuration: wrangler.toml's [env.E] resolves; no REPLACE_WITH_ placeholder is left
//   2. secrets: every `[env.E.secrets] required` name is set (`wrangler secret list --env E`); and
//      neither ADMIN_BOOTSTRAP_KEY nor OPERATOR_JWT_SECRET is a var, a required secret or a set
//      secret: production fails, staging warns (the worker refuses both in production anyway)
//   3. schema: migrations/ are numbered without gaps, and applying them with wrangler (to a throwaway
//      local D1) yields exactly schema.sql
//   4. bundle: `wrangler deploy --dry-run --outdir`, and its size against the Worker size limits
//   5. `wrangler d1 migrations apply DB --env E --remote` (applies only the pending ones)
//   6. `wrangler deploy --env E`
// --dry-run runs what needs no Cloudflare account (1, 3, 4, and the part of 2 that wrangler.toml
// answers; placeholders only warn) and prints what 2, 5 and 6 would run. CI runs it for both
// environments. Secrets set remotely are known only to `wrangler secret list`, which needs an account.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parseCli, UsageError } from "./lib/cli.mjs";
import {
  credentialProblems,
  missingSecrets,
  PRODUCTION_REFUSED_SECRETS,
  placeholdersIn,
  sizeReport,
} from "./lib/deploy-report.mjs";
import { projectRoot, runMain } from "./lib/node-target.mjs";
import {
  diffSchemas,
  formatSchemaDiff,
  isSchemaObject,
  migrationNumberingProblems,
  schemasEqual,
} from "./lib/schema-diff.mjs";

const USAGE = "usage: npm run deploy -- --env staging|production [--dry-run] [--outdir DIR]";
const WRANGLER = join(projectRoot, "node_modules", "wrangler", "bin", "wrangler.js");
const D1_BINDING = "DB";

async function main() {
  const args = parseCli(process.argv.slice(2), { flags: ["dry-run", "help"], options: ["env", "outdir"] });
  if (args.options.help) return void console.log(USAGE);
  const env = args.options.env;
  if (env !== "staging" && env !== "production") throw new UsageError("--env staging or --env production is required");
  const dry = Boolean(args.options.dryRun);
  const outdir = args.options.outdir ?? join(projectRoot, "dist", env);
  const problems = [];
  const fail = (msg) => {
    problems.push(msg);
    console.log(`  FAIL ${msg}`);
  };

  console.log(`Tollgate deploy to ${env}${dry ? " (dry run: no Cloudflare account used)" : ""}\n`);
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: join(projectRoot, "wrangler.toml"), env }, { hideWarnings: true });

  console.log("1. Configuration");
  console.log(
    `  worker ${config.name}; crons ${JSON.stringify(config.triggers?.crons ?? [])}; observability ${config.observability?.enabled ? "on" : "off"}`,
  );
  const placeholders = placeholdersIn(config);
  if (placeholders.length === 0) console.log("  ok   no placeholders left");
  else if (dry) console.log(`  warn placeholders to replace before a real deploy: ${placeholders.join(", ")}`);
  else
    fail(
      `placeholders left in wrangler.toml [env.${env}]: ${placeholders.join(", ")} (docs/operations.md, "First deploy")`,
    );

  console.log("\n2. Secrets");
  const required = config.secrets?.required ?? [];
  const listed = dry ? undefined : checkSecrets(env, required, fail);
  if (dry)
    console.log(
      `  would check that ${required.join(", ")} are set and ${PRODUCTION_REFUSED_SECRETS.join(", ")} are not: wrangler secret list --env ${env}`,
    );
  const credentials = credentialProblems(env, config, listed);
  for (const p of credentials) {
    if (p.level === "fail") fail(p.message);
    else console.log(`  warn ${p.message}`);
  }
  if (credentials.length === 0)
    console.log(`  ok   ${PRODUCTION_REFUSED_SECRETS.join(", ")} not in wrangler.toml${dry ? "" : " nor set"}`);

  console.log("\n3. Schema");
  checkSchema(env, fail);

  console.log("\n4. Bundle");
  bundle(env, outdir, fail);

  if (problems.length > 0) {
    console.log(
      `\n${problems.length} problem(s); ${dry ? "a real deploy would stop here" : "nothing was changed remotely"}.`,
    );
    return 1;
  }
  if (dry) {
    console.log(
      `\n5. Would apply pending migrations: wrangler d1 migrations apply ${D1_BINDING} --env ${env} --remote`,
    );
    console.log(`6. Would deploy: wrangler deploy --env ${env}\n\nDry run passed.`);
    return 0;
  }
  console.log("\n5. Migrations");
  if (wrangler(["d1", "migrations", "apply", D1_BINDING, "--env", env, "--remote"], { inherit: true }).status !== 0)
    return 1;
  console.log("\n6. Deploy");
  if (wrangler(["deploy", "--env", env], { inherit: true }).status !== 0) return 1;
  console.log(`\nDeployed to ${env}. Check it: curl -fsS "$TOLLGATE_URL/readyz"`);
  return 0;
}

/** Checks the required secrets are set; returns `wrangler secret list` output (undefined when it failed). */
function checkSecrets(env, required, fail) {
  const res = wrangler(["secret", "list", "--env", env, "--format", "json"]);
  if (res.status !== 0)
    return void fail(`wrangler secret list failed (logged in? \`npx wrangler login\`):\n${res.stderr.trim()}`);
  let listed;
  try {
    listed = JSON.parse(res.stdout);
  } catch {
    return void fail("wrangler secret list did not print JSON");
  }
  const missing = missingSecrets(required, listed);
  if (missing.length > 0)
    fail(`secrets not set: ${missing.join(", ")}; set each with: npx wrangler secret put NAME --env ${env}`);
  else console.log(`  ok   ${required.join(", ")} set`);
  return listed;
}

/** Applies migrations/ with wrangler to a throwaway local D1, schema.sql to another, and compares. */
function checkSchema(env, fail) {
  const files = readdirSync(join(projectRoot, "migrations"))
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const numbering = migrationNumberingProblems(files);
  if (numbering.length > 0) fail(`migration files: ${numbering.join("; ")}`);
  else console.log(`  ok   ${files.length} migration(s): ${files.join(", ")}`);
  const dirs = [mkdtempSync(join(tmpdir(), "tollgate-migrations-")), mkdtempSync(join(tmpdir(), "tollgate-schema-"))];
  try {
    const applied = wrangler([
      "d1",
      "migrations",
      "apply",
      D1_BINDING,
      "--env",
      env,
      "--local",
      "--persist-to",
      dirs[0],
    ]);
    if (applied.status !== 0)
      return fail(`wrangler could not apply the migrations:\n${applied.stdout}${applied.stderr}`);
    const loaded = wrangler([
      "d1",
      "execute",
      D1_BINDING,
      "--env",
      env,
      "--local",
      "--persist-to",
      dirs[1],
      "--file",
      join(projectRoot, "schema.sql"),
    ]);
    if (loaded.status !== 0) return fail(`wrangler could not apply schema.sql:\n${loaded.stderr}`);
    const [fromMigrations, fromSchema] = dirs.map((dir) => dumpSchema(env, dir));
    const diff = diffSchemas(fromSchema, fromMigrations);
    if (schemasEqual(diff))
      console.log(
        `  ok   applied in order, migrations yield exactly schema.sql (${fromSchema.filter((r) => isSchemaObject(r.name)).length} objects)`,
      );
    else fail(`${formatSchemaDiff(diff)}\n  Add a migration for the change (docs/operations.md, "Schema changes").`);
    console.log(
      `  remote: only migrations not yet recorded in the database's d1_migrations table are applied (step 5)`,
    );
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

function dumpSchema(env, dir) {
  const res = wrangler([
    "d1",
    "execute",
    D1_BINDING,
    "--env",
    env,
    "--local",
    "--persist-to",
    dir,
    "--json",
    "--command",
    "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL",
  ]);
  if (res.status !== 0) throw new Error(`wrangler d1 execute failed: ${res.stderr}`);
  return JSON.parse(res.stdout)[0].results;
}

function bundle(env, outdir, fail) {
  rmSync(outdir, { recursive: true, force: true });
  const res = wrangler(["deploy", "--dry-run", "--env", env, "--outdir", outdir]);
  if (res.status !== 0) return fail(`wrangler deploy --dry-run failed:\n${res.stdout}${res.stderr}`);
  const modules = readdirSync(outdir).filter(
    (f) => !f.endsWith(".map") && f !== "README.md" && statSync(join(outdir, f)).isFile(),
  );
  const files = modules.map((name) => {
    const bytes = readFileSync(join(outdir, name));
    return { name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
  const report = sizeReport(files);
  for (const line of report.lines.slice(1)) console.log(line);
  console.log(`  bundle written to ${outdir}`);
  if (!report.ok) fail("the bundle exceeds the Worker size limit");
}

/** Runs the project's wrangler with this Node (the pinned one); captures output unless `inherit`. */
function wrangler(args, { inherit = false } = {}) {
  const res = spawnSync(process.execPath, [WRANGLER, ...args], {
    cwd: projectRoot,
    encoding: "utf8",
    stdio: inherit ? "inherit" : "pipe",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout ?? "", stderr: res.stderr ?? "" };
}

await runMain(main, USAGE);
