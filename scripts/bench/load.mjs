// The load generator: wrk where installed (`which wrk`), else autocannon. Both run in a process of
// their own and return { requests, seconds, rps, p50Ms, p99Ms, errors, admitted, denied }.
import { execFileSync } from "node:child_process";
import { runAutocannon } from "./autocannon.mjs";
import { runWrk } from "./wrk.mjs";

export function pickGenerator(requested) {
  if (requested && requested !== "auto") return requested;
  try {
    execFileSync("which", ["wrk"], { stdio: "ignore" });
    return "wrk";
  } catch {
    return "autocannon";
  }
}

/** One phase of load: saturation when `rate` is absent, else paced at `rate` requests/s. */
export function runLoad(generator, job) {
  return generator === "wrk" ? runWrk(job) : runAutocannon(job);
}
