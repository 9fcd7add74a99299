// Builds the worker bundle and serves it on local workerd through the Miniflare API, with local KV,
// D1 (schema.sql applied) and the CustomerMeter and Publisher Durable Objects (SQLite storage), in memory. The bundle
// is the bench entry (src/bench/worker.ts): the production worker plus bench mode, with
// BenchCustomerMeter exported as CustomerMeter; src/index.ts, the production entry, has neither.
//
// Why not `wrangler dev`: on a small machine its proxy caps even a constant route at a few hundred
// requests per second, while workerd serving the same bundle directly does several thousand, so
// `wrangler dev` would measure the proxy rather than Tollgate.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { RPC_CALLER_PREFIX } from "./scenarios.mjs";

const run = promisify(execFile);

export const SERVED_BY =
  "workerd via the Miniflare API (not `wrangler dev`, whose proxy caps throughput), with local KV, D1 and SQLite Durable Objects";

export const BENCH_ENTRY = "src/bench/worker.ts";

/**
 * `wrangler deploy --dry-run` bundles the way a deploy would (top-level environment, same build
 * settings), from the bench entry instead of wrangler.toml's main.
 */
export async function buildBundle(root, entry = BENCH_ENTRY) {
  const outdir = await mkdtemp(join(tmpdir(), "tollgate-bench-"));
  const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  await run(process.execPath, [wrangler, "deploy", entry, "--dry-run", "--env=", "--outdir", outdir], {
    cwd: root,
    maxBuffer: 16 << 20,
  });
  return { dir: outdir, script: join(outdir, basename(entry).replace(/\.ts$/, ".js")) };
}

/** The compatibility date and flags from wrangler.toml, so the bench runs what the tests and deploys run. */
async function compatibility(root) {
  const toml = await readFile(join(root, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1];
  return {
    compatibilityDate: date,
    compatibilityFlags: flags ? [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1]) : [],
  };
}

/** schema.sql split into statements the way the tests split it (readD1Migrations), applied in one batch. */
async function applySchema(root, db) {
  const { readD1Migrations } = await import("@cloudflare/vitest-plugin");
  const [schema] = await readD1Migrations({ projectPath: root, migrationsDir: ".", migrationsPattern: "schema.sql" });
  await db.batch(schema.queries.map((q) => db.prepare(q)));
  return schema.queries.length;
}

/**
 * Starts workerd with the bundle. `vars` go in as plain-text bindings (the bootstrap key,
 * BENCH_INSTRUMENT, cache sizes); nothing here is written to wrangler.toml.
 */
export async function startServer({ root, vars, port = 0 }) {
  const bundle = await buildBundle(root);
  const compat = await compatibility(root);
  // This Miniflare's constructor takes its v5 shape; the documented (v4) option names convert to it.
  const options = convertV4MiniflareOptions({
    host: "127.0.0.1",
    port,
    workers: [
      {
        name: "tollgate",
        modules: true,
        scriptPath: bundle.script,
        modulesRoot: bundle.dir, // module names are relative to it (workerd refuses "..")
        ...compat,
        kvNamespaces: ["SNAPSHOTS"],
        d1Databases: ["DB"],
        r2Buckets: ["LEDGER"], // the usage ledger the meters flush to (and the archives)
        durableObjects: {
          METER: { className: "CustomerMeter", useSQLite: true },
          QUOTA: { className: "QuotaCoordinator", useSQLite: true },
          PUBLISHER: { className: "Publisher", useSQLite: true },
        },
        // The webhook producer, as wrangler.toml declares it (no endpoint exists in the bench: nothing is sent).
        queueProducers: { WEBHOOK_QUEUE: "tollgate-webhooks" },
        // Analytics Engine as wrangler.toml declares it (locally its writes go nowhere: the bench measures
        // what the worker pays to build and hand over a point, which is what production pays too).
        analyticsEngineDatasets: { ANALYTICS: { dataset: "tollgate_analytics" } },
        bindings: vars,
      },
      {
        // A second Worker calling Tollgate through a service binding (check-rpc), on its own path prefix.
        name: "rpc-caller",
        modules: true,
        scriptPath: join(root, "scripts", "bench", "rpc-caller.mjs"),
        ...compat,
        routes: [`*${RPC_CALLER_PREFIX}*`],
        serviceBindings: { TOLLGATE: { name: "tollgate", entrypoint: "TollgateRpc" } },
      },
    ],
  });
  // Storage on tmpfs where there is one: a SQLite commit then costs CPU, not this machine's fsync (a
  // few ms on a small VM's disk), which would otherwise be the limit of every Durable Object write.
  const storage = await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "tollgate-bench-storage-"));
  options.resourcePersistencePath = storage;
  options.logRequests = false; // otherwise every request is also reported to this Node process

  const mf = new Miniflare(options);
  const url = await mf.ready;
  const statements = await applySchema(root, await mf.getD1Database("DB"));
  const pid = workerdPid();
  return {
    url: url.origin,
    /** CPU seconds workerd has used so far (Linux /proc; null elsewhere): steadier than req/s on a busy machine. */
    cpuSeconds: () => (pid === null ? null : cpuSecondsOf(pid)),
    statements,
    storage,
    /** The local D1 database, for seeding at a scale the admin API would take minutes for. */
    d1: () => mf.getD1Database("DB"),
    async stop() {
      await mf.dispose();
      await rm(bundle.dir, { recursive: true, force: true });
      await rm(storage, { recursive: true, force: true });
    },
  };
}

/** The workerd that Miniflare started for us: our child process named workerd (Linux only). */
function workerdPid() {
  if (!existsSync("/proc/self/stat")) return null;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [comm, rest] = [
        stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        stat.slice(stat.lastIndexOf(")") + 2).split(" "),
      ];
      if (comm === "workerd" && Number(rest[1]) === process.pid) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return null;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime + stime
  } catch {
    return null;
  }
}
