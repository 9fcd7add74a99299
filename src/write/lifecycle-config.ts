// Lifecycle configuration from vars: PAST_DUE_GRACE_DAYS (default 7; 0 means no grace at all).
import { DEFAULT_PAST_DUE_GRACE_DAYS, type LifecycleConfig } from "../domain/lifecycle";
import { DAY_MS } from "../domain/time";
import type { Env } from "../env";

export function lifecycleConfig(env: Env): LifecycleConfig {
  const raw = env.PAST_DUE_GRACE_DAYS;
  const days = raw === undefined || raw === "" ? DEFAULT_PAST_DUE_GRACE_DAYS : Number(raw);
  // A typo must not silently mean "no grace" (or forever): fall back to the default and say so.
  if (!Number.isFinite(days) || days < 0) {
    console.warn(
      JSON.stringify({ msg: "PAST_DUE_GRACE_DAYS is not a non-negative number; using the default", value: raw }),
    );
    return { pastDueGraceMs: DEFAULT_PAST_DUE_GRACE_DAYS * DAY_MS };
  }
  return { pastDueGraceMs: Math.round(days * DAY_MS) };
}
