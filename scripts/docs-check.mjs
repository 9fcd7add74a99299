#!/usr/bin/env node
// npm run docs:check [-- --until docs/api.md] [-- --keep] [-- --links-only]
//
// The documentation's examples, run as written (conventions: CONTRIBUTING.md, "Documentation"):
//   1. every relative link in README.md, CONTRIBUTING.md and docs/*.md resolves, anchors included;
//   2. a FRESH demo starts: `npm start` (scripts/dev.mjs) in a temporary copy of this tree, on a free
//      port, so a developer's own .wrangler/ state and .dev.vars are never touched;
//   3. the ```sh / ```bash blocks of each file run in order in ONE bash session per file
//      (`set -euo pipefail`; TOLLGATE_URL, TOLLGATE_KEY and ADMIN_KEY exported; cwd: the copy);
//      a non-zero exit fails the block;
//   4. a block followed by `<!-- output -->` and a ```json or ```text block must print that output:
//      JSON compared structurally, text line by line, "…" standing for what varies;
//   5. `<!-- docs:skip REASON -->` before a block skips it; the summary counts skips by reason.
// Files share the one demo, in reading order (docFiles): later files may rely on what earlier ones did.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCli } from "./lib/cli.mjs";
import { checkLinks, compareOutput, parseBlocks } from "./lib/docs-blocks.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
// Reading order, which is also run order: the front door first, then docs/ as the README lists it.
const DOCS_ORDER = [
  "model",
  "api",
  "admin",
  "lifecycle",
  "billing",
  "webhooks",
  "storage",
  "analytics",
  "console",
  "operations",
  "benchmark",
];
const BLOCK_TIMEOUT_MS = 180_000;
const DEMO_TIMEOUT_MS = 240_000;

const args = parseCli(process.argv.slice(2), { flags: ["keep", "links-only", "help"], options: ["until"] });
if (args.options.help) {
  console.log(
    "usage: npm run docs:check [-- --until FILE] [-- --keep] [-- --links-only]\n  --until FILE  run the files up to and including FILE (later files depend on earlier ones)\n  --keep        keep the temporary copy (its .wrangler/dev.log, the blocks and their output)",
  );
  process.exit(0);
}

function docFiles() {
  const docs = existsSync(join(root, "docs"))
    ? readdirSync(join(root, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => f.slice(0, -3))
    : [];
  const ordered = [
    ...DOCS_ORDER.filter((d) => docs.includes(d)),
    ...docs.filter((d) => !DOCS_ORDER.includes(d)).sort(),
  ];
  return ["README.md", ...ordered.map((d) => `docs/${d}.md`), "CONTRIBUTING.md"].filter((f) =>
    existsSync(join(root, f)),
  );
}

// ---------------------------------------------------------------------------------------------
// The demo and the shell.

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const SKIP_IN_COPY = new Set(["node_modules", ".wrangler", ".dev.vars", "dist", ".git", "bench-results"]);

/** A copy of the working tree (uncommitted docs included) with node_modules linked, not copied. */
function makeCopy() {
  const base = mkdtempSync(join(tmpdir(), "tollgate-docs-"));
  const copy = join(base, "tollgate");
  mkdirSync(copy);
  for (const entry of readdirSync(root)) {
    if (SKIP_IN_COPY.has(entry)) continue;
    cpSync(join(root, entry), join(copy, entry), { recursive: true });
  }
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"), "dir");
  // What `npm install`'s prepare step builds (the /docs assets, the typed client): fresh, in the copy.
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: copy, stdio: "ignore" });
  mkdirSync(join(base, "blocks"));
  return { base, copy, work: join(base, "blocks") };
}

function commonEnv(copy) {
  const env = { ...process.env };
  // npm run puts the tree's node_modules/.bin first; keep the copy's first so `npx` and `npm run` find it.
  env.PATH = `${join(copy, "node_modules", ".bin")}:${env.PATH}`;
  env.WRANGLER_SEND_METRICS = "false";
  // Local request.cf is Miniflare's: the cf.json it fetches for your connection, or offline a placeholder
  // (country US). Fetching is off here, so every run sees the placeholder, wherever it runs.
  env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  for (const name of ["TOLLGATE_URL", "TOLLGATE_KEY", "ADMIN_KEY", "TOLLGATE_ADMIN_KEY", "ADMIN_BOOTSTRAP_KEY"])
    delete env[name];
  delete env.npm_config_prefix;
  return env;
}

async function startDemo(copy, port, env) {
  const child = spawn("node", ["scripts/dev.mjs", "--port", String(port)], {
    cwd: copy,
    env,
    detached: true, // its own process group: stopped as a whole (wrangler, workerd) at the end
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const started = Date.now();
  while (!out.includes("Tollgate is running at")) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${out}`);
    if (Date.now() - started > DEMO_TIMEOUT_MS) {
      await stopDemo(child);
      throw new Error(`npm start did not finish within ${DEMO_TIMEOUT_MS / 1000} s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, seconds: (Date.now() - started) / 1000 };
}

function stopDemo(child) {
  if (child.exitCode !== null) return;
  try {
    process.kill(-child.pid, "SIGINT");
  } catch {
    /* already gone */
  }
  const force = setTimeout(() => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }, 5000);
  return new Promise((r) =>
    child.once("exit", () => {
      clearTimeout(force);
      r();
    }),
  );
}

/** One bash per file: blocks are sourced in turn, so variables carry from one block to the next. */
function openShell(copy, env, work) {
  const bash = spawn("bash", ["--noprofile", "--norc"], {
    cwd: copy,
    env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let control = "";
  let waiter = null;
  bash.stdout.on("data", (d) => {
    control += d;
    waiter?.();
  });
  bash.stderr.on("data", () => {}); // block stderr goes to files; this is bash's own
  bash.on("exit", () => waiter?.());
  bash.stdin.on("error", () => {}); // writing to a shell that already exited
  bash.stdin.write("set -euo pipefail\n");
  let n = 0;
  return {
    async run(code) {
      const id = ++n;
      const file = join(work, `${id}.sh`);
      writeFileSync(file, `${code}\n`);
      const done = `__docs_check_done_${id}__`;
      bash.stdin.write(`source ${file} </dev/null >${file}.out 2>${file}.err\necho ${done}\n`);
      const ok = await new Promise((resolveWait) => {
        const timer = setTimeout(() => {
          waiter = null;
          resolveWait("timeout");
        }, BLOCK_TIMEOUT_MS);
        waiter = () => {
          if (control.includes(done) || bash.exitCode !== null || bash.signalCode !== null) {
            clearTimeout(timer);
            waiter = null;
            resolveWait(control.includes(done) ? "ok" : "exit");
          }
        };
        waiter();
      });
      const read = (f) => (existsSync(f) ? readFileSync(f, "utf8") : "");
      return { status: ok, exitCode: bash.exitCode, stdout: read(`${file}.out`), stderr: read(`${file}.err`) };
    },
    close() {
      if (bash.exitCode === null && bash.signalCode === null)
        try {
          process.kill(-bash.pid, "SIGKILL");
        } catch {
          /* gone */
        }
    },
  };
}

const tail = (s, n = 25) => {
  const lines = s.trimEnd().split("\n");
  return (lines.length > n ? ["...", ...lines.slice(-n)] : lines).map((l) => `      ${l}`).join("\n");
};

// ---------------------------------------------------------------------------------------------

async function main() {
  const t0 = Date.now();
  const all = docFiles();
  const until = args.options.until ? all.indexOf(args.options.until) : all.length - 1;
  if (until < 0) throw new Error(`--until ${args.options.until}: not one of ${all.join(", ")}`);
  const files = all.slice(0, until + 1);
  const failures = [];

  const links = checkLinks(root, docFiles());
  console.log(`links: ${links.count} relative link(s) in ${docFiles().length} file(s), ${links.broken.length} broken`);
  for (const b of links.broken) console.log(`  BROKEN ${b}`);
  if (links.broken.length) failures.push(`${links.broken.length} broken link(s)`);

  const parsed = files.map((file) => ({ file, ...parseBlocks(readFileSync(join(root, file), "utf8")) }));
  for (const p of parsed)
    for (const line of p.orphans) failures.push(`${p.file}:${line}: an <!-- output --> block follows no shell block`);
  if (args.options.linksOnly) return finish(failures, t0);

  const missing = ["bash", "curl", "jq", "openssl"].filter(
    (tool) => spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0,
  );
  if (spawnSync("date", ["-u", "-d", "+1 day"], { stdio: "ignore" }).status !== 0) missing.push("GNU date");
  if (missing.length) throw new Error(`the examples need ${missing.join(", ")}; install them first`);

  const { base, copy, work } = makeCopy();
  const env = commonEnv(copy);
  const port = await freePort();
  console.log(`demo: npm start -- --port ${port} in a fresh copy (${copy})`);
  const demo = await startDemo(copy, port, env);
  console.log(`demo: ready in ${demo.seconds.toFixed(1)} s`);
  const vars = Object.fromEntries(
    readFileSync(join(copy, ".dev.vars"), "utf8")
      .split("\n")
      .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  const shellEnv = {
    ...env,
    TOLLGATE_URL: `http://127.0.0.1:${port}`,
    TOLLGATE_KEY: readFileSync(join(copy, ".wrangler", "demo-api-key"), "utf8").trim(),
    ADMIN_KEY: vars.ADMIN_BOOTSTRAP_KEY,
  };

  const totals = { ran: 0, compared: 0, skipped: new Map() };
  try {
    for (const { file, blocks } of parsed) {
      const runnable = blocks.filter((b) => !b.skip);
      const skipped = blocks.filter((b) => b.skip);
      for (const b of skipped) totals.skipped.set(b.skip, [...(totals.skipped.get(b.skip) ?? []), `${file}:${b.line}`]);
      if (runnable.length === 0) {
        if (blocks.length) console.log(`${file}: 0 run, ${skipped.length} skipped`);
        continue;
      }
      const started = Date.now();
      const shell = openShell(copy, shellEnv, work);
      let ran = 0;
      let fileFailed = false;
      for (const block of runnable) {
        const res = await shell.run(block.code);
        ran++;
        const where = `${file}:${block.line}`;
        if (res.status !== "ok") {
          const why =
            res.status === "timeout" ? `timed out after ${BLOCK_TIMEOUT_MS / 1000} s` : `exit ${res.exitCode}`;
          failures.push(`${where}: ${why}`);
          console.log(`  FAIL ${where}: ${why}\n    block:\n${tail(block.code, 12)}`);
          if (res.stdout.trim()) console.log(`    stdout:\n${tail(res.stdout)}`);
          if (res.stderr.trim()) console.log(`    stderr:\n${tail(res.stderr)}`);
          fileFailed = true;
          break; // the session is gone: later blocks of this file depend on it
        }
        if (block.output) {
          totals.compared++;
          const diffs = compareOutput(block, res.stdout);
          if (diffs.length) {
            failures.push(`${where}: output differs from ${file}:${block.output.line}`);
            console.log(`  FAIL ${where}: the output differs from the documented one (${file}:${block.output.line})`);
            for (const d of diffs.slice(0, 15)) console.log(`      ${d}`);
            console.log(`    stdout:\n${tail(res.stdout, 40)}`);
            if (res.stderr.trim()) console.log(`    stderr:\n${tail(res.stderr)}`);
          }
        }
      }
      shell.close();
      totals.ran += ran;
      console.log(
        `${file}: ${ran} of ${runnable.length} run${fileFailed ? " (stopped at the failure)" : ""}, ${skipped.length} skipped, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  } finally {
    await stopDemo(demo.child);
    if (args.options.keep) console.log(`kept ${base}`);
    else rmSync(base, { recursive: true, force: true });
  }

  const skippedCount = [...totals.skipped.values()].reduce((n, l) => n + l.length, 0);
  console.log(`\nblocks: ${totals.ran} run (${totals.compared} with a documented output), ${skippedCount} skipped`);
  for (const [reason, where] of totals.skipped)
    console.log(`  skipped ${where.length}: ${reason} (${where.join(", ")})`);
  return finish(failures, t0);
}

function finish(failures, t0) {
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  if (failures.length) {
    console.log(`\ndocs:check FAILED in ${secs} s:`);
    for (const f of failures) console.log(`  - ${f}`);
    process.exitCode = 1;
  } else console.log(`\ndocs:check passed in ${secs} s`);
}

main().catch((err) => {
  console.error(`docs:check: ${err.stack ?? err}`);
  process.exitCode = 1;
});
