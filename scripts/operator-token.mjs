#!/usr/bin/env node
// npm run -s operator-token -- --role ROLE [--sub ID] [--email ADDRESS] [--ttl SECONDS]
//
// Mints a LOCAL operator JWT for the admin API, the kind src/auth/operator-jwt.ts accepts when only
// OPERATOR_JWT_SECRET is configured: HS256 over that secret, with OPERATOR_JWT_ISSUER and
// OPERATOR_JWT_AUDIENCE from .dev.vars (written by `npm start`), the role in `tollgate_role`, the
// person in `sub`. Prints only the token, so `SUPPORT_JWT=$(npm run -s operator-token -- --role support
// --sub bob)` works. Deployed environments use Cloudflare Access (a JWKS), never this secret.
// Exit codes: 0 ok, 2 usage error or no .dev.vars.
import { existsSync, readFileSync } from "node:fs";
import { SignJWT } from "jose";
import { parseCli, parseDotenv, UsageError } from "./lib/cli.mjs";

const ROLES = ["viewer", "support", "approver", "admin"]; // src/auth/operator-jwt.ts OPERATOR_ROLES
const USAGE = `usage: npm run -s operator-token -- --role ${ROLES.join("|")} [--sub ID] [--email ADDRESS] [--ttl SECONDS]
  --sub    the person (the JWT subject; four eyes compares it), default "<role>-local"
  --ttl    lifetime in seconds, default 3600`;

async function main() {
  const { options } = parseCli(process.argv.slice(2), { flags: ["help"], options: ["role", "sub", "email", "ttl"] });
  if (options.help) return void console.log(USAGE);
  const role = options.role;
  if (typeof role !== "string" || !ROLES.includes(role))
    throw new UsageError(`--role must be one of ${ROLES.join(", ")}`);
  const ttl = options.ttl === undefined ? 3600 : Number(options.ttl);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw new UsageError("--ttl must be 1..86400 seconds");

  const file = new URL("../.dev.vars", import.meta.url);
  if (!existsSync(file))
    throw new UsageError("no .dev.vars: run `npm start` once (it writes the local secrets this token is signed with)");
  const vars = parseDotenv(readFileSync(file, "utf8"));
  for (const name of ["OPERATOR_JWT_SECRET", "OPERATOR_JWT_ISSUER", "OPERATOR_JWT_AUDIENCE"])
    if (!vars[name]) throw new UsageError(`.dev.vars has no ${name}`);

  const claims = { tollgate_role: role, ...(typeof options.email === "string" ? { email: options.email } : {}) };
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(vars.OPERATOR_JWT_ISSUER)
    .setAudience(vars.OPERATOR_JWT_AUDIENCE)
    .setSubject(typeof options.sub === "string" ? options.sub : `${role}-local`)
    .setIssuedAt()
    .setExpirationTime(`${ttl}s`)
    .sign(new TextEncoder().encode(vars.OPERATOR_JWT_SECRET));
  console.log(token);
}

main().catch((err) => {
  console.error(`error: ${err.message}${err instanceof UsageError ? `\n\n${USAGE}` : ""}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
