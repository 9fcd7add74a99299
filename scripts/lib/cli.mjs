// Argument parsing and target resolution shared by the operations scripts (catalog, snapshots,
// deploy). Pure: no fs, no process, so the tests can import it inside workerd.

/**
 * Parses `argv` (without node and the script) into positionals and options.
 * `spec.flags` take no value (`--dry-run`); `spec.options` take one (`--env staging`, `--env=staging`).
 * Unknown options are an error, so a typo never silently changes what a command does.
 */
export function parseCli(argv, spec = {}) {
  const flags = new Set(spec.flags ?? []);
  const options = new Set(spec.options ?? []);
  const out = { positionals: [], options: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--")) {
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (flags.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      out.options[camel(name)] = true;
    } else if (options.has(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || (eq === -1 && value.startsWith("--"))) throw new UsageError(`--${name} needs a value`);
      out.options[camel(name)] = value;
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return out;
}

export class UsageError extends Error {}

const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/** Parses a .dev.vars / .env file (KEY=value, # comments, optional quotes). */
export function parseDotenv(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2];
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    out[m[1]] = value;
  }
  return out;
}

export const LOCAL_URL = "http://127.0.0.1:8787";
export const ENVIRONMENTS = ["local", "staging", "production"];

/**
 * Where an admin command talks to, and with which key:
 * - `--url` and `--key` win when given;
 * - `--env local` (the default): http://127.0.0.1:8787 and ADMIN_BOOTSTRAP_KEY from .dev.vars
 *   (or the ADMIN_BOOTSTRAP_KEY environment variable);
 * - `--env staging|production`: TOLLGATE_URL and TOLLGATE_ADMIN_KEY from the environment
 *   (an admin-scoped API key or an operator token), so no key ever lives in the repository.
 */
export function resolveTarget(opts, processEnv = {}, devVars = {}) {
  const name = opts.env ?? (opts.url ? "custom" : "local");
  if (opts.env && !ENVIRONMENTS.includes(opts.env))
    throw new UsageError(`--env must be one of ${ENVIRONMENTS.join(", ")}`);
  let url = opts.url;
  let key = opts.key;
  if (name === "local") {
    url ??= processEnv.TOLLGATE_URL ?? LOCAL_URL;
    key ??= devVars.ADMIN_BOOTSTRAP_KEY ?? processEnv.ADMIN_BOOTSTRAP_KEY ?? processEnv.TOLLGATE_ADMIN_KEY;
  } else {
    url ??= processEnv.TOLLGATE_URL;
    key ??= processEnv.TOLLGATE_ADMIN_KEY;
  }
  if (!url) throw new UsageError(`no URL for ${name}: pass --url or set TOLLGATE_URL`);
  if (!key)
    throw new UsageError(
      `no admin key for ${name}: pass --key or set ${name === "local" ? "ADMIN_BOOTSTRAP_KEY in .dev.vars" : "TOLLGATE_ADMIN_KEY"}`,
    );
  return { name, url: url.replace(/\/+$/, ""), key };
}
