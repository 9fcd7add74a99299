// What one analytics point costs the check path, in Node without HTTP: ns per Analytics.check call
// (src/analytics/index.ts) for each mode, on a snapshot compiled by the real compiler and a decision of
// it. Engine mode hands the point to a dataset object whose writeDataPoint returns at once, as the
// runtime's does (its sending happens after the response, off the request); local mode adds to the
// isolate's counters (a flush, every 60 s, is not on the request either: it runs in waitUntil).
// Set against check-warm's workerd CPU per request in the same run, this resolves the analytics
// target on a machine too noisy for the paired req/s ratio (docs/benchmark.md, "Analytics").
// Run alone: node scripts/bench/analytics.mjs [--seconds 1]
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { benchSnapshot, loadDomain } from "./domain.mjs";

async function loadAnalytics(root) {
  const esbuild = createRequire(join(root, "node_modules", "wrangler", "package.json"))("esbuild");
  const out = await esbuild.build({
    stdin: { contents: `export { Analytics } from "./src/analytics/index.ts";`, resolveDir: root, loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
    target: "es2022",
  });
  const dir = await mkdtemp(join(tmpdir(), "tollgate-analytics-"));
  const file = join(dir, "analytics.mjs");
  await writeFile(file, out.outputFiles[0].text);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function analyticsBench(root, { seconds = 1 } = {}) {
  const [{ Analytics }, domain] = await Promise.all([loadAnalytics(root), loadDomain(root)]);
  const { snapshot, features, now } = benchSnapshot(domain, 20);
  const decisions = features.map((f) => ({ ...domain.evaluate(snapshot, { feature: f.key }, now), customerId: "c0" }));
  let written = 0;
  const dataset = { writeDataPoint: () => void written++ };
  const envOf = (mode) => ({ ENVIRONMENT: "development", ANALYTICS_MODE: mode, ANALYTICS: dataset });
  const modes = ["off", "engine", "local"];
  const runs = Object.fromEntries(
    modes.map((mode) => {
      const analytics = new Analytics();
      // A waitUntil that is never called in the measured span (the flush interval is 60 s of the clock below).
      const io = { env: envOf(mode), waitUntil: () => {} };
      return [mode, { analytics, io }];
    }),
  );
  const rate = (mode, ms) => {
    const { analytics, io } = runs[mode];
    let n = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ms) {
      for (let i = 0; i < 1024; i++) analytics.check(io, now, snapshot, decisions[i % decisions.length], "DE", 1);
      n += 1024;
      elapsed = performance.now() - start;
    }
    return (elapsed * 1e6) / n; // ns per call
  };
  for (const m of modes) rate(m, 200);
  const samples = Object.fromEntries(modes.map((m) => [m, []]));
  for (let r = 0; r < 5; r++) for (const m of modes) samples[m].push(rate(m, (seconds * 1000) / 5));
  const ns = Object.fromEntries(modes.map((m) => [m, median(samples[m])]));
  return {
    node: process.version,
    nsPerCheck: { off: ns.off, engine: ns.engine, local: ns.local },
    // What the point costs beyond analytics off (the mode lookup alone).
    extraNs: { engine: ns.engine - ns.off, local: ns.local - ns.off },
    pointsWritten: written,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--seconds");
  console.log(
    JSON.stringify(await analyticsBench(process.cwd(), { seconds: i === -1 ? 1 : Number(process.argv[i + 1]) })),
  );
}
