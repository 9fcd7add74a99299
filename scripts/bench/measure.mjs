// One scenario, measured: warm-up, throughput at saturation, latency paced at a fixed rate, and the
// binding calls the worker made per request. Both phases run in rounds; a scenario with a baseline
// alternates with it (baseline, scenario, baseline, scenario, ...) and its ratios are medians of the
// per-round ratios, so a machine that gets busier or quieter during the run moves both alike.
import { runLoad } from "./load.mjs";
import { adminCall } from "./seed.mjs";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const sum = (xs, key) => xs.reduce((n, x) => n + (x[key] ?? 0), 0);
const stats = (server) => adminCall(server.url, "", "GET", "/__bench/stats");
const delta = (a, b) => Object.fromEntries(Object.keys(b.counts).map((k) => [k, b.counts[k] - a.counts[k]]));
const add = (a, b) => Object.fromEntries(Object.keys(b).map((k) => [k, (a?.[k] ?? 0) + b[k]]));

/** Runs a load phase and adds workerd's CPU time per request (worker, Durable Objects, local KV/D1 alike). */
async function cpuTimed(server, generator, job) {
  const c0 = server.cpuSeconds();
  const r = await runLoad(generator, job);
  const c1 = server.cpuSeconds();
  r.cpuUsPerRequest = c0 === null || c1 === null ? null : ((c1 - c0) / Math.max(1, r.requests)) * 1e6;
  return r;
}

/** The rounds folded into one result: medians of rates and latencies, sums of counts. */
function fold(rounds) {
  const cpu = rounds.map((r) => r.cpuUsPerRequest).filter((x) => x !== null);
  return {
    requests: sum(rounds, "requests"),
    seconds: sum(rounds, "seconds"),
    rps: median(rounds.map((r) => r.rps)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    cpuUsPerRequest: cpu.length === rounds.length ? median(cpu) : null,
    errors: sum(rounds, "errors"),
    errorKinds: rounds.reduce((k, r) => add(k, r.errorKinds ?? {}), {}),
    firstError: rounds.map((r) => r.firstError).find(Boolean) ?? null,
    admitted: sum(rounds, "admitted"),
    denied: sum(rounds, "denied"),
    rounds: rounds.map((r) => ({ rps: r.rps, cpuUsPerRequest: r.cpuUsPerRequest, errors: r.errors })),
  };
}

export async function measure({ server, generator, spec, baselineSpec, headers, o }) {
  const job = { url: server.url, spec, headers, connections: o.connections };
  const base = baselineSpec ? { ...job, spec: baselineSpec } : null;
  const roundSeconds = Math.max(1, Math.round(o.duration / o.rounds));
  const before = await stats(server);
  const warm = await runLoad(generator, { ...job, seconds: o.warmup });
  let counts = null;
  const scenarioRounds = [];
  const baseRounds = [];
  for (let i = 0; i < o.rounds; i++) {
    if (base) baseRounds.push(await cpuTimed(server, generator, { ...base, seconds: roundSeconds }));
    const s0 = await stats(server);
    scenarioRounds.push(await cpuTimed(server, generator, { ...job, seconds: roundSeconds }));
    counts = add(counts, delta(s0, await stats(server)));
  }
  const throughput = fold(scenarioRounds);
  const pairedThroughput = base ? fold(baseRounds) : null;
  // Paced at half the baseline's maximum, or at 60% of this scenario's own when it cannot sustain that.
  const wanted = (pairedThroughput ?? throughput).rps / 2;
  const rate = Math.max(1, Math.round(Math.min(wanted, throughput.rps * 0.6)));
  const latencyRounds = [];
  const baseLatencyRounds = [];
  const latencySeconds = Math.max(1, Math.round(o.latencyDuration / o.rounds));
  for (let i = 0; i < o.rounds; i++) {
    if (base) baseLatencyRounds.push(await runLoad(generator, { ...base, seconds: latencySeconds, rate }));
    const s0 = await stats(server);
    latencyRounds.push(await runLoad(generator, { ...job, seconds: latencySeconds, rate }));
    counts = add(counts, delta(s0, await stats(server)));
  }
  const after = await stats(server);
  const latency = { ...fold(latencyRounds), rate };
  const pairedLatency = base ? { ...fold(baseLatencyRounds), rate } : null;

  // Binding calls per request over the measured phases (warm-up and baseline rounds excluded), as the worker counted them.
  const n = Math.max(1, counts.requests);
  const row = {
    name: spec.name,
    what: spec.what,
    baseline: spec.baseline ?? null,
    throughput,
    latency,
    perRequest: {
      kvReads: counts.kvReads / n,
      kvWrites: counts.kvWrites / n,
      d1Queries: counts.d1Queries / n,
      doCalls: counts.doCalls / n,
    },
    counts,
    snapshotCache: after.snapshotCache,
    // How busy workerd was at saturation (1 = one core, its single-threaded limit); well below 1, the generator set the pace.
    serverBusy: throughput.cpuUsPerRequest === null ? null : (throughput.rps * throughput.cpuUsPerRequest) / 1e6,
    // Admissions over the whole scenario, warm-up included: as the generator read them, and as the worker got them from the meter.
    admitted: warm.admitted + throughput.admitted + latency.admitted,
    denied: warm.denied + throughput.denied + latency.denied,
    meterAdmitted: delta(before, after).meterAdmitted,
    errors: warm.errors + throughput.errors + latency.errors,
    // What the generator counted as errors, by kind, and what the worker itself answered with a 4xx or 5xx
    // over the scenario's run (its baseline rounds included): an error the worker never served happened
    // outside Tollgate's code (the connection, the generator, Miniflare's entry worker).
    errorKinds: [warm.errorKinds ?? {}, throughput.errorKinds, latency.errorKinds].reduce(add, {}),
    firstError: [warm.firstError, throughput.firstError, latency.firstError].find(Boolean) ?? null,
    workerErrors: { http4xx: delta(before, after).http4xx, http5xx: delta(before, after).http5xx },
  };
  if (base) {
    const ratios = scenarioRounds.map((r, i) => r.rps / baseRounds[i].rps);
    const cpuRatios = scenarioRounds.map((r, i) =>
      r.cpuUsPerRequest && baseRounds[i].cpuUsPerRequest ? r.cpuUsPerRequest / baseRounds[i].cpuUsPerRequest : null,
    );
    row.pairedBaseline = { throughput: pairedThroughput, latency: pairedLatency };
    row.rpsRatio = median(ratios);
    row.rpsRatios = ratios;
    row.cpuRatio = cpuRatios.includes(null) ? null : median(cpuRatios);
    row.p99Ratio = median(latencyRounds.map((r, i) => r.p99Ms / baseLatencyRounds[i].p99Ms));
    row.halfBaselineRate = rate === Math.round(wanted);
  }
  return row;
}
