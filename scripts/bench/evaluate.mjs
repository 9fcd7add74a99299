// Pure evaluation in Node, without HTTP: decisions per second of evaluate(snapshot, request, now) for
// snapshots of 10, 100 and 1,000 features (compiled by the real compiler), each request a random
// feature of the snapshot (all types; metered ones compute their period) and a random country.
// Run alone: node scripts/bench/evaluate.mjs [--sizes 10,100,1000] [--seconds 1] [--json]
import { fileURLToPath } from "node:url";
import { benchSnapshot, loadDomain } from "./domain.mjs";

const COUNTRIES = ["DE", "US", "KP", "FR", undefined];

function measure(domain, size, seconds) {
  const { snapshot, features, now } = benchSnapshot(domain, size);
  const n = 4096;
  const contexts = Array.from({ length: n }, (_, i) => ({ feature: features[(i * 7919) % features.length].key, country: COUNTRIES[i % COUNTRIES.length] }));
  let sink = 0;
  const round = (ms) => {
    let count = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ms) {
      for (let i = 0; i < n; i++) if (domain.evaluate(snapshot, contexts[i], now).allowed) sink++;
      count += n;
      elapsed = performance.now() - start;
    }
    return (count / elapsed) * 1000;
  };
  round(Math.min(300, seconds * 300)); // warm-up: let the JIT settle
  const rounds = [round(seconds * 333), round(seconds * 333), round(seconds * 333)].sort((a, b) => a - b);
  if (sink < 0) console.log(sink);
  return { features: size, decisionsPerSecond: Math.round(rounds[1]), nsPerDecision: Math.round(1e9 / rounds[1]), snapshotJsonBytes: JSON.stringify(snapshot).length };
}

export async function evaluationBench(root, { sizes = [10, 100, 1000], seconds = 1 } = {}) {
  const domain = await loadDomain(root);
  const results = sizes.map((size) => measure(domain, size, seconds));
  const small = results.find((r) => r.features === Math.min(...sizes));
  const large = results.find((r) => r.features === Math.max(...sizes));
  return { node: process.version, results, largeVsSmall: small.decisionsPerSecond / large.decisionsPerSecond };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, d) => {
    const i = process.argv.indexOf(`--${name}`);
    return i === -1 ? d : process.argv[i + 1];
  };
  const out = await evaluationBench(process.cwd(), { sizes: arg("sizes", "10,100,1000").split(",").map(Number), seconds: Number(arg("seconds", 1)) });
  console.log(JSON.stringify(out));
}
