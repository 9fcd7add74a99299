#!/usr/bin/env node
// Catalog-as-code: the catalog file in git is the reviewed source; this script shows what applying
// it would change and applies it through the admin API (audited like any admin write).
//
//   node scripts/catalog.mjs diff  FILE [--env E | --url URL --key KEY] [--json]
//   node scripts/catalog.mjs apply FILE [--env E | --url URL --key KEY] [--allow-destructive]
//
// Validation is the server's job (the same zod schema as the API): a bad file is a 400 with the
// offending fields, printed here. `apply` asks the worker for the diff first and refuses a change
// that takes a feature or limit away from customers unless --allow-destructive is given (the guard
// lives here: PUT /admin/v1/catalog itself applies what it is given, audited).
// Exit codes: 0 ok, 1 failed, 2 usage, 3 refused (destructive).
import { readFileSync } from "node:fs";
import { createAdminClient } from "./lib/admin-client.mjs";
import { destructiveRefusal, formatApplyResult, formatDiff } from "./lib/catalog-report.mjs";
import { parseCli, UsageError } from "./lib/cli.mjs";
import { runMain, targetFrom } from "./lib/node-target.mjs";

const USAGE = `usage: node scripts/catalog.mjs <diff|apply> FILE [--env local|staging|production] [--url URL --key KEY] [--allow-destructive] [--json]
  --env local (default): http://127.0.0.1:8787 with ADMIN_BOOTSTRAP_KEY from .dev.vars
  --env staging|production: TOLLGATE_URL and TOLLGATE_ADMIN_KEY from the environment`;

async function main() {
  const args = parseCli(process.argv.slice(2), {
    flags: ["allow-destructive", "json", "help"],
    options: ["env", "url", "key"],
  });
  if (args.options.help) return void console.log(USAGE);
  const [command, file] = args.positionals;
  if (!["diff", "apply"].includes(command ?? "") || !file)
    throw new UsageError("a command (diff or apply) and a FILE are required");
  const catalog = readCatalogFile(file);
  const target = targetFrom(args.options);
  const client = createAdminClient(target, {
    onRetry: (ms, status) => console.error(`(${status}: retrying in ${Math.ceil(ms / 1000)} s)`),
  });
  const where = { file, target: target.url };

  // The diff is computed by the worker, against the catalog and the subscriptions in its D1.
  const diff = await client.request("POST", "/admin/v1/catalog/diff", catalog);
  if (command === "diff") {
    console.log(args.options.json ? JSON.stringify(diff, null, 2) : formatDiff(diff, where));
    return 0;
  }
  const refusal = destructiveRefusal(diff);
  if (refusal && !args.options.allowDestructive) {
    console.error(`${formatDiff(diff, where)}\n\nRefused: nothing was applied.`);
    return 3;
  }
  if (refusal) console.error(`${refusal.replace(/ Review.*$/, "")} Applying anyway (--allow-destructive).`);
  const result = await client.request("PUT", "/admin/v1/catalog", catalog);
  console.log(formatApplyResult(result, where));
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
