// Headless Chromium against a local Tollgate, for `npm run screenshots` and `npm run test:browser`:
// starts `npm start` on its own port (scripts/dev.mjs: wrangler dev with the demo data), launches
// Debian's chromium (`apt-get install -y chromium`; CHROMIUM=/path for another), and watches each page:
// every request that is not to 127.0.0.1 is blocked and recorded, and so are failed loads, console
// errors, page errors and 5xx answers, so a caller can fail on any of them (pages must render offline).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { projectRoot } from "./node-target.mjs";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];

export function launchChromium() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

/**
 * Blocks and records every request that leaves 127.0.0.1, and records what went wrong on the page.
 * `allowStatus(res)` lets a caller expect a refusal (a 403 it provoked) without it counting as a problem.
 */
export async function guardPage(page, problems, allowStatus = () => false) {
  const allowed = new Set(); // statuses a caller expected: Chromium also logs them as console errors
  const loadFailure = /^Failed to load resource: the server responded with a status of (\d+)/;
  await page.route("**/*", (route) => {
    const target = new URL(route.request().url());
    if (target.hostname === "127.0.0.1") return route.continue();
    problems.push(`blocked a request to ${target.href}`);
    return route.abort("blockedbyclient");
  });
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const status = loadFailure.exec(msg.text())?.[1];
    if (status && allowed.has(Number(status))) return;
    problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  // ERR_ABORTED is a load the page gave up by navigating away (a click before a deferred script arrived),
  // not a failure; a blocked request is recorded above, a missing file as its 404 below.
  page.on("requestfailed", (req) => {
    const error = req.failure()?.errorText;
    if (error !== "net::ERR_ABORTED") problems.push(`failed: ${req.url()} (${error})`);
  });
  page.on("response", (res) => {
    if (res.status() < 400) return;
    if (allowStatus(res)) allowed.add(res.status());
    else problems.push(`${res.status()} for ${res.url()}`);
  });
}

/** `npm start -- --port <port>`, ready once it prints its URL (after the demo data is loaded); its demo key. */
export async function startTollgate(port) {
  const child = spawn(process.execPath, [join(projectRoot, "scripts", "dev.mjs"), "--port", String(port)], {
    cwd: projectRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const out = await new Promise((resolve, reject) => {
    let text = "";
    child.stdout.on("data", (chunk) => {
      text += chunk;
      if (text.includes("Tollgate is running at")) resolve(text);
    });
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before it was ready:\n${text}`)));
  });
  const demoKey = /demo API key\s*:\s*(tg_\S+)/.exec(out)?.[1] ?? null;
  return {
    url,
    demoKey,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGINT"); // scripts/dev.mjs stops wrangler dev, then exits
      await exited;
    },
  };
}
