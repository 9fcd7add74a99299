// Pure parts of scripts/deploy.mjs: placeholder and secret checks (required ones, and the credentials
// production refuses), the bundle size report.

/**
 * Worker size limits. Cloudflare has documented 3 MB (Free) and 10 MB (Paid) after compression, and
 * 64 MiB uncompressed; keep these in one place so a limit change is one edit.
 */
export const SIZE_LIMITS = { gzipFree: 3 * 1024 * 1024, gzipPaid: 10 * 1024 * 1024, raw: 64 * 1024 * 1024 };

export const PLACEHOLDER = /REPLACE_WITH_/;

/** Every configuration value of the environment that still holds a REPLACE_WITH_ placeholder. */
export function placeholdersIn(config) {
  const found = [];
  for (const kv of config.kv_namespaces ?? [])
    if (PLACEHOLDER.test(kv.id ?? "")) found.push(`kv_namespaces.${kv.binding}.id`);
  for (const db of config.d1_databases ?? [])
    if (PLACEHOLDER.test(db.database_id ?? "")) found.push(`d1_databases.${db.binding}.database_id`);
  for (const [k, v] of Object.entries(config.vars ?? {}))
    if (PLACEHOLDER.test(typeof v === "string" ? v : JSON.stringify(v))) found.push(`vars.${k}`);
  return found;
}

/** `wrangler secret list --format json` output -> the required names it lacks. */
export function missingSecrets(required, listJson) {
  const present = new Set((Array.isArray(listJson) ? listJson : []).map((s) => s.name));
  return required.filter((name) => !present.has(name));
}

/**
 * Credentials production must not carry. ADMIN_BOOTSTRAP_KEY is an admin key with every scope and no
 * expiry that stands for nobody in particular (four eyes cannot tell its holder from an approver);
 * OPERATOR_JWT_SECRET lets whoever holds it mint an operator token with any identity and role. The
 * worker refuses both when ENVIRONMENT is "production" anyway (src/auth); a deploy that would carry
 * them fails, so nobody believes they work there. Staging gets a warning.
 */
export const PRODUCTION_REFUSED_SECRETS = ["ADMIN_BOOTSTRAP_KEY", "OPERATOR_JWT_SECRET"];

const RETIRE = {
  ADMIN_BOOTSTRAP_KEY: "create admin API keys with an operator token (Cloudflare Access) instead",
  OPERATOR_JWT_SECRET: "sign operators in with Cloudflare Access (OPERATOR_JWKS_URL) instead",
};

/**
 * Where the environment would carry a refused credential: as a var in wrangler.toml, as a required
 * secret, or (with `wrangler secret list --format json` output) set as a secret. Production: "fail";
 * any other environment: "warn". In order of PRODUCTION_REFUSED_SECRETS, at most one entry per name.
 * @returns {{ level: "fail" | "warn", name: string, message: string }[]}
 */
export function credentialProblems(env, config, listJson) {
  const listed = new Set((Array.isArray(listJson) ? listJson : []).map((s) => s.name));
  const level = env === "production" ? "fail" : "warn";
  const out = [];
  for (const name of PRODUCTION_REFUSED_SECRETS) {
    let where = null;
    let fix = `npx wrangler secret delete ${name} --env ${env}`;
    if (Object.hasOwn(config.vars ?? {}, name)) {
      where = `is a plain var in wrangler.toml [env.${env}.vars]`;
      fix = `remove it from [env.${env}.vars] (and rotate it: it was in the file)`;
    } else if ((config.secrets?.required ?? []).includes(name)) {
      where = `is listed in [env.${env}.secrets] required`;
      fix = `remove it from that list, and if set: npx wrangler secret delete ${name} --env ${env}`;
    } else if (listed.has(name)) where = `is set as a secret of ${env}`;
    if (where === null) continue;
    const effect = level === "fail" ? "production refuses it" : "production would refuse it";
    out.push({ level, name, message: `${name} ${where}; ${effect}: ${RETIRE[name]}, then ${fix}` });
  }
  return out;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

const pct = (n, of) => `${((100 * n) / of).toFixed(1)}%`;

/**
 * @param {{ name: string, raw: number, gzip: number }[]} files  the bundle's modules (source maps excluded)
 * @returns {{ ok: boolean, warn: boolean, lines: string[] }}
 */
export function sizeReport(files) {
  const raw = files.reduce((a, f) => a + f.raw, 0);
  const gzip = files.reduce((a, f) => a + f.gzip, 0);
  const lines = ["Bundle size"];
  for (const f of files)
    lines.push(
      `  ${f.name.padEnd(24)} ${formatBytes(f.raw).padStart(10)} raw  ${formatBytes(f.gzip).padStart(10)} gzip`,
    );
  lines.push(`  total ${formatBytes(raw)} raw, ${formatBytes(gzip)} gzip`);
  lines.push(
    `  gzip vs limit: ${pct(gzip, SIZE_LIMITS.gzipFree)} of 3 MB (Workers Free), ${pct(gzip, SIZE_LIMITS.gzipPaid)} of 10 MB (Workers Paid)`,
  );
  lines.push(`  raw vs limit:  ${pct(raw, SIZE_LIMITS.raw)} of 64 MiB uncompressed`);
  const ok = gzip <= SIZE_LIMITS.gzipPaid && raw <= SIZE_LIMITS.raw;
  const warn = gzip > SIZE_LIMITS.gzipFree;
  if (!ok) lines.push("  TOO LARGE: the upload would be refused.");
  else if (warn) lines.push("  Over the Workers Free limit: deploy needs the Workers Paid plan.");
  return { ok, warn, lines };
}
