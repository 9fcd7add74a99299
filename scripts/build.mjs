#!/usr/bin/env node
// `npm run build`, also the `prepare` script, so every `npm install` (here, or of this repository as a
// dependency from a path or a git URL) runs it. It writes what the repository builds but does not
// commit, into dist/ (gitignored):
//   dist/client/  the typed client as JavaScript + declarations (tsconfig.client.json), which
//                 package.json exports as "tollgate/client"; its declarations import dist/domain/types.d.ts
//   dist/assets/  wrangler.toml's [assets] directory: Swagger UI's files for /docs, copied from
//                 node_modules/swagger-ui-dist under a path that carries the package's version
//                 (src/routes/docs.ts builds the same path), and a _headers file that caches them for a year;
//                 the console's and portal's files under ui/: htmx and uPlot from node_modules under
//                 versioned paths (cached for a year), and src/ui/static/* under ui/app/ (revalidated)
// Flags: --client or --assets builds only that part. Silent unless something fails.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);

/** The files /docs references, and the licence texts that must travel with them (Apache-2.0). */
const SWAGGER_UI_FILES = [
  "swagger-ui-bundle.js",
  "swagger-ui.css",
  "favicon-32x32.png",
  "swagger-ui-bundle.js.LICENSE.txt",
  "LICENSE",
  "NOTICE",
];

function buildClient() {
  rmSync(join(root, "dist", "client"), { recursive: true, force: true });
  rmSync(join(root, "dist", "domain"), { recursive: true, force: true });
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.client.json"], {
    cwd: root,
    stdio: "inherit",
  });
}

/** The console's vendor files (src/ui/assets.ts builds the same paths), with their licences. */
const UI_VENDOR = {
  "htmx.org": ["dist/htmx.min.js", "LICENSE"],
  uplot: ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"],
};

function buildUiAssets(assets, headers) {
  for (const [name, files] of Object.entries(UI_VENDOR)) {
    const packageDir = dirname(require.resolve(`${name}/package.json`));
    const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
    const target = join(assets, "ui", "vendor", name, version);
    mkdirSync(target, { recursive: true });
    for (const file of files) {
      const base = file.split("/").pop();
      copyFileSync(join(packageDir, file), join(target, base));
      headers.push(
        `/ui/vendor/${name}/${version}/${base}`,
        "  Cache-Control: public, max-age=31536000, immutable",
        "  X-Content-Type-Options: nosniff",
      );
    }
  }
  const app = join(assets, "ui", "app");
  mkdirSync(app, { recursive: true });
  for (const file of readdirSync(join(root, "src", "ui", "static")))
    copyFileSync(join(root, "src", "ui", "static", file), join(app, file));
  headers.push("/ui/app/*", "  Cache-Control: no-cache", "  X-Content-Type-Options: nosniff");
}

function buildAssets() {
  const packageDir = dirname(require.resolve("swagger-ui-dist/package.json"));
  const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  const assets = join(root, "dist", "assets");
  // From scratch: a previous version's files must not be deployed along with this one's.
  rmSync(assets, { recursive: true, force: true });
  const target = join(assets, "docs", "swagger-ui", version);
  mkdirSync(target, { recursive: true });
  const headers = [
    "# Written by scripts/build.mjs. Each path carries swagger-ui-dist's version: a file never changes under its URL.",
    "# One rule per file rather than a wildcard, so that a 404 under the same prefix is not cached for a year.",
  ];
  for (const file of SWAGGER_UI_FILES) {
    copyFileSync(join(packageDir, file), join(target, file));
    headers.push(
      `/docs/swagger-ui/${version}/${file}`,
      "  Cache-Control: public, max-age=31536000, immutable",
      "  X-Content-Type-Options: nosniff",
    );
  }
  buildUiAssets(assets, headers);
  writeFileSync(join(assets, "_headers"), `${headers.join("\n")}\n`);
}

const only = process.argv.slice(2);
for (const arg of only)
  if (arg !== "--client" && arg !== "--assets") {
    console.error(`error: unknown flag ${arg}\n\nusage: node scripts/build.mjs [--client | --assets]`);
    process.exit(2);
  }
if (only.length === 0 || only.includes("--client")) buildClient();
if (only.length === 0 || only.includes("--assets")) buildAssets();
