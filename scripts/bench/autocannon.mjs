// autocannon (a devDependency), the fallback where wrk is not installed. It runs in its own Node
// process (this file is both the runner and the child), so the load never shares an event loop with
// the harness. Its rate option spends each second's budget in a burst, so a paced run with
// autocannon reports a pessimistic p99; wrk paces smoothly.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { filler } from "./scenarios.mjs";

const SELF = fileURLToPath(import.meta.url);

/** Runs one load phase in a child process; returns the common result shape. */
export async function runAutocannon({ url, spec, headers, seconds, connections, rate }) {
  const job = JSON.stringify({ url, spec, headers, seconds, connections, rate });
  const stdout = await new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [SELF, job],
      { maxBuffer: 1 << 20, timeout: (seconds + 30) * 1000 },
      (err, out, errOut) => (err ? reject(new Error(`autocannon failed: ${err.message}\n${errOut}`)) : resolve(out)),
    ),
  );
  const line = stdout.trim().split("\n").pop();
  return JSON.parse(line);
}

async function child(job) {
  const { default: autocannon } = await import("autocannon");
  const draw = filler(job.spec);
  let admitted = 0;
  let denied = 0;
  const request = {
    method: job.spec.method,
    setupRequest(req) {
      const { path, body } = draw();
      req.path = path;
      if (body !== null) req.body = body;
      return req;
    },
  };
  let firstError = null; // the first status >= 400 and the start of its body (wrk.mjs keeps the same)
  request.onResponse = (status, body) => {
    if (status >= 400) firstError ??= `${status} ${String(body).slice(0, 200).replace(/\s+/g, " ")}`;
    if (status !== 200 || !job.spec.countAdmitted) return;
    if (body.includes('"allowed":true')) admitted++;
    else denied++;
  };
  const result = await autocannon({
    url: job.url,
    connections: job.connections,
    duration: job.seconds,
    headers: job.headers,
    requests: [request],
    timeout: 5,
    ...(job.rate ? { overallRate: Math.round(job.rate), ignoreCoordinatedOmission: true } : {}),
  });
  const requests = result.requests.total;
  const secs = result.duration;
  process.stdout.write(
    `${JSON.stringify({ requests, seconds: secs, rps: requests / secs, p50Ms: result.latency.p50, p99Ms: result.latency.p99, errors: result.errors + result.timeouts + result.non2xx, errorKinds: { socket: result.errors, timeout: result.timeouts, status: result.non2xx, reset: result.resets ?? 0 }, firstError, admitted, denied })}\n`,
  );
}

if (process.argv[1] === SELF && process.argv[2]) await child(JSON.parse(process.argv[2]));
