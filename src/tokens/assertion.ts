// Decision assertions: a check with "assert": true also returns a short-lived, audience-bound JWS of
// that one decision, so the origin service it is forwarded to can verify it locally with the JWKS
// instead of calling Tollgate again.
import { configOf } from "../config";
import type { Decision } from "../domain/types";
import type { Env } from "../env";
import { signingRing, signJws } from "./sign";

export const ASSERTION_TTL_SECONDS = 60;
export const DEFAULT_ASSERTION_AUDIENCE = "tollgate:decision";
export const DECISION_ASSERTION_TYPE = "tollgate-decision+jwt";

/** The context the decision was made in: a verifier checks it matches what it is about to gate. */
export interface AssertionContext {
  role?: string;
  country?: string;
  quantity?: number;
}

export async function signDecisionAssertion(
  env: Env,
  decision: Decision,
  opts: { audience?: string; context: AssertionContext },
): Promise<string> {
  const ring = await signingRing(env);
  const evaluatedAt = Date.parse(decision.evaluatedAt);
  // An answer that changes sooner (a trial ends in 20 s) must not be asserted for longer.
  let expiresAt = evaluatedAt + ASSERTION_TTL_SECONDS * 1000;
  if (decision.expiresAt) expiresAt = Math.min(expiresAt, Date.parse(decision.expiresAt));
  const { customerId, snapshotAgeMs: _age, evaluatedAt: _at, ...rest } = decision;
  const context = Object.fromEntries(Object.entries(opts.context).filter(([, v]) => v !== undefined));
  return signJws(
    ring,
    { decision: rest, context },
    {
      issuer: configOf(env).tokens.issuer,
      subject: customerId,
      audience: opts.audience ?? DEFAULT_ASSERTION_AUDIENCE,
      typ: DECISION_ASSERTION_TYPE,
      issuedAt: evaluatedAt,
      expiresAt,
    },
  );
}
