// Where the analytics endpoints read points back: the local rollups in D1 (after flushing this
// isolate's buffer), or Analytics Engine through its SQL API (engine-reader.ts). Subscriptions, plans,
// trials and period totals are read from D1 in every mode (store/analytics.ts).
import type { Config } from "../config";
import type { Env } from "../env";
import { Problem } from "../http/problem";
import { rollupActivity, rollupDenials, rollupUsage } from "../store/analytics";
import { engineReader } from "./engine-reader";
import type { Analytics } from "./index";
import type { PointReader } from "./points";

/** The reader of the mode in force; a 503 when engine mode lacks what the SQL API needs, or analytics are off. */
export async function pointReader(
  env: Env,
  config: Config["analytics"],
  analytics: Analytics,
  outbound: typeof fetch,
): Promise<PointReader> {
  const mode = config.mode;
  if (mode === "off") throw new Problem("unavailable", "Analytics are off here (ANALYTICS_MODE is 'off').");
  if (mode === "local") {
    await analytics.local(env).flush(env);
    return {
      activity: (from, to) => rollupActivity(env.DB, from, to),
      usage: (feature, bucketMs, from, to) => rollupUsage(env.DB, feature, bucketMs, from, to),
      denials: (by, from, to, limit) => rollupDenials(env.DB, by, from, to, limit),
    };
  }
  if (!config.accountId || !config.apiToken)
    throw new Problem(
      "unavailable",
      "Analytics Engine cannot be queried: set the ANALYTICS_ACCOUNT_ID var and the ANALYTICS_API_TOKEN secret (an API token with Account Analytics Read).",
    );
  return engineReader({ accountId: config.accountId, apiToken: config.apiToken, dataset: config.dataset }, outbound);
}
