// wrk (Debian's package): one thread, C connections, a generated Lua script that draws each request
// from the scenario's template. Two modes:
//   saturation: every connection sends its next request as soon as the previous answer arrives;
//   paced:      requests leave on a fixed schedule (rate/s, from a monotonic clock through LuaJIT's
//               ffi), each on whichever connection is free, so the server sees a steady rate rather
//               than bursts. Plain wrk has no rate option (wrk2 has); this is the same idea.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { templateParts } from "./scenarios.mjs";

const lua = (s) => `[==[${s}]==]`;

/** Lua expression that concatenates a template's literals with the drawn `c` and `f`. */
function luaTemplate(template) {
  const parts = templateParts(template);
  return (
    parts
      .map((p, i) => (i % 2 === 0 ? lua(p) : p))
      .filter((p) => p !== "[==[]==]")
      .join(" .. ") || '""'
  );
}

export function wrkScript(spec, headers, rate) {
  const features = spec.features.map(lua).join(", ");
  const headerLines = Object.entries(headers)
    .map(([k, v]) => `headers[ ${lua(k)} ] = ${lua(v)}`)
    .join("\n");
  return `
local features = { ${features} }
local nf = #features
local ccount = ${spec.customers.count}
local cprefix = ${lua(spec.customers.prefix)}
local method = ${lua(spec.method)}
local headers = {}
${headerLines}
local threads = {}
admitted = 0
denied = 0
firsterr = ""

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

request = function()
  local c = cprefix .. math.random(0, ccount - 1)
  local f = features[math.random(1, nf)]
  local body = ${spec.body === null ? "nil" : luaTemplate(spec.body)}
  return wrk.format(method, ${luaTemplate(spec.path)}, headers, body)
end
${rate ? pacing(rate) : ""}
${responseHook(spec.countAdmitted)}
function done(summary, latency, requests)
  local e = summary.errors
  local a, d, first = 0, 0, ""
  for _, t in ipairs(threads) do
    a = a + (t:get("admitted") or 0)
    d = d + (t:get("denied") or 0)
    if first == "" then first = t:get("firsterr") or "" end
  end
  io.write("BENCH_FIRST_ERROR " .. first .. "\\n")
  io.write(string.format('BENCH_RESULT {"requests":%d,"durationUs":%d,"p50Us":%.1f,"p99Us":%.1f,"errors":%d,"kinds":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"admitted":%d,"denied":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, e.connect, e.read, e.write, e.status, e.timeout, a, d))
end
`;
}

function pacing(rate) {
  return `
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_timespec; int clock_gettime(int clk, bench_timespec *tp); ]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1000 / ${rate}
local nextAt = nil
function delay()
  local t = now_ms()
  if nextAt == nil or nextAt < t - 1000 then nextAt = t end -- never try to catch up more than a second
  nextAt = nextAt + interval
  local d = nextAt - t
  if d < 0 then return 0 end
  return math.floor(d)
end
`;
}

/**
 * Every response: the first one with a status >= 400 is kept (status and the start of its body, so an
 * error the worker never counted can be traced); with `admitted`, 200s are counted as admitted or denied.
 */
function responseHook(admitted) {
  return `
function response(status, headers, body)
  if status >= 400 and firsterr == "" then firsterr = status .. " " .. string.gsub(string.sub(body or "", 1, 200), "%s+", " ") end
  ${
    admitted
      ? `if status == 200 then
    if string.find(body, '"allowed":true', 1, true) then admitted = admitted + 1 else denied = denied + 1 end
  end`
      : ""
  }
end
`;
}

/** Runs wrk; returns the common result shape. */
export async function runWrk({ url, spec, headers, seconds, connections, rate }) {
  const dir = await mkdtemp(join(tmpdir(), "tollgate-wrk-"));
  const script = join(dir, "scenario.lua");
  await writeFile(script, wrkScript(spec, headers, rate));
  try {
    const args = [
      "-t1",
      `-c${connections}`,
      `-d${Math.max(1, Math.round(seconds))}s`,
      "--timeout",
      "5s",
      "-s",
      script,
      url,
    ];
    const stdout = await new Promise((resolve, reject) =>
      execFile("wrk", args, { maxBuffer: 1 << 20, timeout: (seconds + 30) * 1000 }, (err, out, errOut) =>
        err ? reject(new Error(`wrk failed: ${err.message}\n${errOut}`)) : resolve(out),
      ),
    );
    const line = stdout.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
    if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
    const r = JSON.parse(line.slice("BENCH_RESULT ".length));
    const first = stdout.split("\n").find((l) => l.startsWith("BENCH_FIRST_ERROR "));
    const secs = r.durationUs / 1e6;
    return {
      requests: r.requests,
      seconds: secs,
      rps: r.requests / secs,
      p50Ms: r.p50Us / 1000,
      p99Ms: r.p99Us / 1000,
      errors: r.errors,
      // wrk's own split: connect, read (the connection closed or reset under it), write, status (>= 400), timeout.
      errorKinds: r.kinds,
      firstError: first?.slice("BENCH_FIRST_ERROR ".length).trim() || null,
      admitted: r.admitted,
      denied: r.denied,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
