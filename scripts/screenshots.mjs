#!/usr/bin/env node
// npm run screenshots [-- --url URL]: renders /docs in headless Chromium and saves docs/img/api-docs.png.
// Without --url it starts `npm start -- --port 8799` (scripts/dev.mjs: wrangler dev, demo data) and
// stops it afterwards. Every request that is not to 127.0.0.1 is blocked, and any blocked request,
// failed load, console error or page error fails the run: /docs must render offline.
// Needs Chromium: `apt-get install -y chromium` (Debian); CHROMIUM=/path/to/chrome to use another.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { parseCli, UsageError } from "./lib/cli.mjs";
import { projectRoot, runMain } from "./lib/node-target.mjs";

const USAGE = "usage: npm run screenshots [-- --url http://127.0.0.1:PORT]";
const PORT = 8799;
const OUT = join(projectRoot, "docs", "img", "api-docs.png");
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];

async function main() {
  const { options } = parseCli(process.argv.slice(2), { flags: ["help"], options: ["url"] });
  if (options.help) return void console.log(USAGE);
  if (options.url && !/^http:\/\/127\.0\.0\.1:\d+$/.test(options.url))
    throw new UsageError("--url must be http://127.0.0.1:PORT (everything else is blocked)");
  const server = options.url ? null : await startTollgate();
  try {
    await screenshotDocs(options.url ?? server.url);
  } finally {
    await server?.stop();
  }
  return 0;
}

async function screenshotDocs(url) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  const problems = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 960 } });
    await page.route("**/*", (route) => {
      const target = new URL(route.request().url());
      if (target.hostname === "127.0.0.1") return route.continue();
      problems.push(`blocked a request to ${target.href}`);
      return route.abort("blockedbyclient");
    });
    page.on("console", (msg) => msg.type() === "error" && problems.push(`console error: ${msg.text()}`));
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("requestfailed", (req) => problems.push(`failed: ${req.url()} (${req.failure()?.errorText})`));
    page.on("response", (res) => res.status() >= 400 && problems.push(`${res.status()} for ${res.url()}`));

    await page.goto(`${url}/docs`);
    // Rendered: the document's title, and the operations it lists.
    await page.getByRole("heading", { name: /^Tollgate/ }).waitFor();
    await page.getByRole("button", { name: /^POST \/v1\/check\b/ }).waitFor();
    await page.waitForLoadState("networkidle");
    mkdirSync(join(OUT, ".."), { recursive: true });
    await page.screenshot({ path: OUT });
  } finally {
    await browser.close();
  }
  if (problems.length > 0) throw new Error(`/docs did not render cleanly offline:\n  ${problems.join("\n  ")}`);
  console.log(`wrote ${OUT.slice(projectRoot.length)} (no request left 127.0.0.1)`);
}

/** `npm start -- --port 8799`, ready once it prints its URL (after the demo data is loaded). */
async function startTollgate() {
  const child = spawn(process.execPath, [join(projectRoot, "scripts", "dev.mjs"), "--port", String(PORT)], {
    cwd: projectRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = `http://127.0.0.1:${PORT}`;
  await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("Tollgate is running at")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before it was ready:\n${out}`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGINT"); // scripts/dev.mjs stops wrangler dev, then exits
      await exited;
    },
  };
}

await runMain(main, USAGE);
