// Loads Tollgate's pure core (src/domain: compileSnapshot, evaluate; the snapshot cache's limits) into Node: esbuild (wrangler's
// own) bundles the TypeScript to a temporary ES module, which is imported. No bindings, no HTTP.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { benchCatalog, benchFeatures } from "./seed.mjs";

export async function loadDomain(root) {
  const esbuild = createRequire(join(root, "node_modules", "wrangler", "package.json"))("esbuild");
  const entry = [
    `export { compileSnapshot } from "./src/domain/compile.ts";`,
    `export { evaluate, applyUsage } from "./src/domain/evaluate.ts";`,
    `export { DEFAULT_SNAPSHOT_CACHE, PARSED_BYTES_PER_JSON_CHAR } from "./src/store/snapshots.ts";`,
  ].join("\n");
  const out = await esbuild.build({
    stdin: { contents: entry, resolveDir: root, loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    write: false,
    target: "es2022",
  });
  const dir = await mkdtemp(join(tmpdir(), "tollgate-domain-"));
  const file = join(dir, "domain.mjs");
  await writeFile(file, out.outputFiles[0].text);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A realistic snapshot of `count` features, compiled by the real compiler from the benchmark
 * catalog (the same one the HTTP scenarios seed): one active subscription to the plan.
 */
export function benchSnapshot(domain, count, customerId = "c0", now = Date.UTC(2026, 2, 10, 12)) {
  const features = benchFeatures(count);
  const catalog = benchCatalog(features, 1000);
  // What the admin API stores for the catalog's shorthand (normalizeEntitlement + zod defaults).
  const entitlements = Object.fromEntries(
    Object.entries(catalog.plans.bench.entitlements).map(([key, ent]) => [
      key,
      ent === true ? { enabled: true } : { enabled: true, ...ent },
    ]),
  );
  const rows = {
    customer: { id: customerId, residency: null, rev: 1 },
    catalogRev: 1,
    features: features.map((f) => ({ key: f.key, type: f.type, integer: true, failurePolicy: "closed" })),
    regionGroups: catalog.regionGroups,
    plans: { bench: { id: "bench", kind: "base", entitlements } },
    subscriptions: [
      {
        id: "sub_1",
        planId: "bench",
        status: "active",
        startedAt: now - 86_400_000,
        trialEnd: null,
        currentPeriodStart: null,
        currentPeriodEnd: null,
        billingAnchor: null,
        cancelAt: null,
        graceUntil: null,
        endedAt: null,
        scheduledPlanId: null,
        scheduledChangeAt: null,
      },
    ],
    grants: [],
  };
  return { snapshot: domain.compileSnapshot(rows, now), features, now };
}
