#!/usr/bin/env node
// Catalog-as-code: the catalog file in git is the reviewed source; this script shows what applying
// it would change and applies it through the admin API (audited like any admin write).
//
//   node scripts/catalog.mjs diff  FILE [--env E | --url URL --key KEY] [--json]
//   node scripts/catalog.mjs apply FILE [--env E | --url URL --key KEY] [--allow-destructive]
//
// Validation is the server's job (the same zod schema as the API): a bad file is a 400 with the
// offending fields, printed here. Exit codes: 0 ok, 1 failed, 2 usage, 3 refused (destructive).
import { readFileSync } from "node:fs";
import { createAdminClient } from "./lib/admin-client.mjs";
import { formatApplyResult } from "./lib/catalog-report.mjs";
import { UsageError, parseCli } from "./lib/cli.mjs";
import { runMain, targetFrom } from "./lib/node-target.mjs";

const USAGE = `usage: node scripts/catalog.mjs <diff|apply> FILE [--env local|staging|production] [--url URL --key KEY] [--allow-destructive] [--json]
  --env local (default): http://127.0.0.1:8787 with ADMIN_BOOTSTRAP_KEY from .dev.vars
  --env staging|production: TOLLGATE_URL and TOLLGATE_ADMIN_KEY from the environment`;

async function main() {
  const args = parseCli(process.argv.slice(2), { flags: ["allow-destructive", "json", "help"], options: ["env", "url", "key"] });
  if (args.options.help) return void console.log(USAGE);
  const [command, file] = args.positionals;
  if (!["diff", "apply"].includes(command ?? "") || !file) throw new UsageError("a command (diff or apply) and a FILE are required");
  const catalog = readCatalogFile(file);
  const target = targetFrom(args.options);
  const client = createAdminClient(target);
  const result = await client.request("PUT", "/admin/v1/catalog", catalog);
  console.log(formatApplyResult(result, { file, target: target.url }));
  return 0;
}

function readCatalogFile(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${err.code ?? err.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON: ${err.message}`);
  }
}

await runMain(main, USAGE);
