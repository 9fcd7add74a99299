#!/usr/bin/env node
// npm run bench [-- options]: Tollgate against the runtime's own limit. docs/benchmark.md says what
// each figure means. Options (defaults in DEFAULTS, --quick in QUICK):
//   --quick                   CI smoke: tiny sizes and durations; checks the harness works, not the speed
//   --json FILE               also write the results as JSON
//   --customers N             customers seeded (check-cold draws from all of them)
//   --features N              catalog features (half boolean, a quarter config, a quarter metered)
//   --warm N                  working set of check-warm/-metered, entitlements, usage-spread
//   --cache-entries N         the isolate snapshot cache size for this run (SNAPSHOT_CACHE_MAX_ENTRIES)
//   --hot-limit N             usage-hot's limit (reached during the run, so admission is checked at the edge)
//   --hot-shards N            usage-hot-sharded's shard meters (customers.meter_shards)
//   --hot-sharded-limit N     usage-hot-sharded's limit (lower than usage-hot's: reached at a lower rate too)
//   --catalog-customers N     subscribers of the plan that catalog-change edits (batch-inserted into D1)
//   --warmup S --duration S --latency-duration S   seconds per phase of each scenario
//   --rounds N                the saturation phase in N alternating rounds with the baseline (ratios: medians)
//   --connections N           connections at saturation (the paced phase uses as many)
//   --do-latency MS           every meter call waits MS first (a meter on another continent; 0: none)
//   --generator wrk|autocannon   default: wrk if installed, else autocannon
//   --scenarios a,b,...       a subset (baselines are added when needed)
//   --eval-seconds S          time per size in the pure evaluation mode
//   --memory-count N          snapshots parsed per size in the memory measurement
//   --no-http | --no-eval | --no-memory   skip a part
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseCli } from "../lib/cli.mjs";
import { measureCatalogChange } from "./catalog-change.mjs";
import { pickGenerator } from "./load.mjs";
import { measure } from "./measure.mjs";
import { table, targetLines, targets } from "./report.mjs";
import { scenarios } from "./scenarios.mjs";
import { adminCall, HOT_CUSTOMER, HOT_FEATURE, HOT_SHARDED_CUSTOMER, seed } from "./seed.mjs";
import { SERVED_BY, startServer } from "./server.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEFAULTS = {
  customers: 2000,
  features: 20,
  warm: 400,
  cacheEntries: 500,
  hotLimit: 15000,
  hotShards: 4,
  hotShardedLimit: 2000,
  catalogCustomers: 100_000,
  warmup: 2,
  duration: 6,
  rounds: 3,
  latencyDuration: 6,
  connections: 32,
  evalSeconds: 1,
  memoryCount: 2000,
  doLatency: 0,
};
const QUICK = {
  customers: 60,
  features: 8,
  warm: 20,
  cacheEntries: 30,
  hotLimit: 300,
  hotShards: 4,
  hotShardedLimit: 300,
  catalogCustomers: 1000,
  warmup: 0.5,
  duration: 1,
  rounds: 1,
  latencyDuration: 1,
  connections: 8,
  evalSeconds: 0.2,
  memoryCount: 200,
  doLatency: 0,
};
const NUMERIC = Object.keys(DEFAULTS);

const execFileP = promisify(execFile);
const log = (msg) => process.stderr.write(`${msg}\n`);

function options(argv) {
  const kebab = (k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const { options: o } = parseCli(argv, {
    flags: ["quick", "no-http", "no-eval", "no-memory"],
    options: ["json", "generator", "scenarios", ...NUMERIC.map(kebab)],
  });
  const base = o.quick ? QUICK : DEFAULTS;
  const out = { ...o };
  for (const k of NUMERIC) {
    out[k] = o[k] === undefined ? base[k] : Number(o[k]);
    // Every size and duration must be positive; the injected meter latency may be 0 (none).
    const ok = k === "doLatency" ? out[k] >= 0 : out[k] > 0;
    if (!ok) throw new Error(`--${kebab(k)} must be a ${k === "doLatency" ? "non-negative" : "positive"} number`);
  }
  if (out.warm > out.cacheEntries)
    throw new Error("--warm must fit in --cache-entries (check-warm's working set fits the isolate cache)");
  if (out.customers <= out.cacheEntries)
    throw new Error("--customers must exceed --cache-entries (check-cold needs more customers than the cache holds)");
  return out;
}

/** The top-level [vars] of wrangler.toml, so the bench runs with the configuration the tests use. */
async function wranglerVars() {
  const { readFile } = await import("node:fs/promises");
  const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
  const section = /^\[vars\]\n([\s\S]*?)(?=^\[)/m.exec(toml)?.[1] ?? "";
  return Object.fromEntries([...section.matchAll(/^([A-Z_][A-Z0-9_]*)\s*=\s*"([^"]*)"/gm)].map((m) => [m[1], m[2]]));
}

async function runHttp(o) {
  const generator = pickGenerator(o.generator);
  const adminKey = `bench-admin-${randomBytes(24).toString("hex")}`;
  const vars = {
    ...(await wranglerVars()),
    ADMIN_BOOTSTRAP_KEY: adminKey,
    BENCH_INSTRUMENT: "on",
    SNAPSHOT_CACHE_MAX_ENTRIES: String(o.cacheEntries),
    // What staging and production run: a point per check and consume to Analytics Engine (the paired
    // check-warm-analytics scenarios switch it per request: src/bench/index.ts).
    ANALYTICS_MODE: "engine",
    BENCH_DO_LATENCY_MS: String(o.doLatency),
  };
  log(`building the worker and starting workerd...`);
  const server = await startServer({ root: ROOT, vars });
  const interrupted = () => server.stop().finally(() => process.exit(130));
  process.once("SIGINT", interrupted).once("SIGTERM", interrupted);
  try {
    log(
      `served by ${SERVED_BY} at ${server.url} (storage in ${server.storage}); load generator: ${generator} (own process)`,
    );
    log(`seeding ${o.customers} customers, ${o.features} features through the admin API...`);
    const seeded = await seed({
      url: server.url,
      adminKey,
      customers: o.customers,
      features: o.features,
      hotLimit: o.hotLimit,
      hotShards: o.hotShards,
      hotShardedLimit: o.hotShardedLimit,
    });
    log(`seeded in ${seeded.seconds.toFixed(1)} s`);
    const headers = { Authorization: `Bearer ${seeded.apiKey}`, "Content-Type": "application/json" };
    let list = scenarios({ features: seeded.features, warm: o.warm, customers: o.customers, hotShards: o.hotShards });
    if (o.scenarios) {
      const wanted = new Set(o.scenarios.split(","));
      for (const s of list) if (wanted.has(s.name) && s.baseline) wanted.add(s.baseline);
      list = list.filter((s) => wanted.has(s.name));
    }
    const rows = [];
    for (const spec of list) {
      log(`  ${spec.name}: ${spec.what}`);
      const baselineSpec = spec.baseline ? list.find((s) => s.name === spec.baseline) : null;
      rows.push(await measure({ server, generator, spec, baselineSpec, headers, o }));
    }
    const hot = await exactness(
      server,
      seeded,
      rows.find((r) => r.name === "usage-hot"),
      HOT_CUSTOMER,
      o.hotLimit,
    );
    const hotSharded = await exactness(
      server,
      seeded,
      rows.find((r) => r.name === "usage-hot-sharded"),
      HOT_SHARDED_CUSTOMER,
      o.hotShardedLimit,
    );
    if (hotSharded) {
      const one = rows.find((r) => r.name === "usage-hot");
      const sharded = rows.find((r) => r.name === "usage-hot-sharded");
      hotSharded.shards = o.hotShards;
      // Each against the bare RPC of its own rounds, so the machine's drift between the two cancels out.
      hotSharded.rpsVsHot = one?.rpsRatio && sharded.rpsRatio ? sharded.rpsRatio / one.rpsRatio : null;
    }
    log(
      `catalog-change: ${o.catalogCustomers} subscribers inserted into D1, one plan change, a second isolate watching...`,
    );
    const catalogChange = await measureCatalogChange({
      server,
      seeded,
      adminKey,
      customers: o.catalogCustomers,
      features: o.features,
    });
    return {
      generator,
      servedBy: SERVED_BY,
      catalogChange,
      storage: server.storage,
      seeding: { method: seeded.method, seconds: seeded.seconds },
      rows,
      hot,
      hotSharded,
    };
  } finally {
    await server.stop();
  }
}

/**
 * No over-admission on a hot customer: the counter (GET /v1/usage, summed over its shards) never
 * passes the limit and, once requests were denied, sits exactly at it (no admitted unit lost either).
 * Every admission a client read is in the counter; the counter can hold a few more: answers to
 * requests still in flight when the generator stopped, which the worker may not even see (workerd
 * cancels a request whose client went away).
 */
async function exactness(server, seeded, row, customerId, limit) {
  if (!row) return null;
  const usage = await adminCall(server.url, seeded.apiKey, "GET", `/v1/usage/${customerId}?feature=${HOT_FEATURE}`);
  const counter = usage.features[0].used;
  const reached = row.denied > 0;
  const exact =
    counter <= limit && (!reached || counter === limit) && row.admitted <= counter && row.meterAdmitted <= counter;
  return {
    counter,
    limit: limit,
    reached,
    workerSawAdmitted: row.meterAdmitted,
    clientsReadAdmitted: row.admitted,
    clientsReadDenied: row.denied,
    unreadAdmissions: counter - row.admitted,
    errors: row.errors,
    exact,
  };
}

async function child(script, args, nodeFlags = []) {
  const { stdout } = await execFileP(
    process.execPath,
    [...nodeFlags, join(ROOT, "scripts", "bench", script), ...args],
    { cwd: ROOT, maxBuffer: 16 << 20 },
  );
  return JSON.parse(stdout.trim().split("\n").pop());
}

async function main() {
  const o = options(process.argv.slice(2));
  const started = Date.now();
  const result = {
    startedAt: new Date().toISOString(),
    options: o,
    machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
  };
  if (!o.noEval) {
    log("pure evaluation in Node (no HTTP)...");
    result.evaluation = await child("evaluate.mjs", ["--seconds", String(o.evalSeconds)]);
  }
  if (!o.noEval) {
    log("analytics: ns per point on the check path, in Node (no HTTP)...");
    result.analyticsCost = await child("analytics.mjs", ["--seconds", String(o.evalSeconds)]);
  }
  if (!o.noMemory) {
    log("memory of parsed snapshots...");
    result.memory = await child("memory.mjs", [String(o.memoryCount)], ["--expose-gc"]);
  }
  if (!o.noHttp) Object.assign(result, await runHttp(o));
  result.targets = targets(
    result.rows ?? [],
    result.evaluation,
    result.memory,
    result.hot,
    o,
    result.catalogChange,
    result.analyticsCost,
    result.hotSharded,
  );
  result.seconds = (Date.now() - started) / 1000;
  print(result);
  if (o.json) await writeFile(o.json, `${JSON.stringify(result, null, 2)}\n`);
  const failures = (result.rows ?? []).filter((r) => r.throughput.requests === 0);
  if (failures.length > 0 || (result.hot && !result.hot.exact)) process.exitCode = 1;
}

function print(r) {
  const out = [];
  if (r.rows) {
    out.push(
      `Tollgate benchmark: served by ${r.servedBy}; load from ${r.generator} in its own process; ${r.machine.cpus} CPUs.`,
    );
    out.push(
      `Each scenario: ${r.options.warmup} s warm-up, ${r.options.duration} s at saturation (${r.options.connections} connections), ${r.options.latencyDuration} s paced at the rate shown (half the baseline's maximum; * = lower, 60% of what the scenario sustains).`,
    );
    out.push(
      `Ratios are against the baseline measured again with each scenario: ${r.options.rounds} alternating rounds at saturation, then ${r.options.rounds} alternating rounds paced at the same rate; each ratio is the median of the per-round ratios.`,
    );
    out.push(
      `Seeded ${r.options.customers} customers x ${r.options.features} features via ${r.seeding.method} in ${r.seeding.seconds.toFixed(1)} s; isolate cache ${r.options.cacheEntries} entries, warm set ${r.options.warm}.`,
    );
    out.push("", table(r.rows), "");
    const failed = r.rows.filter((row) => row.counts.http4xx + row.counts.http5xx > 0);
    if (failed.length > 0)
      out.push(
        `HTTP errors served (counted by the worker): ${failed.map((row) => `${row.name} ${row.counts.http4xx} 4xx, ${row.counts.http5xx} 5xx`).join("; ")}.`,
      );
    const idle = r.rows.filter((row) => row.serverBusy !== null && row.serverBusy < 0.85);
    if (idle.length > 0)
      out.push(
        `Note: workerd was under 85% of a core at saturation in ${idle.map((row) => `${row.name} (${Math.round(row.serverBusy * 100)}%)`).join(", ")}: there the load generator (${r.generator}), not the server, set the pace; install wrk (Debian package) for a faster generator.`,
      );
    if (r.hotSharded) {
      const h = r.hotSharded;
      out.push(
        `usage-hot-sharded (${h.shards} shards): counter ${h.counter} (summed over the shards), limit ${h.limit}${h.reached ? " (reached)" : ""}: ${h.exact ? "exact, no over-admission" : "MISMATCH"}; clients read ${h.clientsReadAdmitted} admitted + ${h.clientsReadDenied} denied, the worker saw ${h.workerSawAdmitted} admissions; ${h.errors} errors; req/s ${h.rpsVsHot === null ? "-" : `${h.rpsVsHot.toFixed(2)}x`} of usage-hot (one meter)`,
      );
    }
    for (const row of r.rows.filter((x) => x.errors > 0)) {
      const kinds = Object.entries(row.errorKinds ?? {})
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
      const w = row.workerErrors ?? {};
      out.push(
        `Errors in ${row.name}: ${row.errors} seen by ${r.generator} (${kinds || "no split"}); the worker answered ${w.http4xx ?? "?"} 4xx and ${w.http5xx ?? "?"} 5xx in that scenario's run${row.firstError ? `; the first: ${row.firstError}` : ""}.`,
      );
    }
    if (r.hot) {
      const h = r.hot;
      out.push(
        `usage-hot: meter counter ${h.counter}, limit ${h.limit}${h.reached ? " (reached)" : ""}: ${h.exact ? "exact, no over-admission" : "MISMATCH"}; clients read ${h.clientsReadAdmitted} admitted + ${h.clientsReadDenied} denied (${h.unreadAdmissions} admissions unread: in flight when the generator stopped), the worker saw ${h.workerSawAdmitted} admissions; ${h.errors} errors`,
      );
    }
  }
  if (r.catalogChange) {
    const cc = r.catalogChange;
    out.push(
      `catalog-change: ${cc.subscribers.toLocaleString("en-US")} subscribers (inserted in ${cc.seedSeconds.toFixed(1)} s); the write answered in ${cc.writeMs} ms with ${cc.kvWrites} KV writes, ${cc.d1Queries} D1 statements, ${cc.d1RowsWritten} D1 rows written (the same change to a plan nobody is on: ${cc.emptyPlan.kvWrites}, ${cc.emptyPlan.d1Queries}, ${cc.emptyPlan.d1RowsWritten}); a second isolate answered with the change after ${cc.secondsUntilSecondIsolate ?? "never (20 s)"} s (its catalog TTL: ${cc.catalogTtlMs} ms)`,
    );
  }
  if (r.evaluation)
    out.push(
      `Pure evaluation (Node ${r.evaluation.node}): ${r.evaluation.results.map((e) => `${e.features} features ${e.decisionsPerSecond.toLocaleString("en-US")}/s (${e.nsPerDecision} ns)`).join(", ")}`,
    );
  if (r.analyticsCost) {
    const a = r.analyticsCost.nsPerCheck;
    out.push(
      `Analytics per check (Node ${r.analyticsCost.node}, point built and handed over): engine ${Math.round(a.engine)} ns, local ${Math.round(a.local)} ns (analytics off: ${Math.round(a.off)} ns)`,
    );
  }
  if (r.memory)
    out.push(
      `Parsed snapshot heap / JSON length: ${r.memory.results.map((m) => `${m.features} features ${m.factor.toFixed(2)}`).join(", ")} (cache accounts ${r.memory.cache.accountingFactor}x)`,
    );
  out.push("", "Targets:", targetLines(r.targets), "", `Done in ${r.seconds.toFixed(0)} s.`);
  process.stdout.write(`${out.join("\n")}\n`);
}

await main();
