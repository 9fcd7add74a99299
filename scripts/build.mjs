#!/usr/bin/env node
// `npm run build`, also the `prepare` script, so every `npm install` (here, or of this repository as a
// dependency from a path or a git URL) runs it. It writes what the repository builds but does not
// commit, into dist/ (gitignored):
//   dist/client/  the typed client as JavaScript + declarations (tsconfig.client.json), which
//                 package.json exports as "tollgate/client"; its declarations import dist/domain/types.d.ts
// Flags: --client builds only that part. Silent unless something fails.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);

function buildClient() {
  rmSync(join(root, "dist", "client"), { recursive: true, force: true });
  rmSync(join(root, "dist", "domain"), { recursive: true, force: true });
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", "tsconfig.client.json"], {
    cwd: root,
    stdio: "inherit",
  });
}

const only = process.argv.slice(2);
for (const arg of only)
  if (arg !== "--client") {
    console.error(`error: unknown flag ${arg}\n\nusage: node scripts/build.mjs [--client]`);
    process.exit(2);
  }
if (only.length === 0 || only.includes("--client")) buildClient();
