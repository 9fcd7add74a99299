// Node-only glue for the operations scripts: reads .dev.vars and the environment, reports errors.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AdminApiError } from "./admin-client.mjs";
import { parseDotenv, resolveTarget, UsageError } from "./cli.mjs";

export const projectRoot = fileURLToPath(new URL("../../", import.meta.url));

export function readDevVars() {
  try {
    return parseDotenv(readFileSync(new URL("../../.dev.vars", import.meta.url), "utf8"));
  } catch {
    return {};
  }
}

/** --url/--key, else --env (local by default) resolved from .dev.vars and the environment. */
export function targetFrom(options) {
  return resolveTarget(options, process.env, readDevVars());
}

/** Runs a script's main: usage errors exit 2, API errors print the problem+json detail and exit 1. */
export async function runMain(main, usage) {
  try {
    process.exitCode = (await main()) ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${usage}`);
      process.exitCode = 2;
    } else if (err instanceof AdminApiError) {
      console.error(err.message);
      process.exitCode = 1;
    } else if (err?.cause?.code === "ECONNREFUSED") {
      console.error(
        `error: cannot connect (${err.cause.address}:${err.cause.port}); is the worker running (npm start)?`,
      );
      process.exitCode = 1;
    } else {
      console.error(`error: ${err?.message ?? err}`);
      process.exitCode = 1;
    }
  }
}
