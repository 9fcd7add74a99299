#!/usr/bin/env node
// Recovery tools for the KV snapshots (KV is never the source of record: D1 is).
//
//   node scripts/snapshots.mjs verify  [--env E | --url URL --key KEY] [--customer ID] [--json]
//   node scripts/snapshots.mjs rebuild [--env E | --url URL --key KEY] [--customer ID] [--force]
//   common: [--limit 50] [--concurrency 6] [--max-rps N] [--restart] [--state-file PATH]
//
// Both walk every customer a page at a time through the admin API (POST /admin/v1/snapshots/*).
// Resumable: the cursor is saved after every page in .wrangler/snapshots-<command>-<env>.json; run the
// same command again to continue, --restart to start over. Rate-aware: --limit customers per request,
// --concurrency customers at once on the worker, --max-rps requests per second, and a 429/503 with
// Retry-After is waited out and retried. Exit codes: 0 ok, 1 failed, 2 usage, 4 verify found drift.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createAdminClient } from "./lib/admin-client.mjs";
import { parseCli, UsageError } from "./lib/cli.mjs";
import { projectRoot, runMain, targetFrom } from "./lib/node-target.mjs";
import { catalogDrifted, formatJobSummary, newJobState, renderProgress, runPagedJob } from "./lib/paged-job.mjs";

const USAGE = `usage: node scripts/snapshots.mjs <verify|rebuild> [--env local|staging|production] [--url URL --key KEY]
         [--customer ID] [--force] [--limit N] [--concurrency N] [--max-rps N] [--restart] [--state-file PATH] [--json]`;

async function main() {
  const args = parseCli(process.argv.slice(2), {
    flags: ["force", "restart", "json", "help"],
    options: ["env", "url", "key", "customer", "limit", "concurrency", "max-rps", "state-file"],
  });
  const o = args.options;
  if (o.help) return void console.log(USAGE);
  const [command] = args.positionals;
  if (command !== "verify" && command !== "rebuild") throw new UsageError("the command is verify or rebuild");
  if (o.force && command !== "rebuild") throw new UsageError("--force applies to rebuild only");
  const target = targetFrom(o);
  const body = {
    limit: int(o.limit, "limit", 50),
    concurrency: int(o.concurrency, "concurrency", 6),
    ...(o.customer ? { customerId: o.customer } : {}),
    ...(command === "rebuild" ? { force: Boolean(o.force) } : {}),
  };
  const maxRps = o.maxRps === undefined ? undefined : Number(o.maxRps);
  if (maxRps !== undefined && !(maxRps > 0)) throw new UsageError("--max-rps must be a positive number");

  // One customer: one request, nothing to resume.
  const stateFile = o.customer
    ? null
    : (o.stateFile ?? join(projectRoot, ".wrangler", `snapshots-${command}-${target.name}.json`));
  const state = loadState(stateFile, command, target.url, Boolean(o.restart));
  const tty = process.stderr.isTTY;
  const client = createAdminClient(target, {
    onRetry: (ms, status) =>
      process.stderr.write(`\n(${status} from the worker: waiting ${Math.ceil(ms / 1000)} s, then retrying)\n`),
  });
  process.on("SIGINT", () => {
    process.stderr.write(
      `\nInterrupted after ${state.processed} customers; ${stateFile ? `run the same command to resume (${stateFile}).` : "nothing to resume."}\n`,
    );
    process.exit(130);
  });

  await runPagedJob({
    request: client.request,
    path: `/admin/v1/snapshots/${command}`,
    body,
    state,
    maxRps,
    save: (s) => stateFile && saveState(stateFile, s),
    onPage: (s) => {
      if (tty) process.stderr.write(`\r${renderProgress(s)}`);
      else if (s.pages % 10 === 0 || s.done) process.stderr.write(`${renderProgress(s)}\n`);
    },
  });
  if (tty) process.stderr.write("\n");
  if (stateFile) rmSync(stateFile, { force: true });
  console.log(o.json ? JSON.stringify(state, null, 2) : formatJobSummary(state));
  return command === "verify" && (Object.keys(state.byKind).length > 0 || catalogDrifted(state)) ? 4 : 0;
}

function int(value, name, fallback) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer`);
  return n;
}

function loadState(file, command, url, restart) {
  if (file && !restart) {
    let saved = null;
    try {
      saved = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      /* no saved run */
    }
    if (saved && !saved.done) {
      if (saved.target !== url)
        throw new UsageError(`${file} belongs to a run against ${saved.target}; pass --restart to start over`);
      process.stderr.write(
        `Resuming ${command} after customer '${saved.cursor}' (${saved.processed} done; --restart to start over).\n`,
      );
      return saved;
    }
  }
  return newJobState(command, url, { startedAt: new Date().toISOString() });
}

function saveState(file, state) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`);
}

await runMain(main, USAGE);
