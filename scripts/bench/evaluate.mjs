// Pure evaluation in Node, without HTTP: decisions per second of evaluate(snapshot, request, now) for
// snapshots of 10, 100 and 1,000 features. Each snapshot is compiled by the real compiler and parsed
// back from its JSON, as the worker holds it (KV text -> JSON.parse); each request is a random feature
// of the snapshot (every type; metered ones compute their period) with a random country. All sizes are
// warmed up before any is measured and rounds alternate between sizes, so the JIT has seen every shape
// (as in an isolate serving many customers) and a busy machine slows every size alike.
// Run alone: node scripts/bench/evaluate.mjs [--sizes 10,100,1000] [--seconds 1]
import { fileURLToPath } from "node:url";
import { benchSnapshot, loadDomain } from "./domain.mjs";

const COUNTRIES = ["DE", "US", "KP", "FR", undefined];
const ROUNDS = 5;

function workload(domain, size, distinct) {
  const { snapshot, features, now } = benchSnapshot(domain, size);
  const parsed = JSON.parse(JSON.stringify(snapshot));
  const n = 4096;
  const k = Math.min(distinct ?? features.length, features.length);
  const contexts = Array.from({ length: n }, (_, i) => ({
    feature: features[(i * 7919) % k].key,
    country: COUNTRIES[i % COUNTRIES.length],
  }));
  return { size, snapshot: parsed, contexts, now, jsonBytes: JSON.stringify(snapshot).length };
}

let sink = 0;
function rate(domain, w, ms) {
  const { snapshot, contexts, now } = w;
  let count = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < contexts.length; i++) if (domain.evaluate(snapshot, contexts[i], now).allowed) sink++;
    count += contexts.length;
    elapsed = performance.now() - start;
  }
  return (count / elapsed) * 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function evaluationBench(root, { sizes = [10, 100, 1000], seconds = 1 } = {}) {
  const domain = await loadDomain(root);
  const workloads = sizes.map((size) => workload(domain, size));
  // The largest snapshot again, asked about only as many distinct features as the smallest has: the
  // difference to the uniform figure is memory locality (more objects touched), not the algorithm.
  const narrow = { ...workload(domain, Math.max(...sizes), Math.min(...sizes)), narrow: true };
  const all = [...workloads, narrow];
  for (const w of all) rate(domain, w, Math.min(300, seconds * 300));
  const samples = all.map(() => []);
  for (let r = 0; r < ROUNDS; r++)
    for (const [i, w] of all.entries()) samples[i].push(rate(domain, w, (seconds * 1000) / ROUNDS));
  if (sink < 0) console.log(sink);
  const results = workloads.map((w, i) => {
    const perSecond = median(samples[i]);
    return {
      features: w.size,
      decisionsPerSecond: Math.round(perSecond),
      nsPerDecision: Math.round(1e9 / perSecond),
      snapshotJsonBytes: w.jsonBytes,
    };
  });
  const narrowPerSecond = median(samples[samples.length - 1]);
  const small = results[0];
  const large = results[results.length - 1];
  return {
    node: process.version,
    results,
    largeVsSmall: small.decisionsPerSecond / large.decisionsPerSecond,
    largeNarrow: {
      features: narrow.size,
      distinctFeaturesAsked: Math.min(...sizes),
      decisionsPerSecond: Math.round(narrowPerSecond),
      vsSmall: small.decisionsPerSecond / narrowPerSecond,
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, d) => {
    const i = process.argv.indexOf(`--${name}`);
    return i === -1 ? d : process.argv[i + 1];
  };
  const out = await evaluationBench(process.cwd(), {
    sizes: arg("sizes", "10,100,1000").split(",").map(Number),
    seconds: Number(arg("seconds", 1)),
  });
  console.log(JSON.stringify(out));
}
