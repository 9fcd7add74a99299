// A catalog write (features, plans, region groups, a catalog file): the change and its audit entries
// commit in one D1 batch with the catalog revision bump, then the new catalog is compiled once and
// published (its history row, one immutable KV object and the pointer: store/catalog-store.ts). No
// customer is recompiled: checks compose each customer's part with the catalog they hold, so the change
// reaches every check within the catalog cache's TTL once KV has it, whatever the number of customers.
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { formatVersion } from "../domain/version";
import { startCatalogEvents } from "../events/catalog-events";
import { readCatalogRev } from "../store/catalog";
import { compileAndPublishCatalog } from "../store/snapshot-publisher";
import { type AuditEntry, commitAdminWrite } from "./commit";

/** What a catalog write answers: the revision it made, as a version token checks can wait for. */
export interface CatalogWritten {
  catalogRev: number;
  /** "0.<catalogRev>": as `minVersion`, any customer's check composed with this catalog or a newer one. */
  version: string;
}

export async function commitCatalogWrite(
  c: Context<AppEnv>,
  statements: D1PreparedStatement[],
  audits: AuditEntry[],
): Promise<CatalogWritten> {
  const { services } = c.var;
  const now = services.clock.now();
  await commitAdminWrite(c, statements, audits, { catalog: true });
  let rev: number;
  try {
    const catalog = await compileAndPublishCatalog(c.env, now);
    services.snapshots.catalogs.adopt(catalog, now);
    rev = catalog.rev;
  } catch (err) {
    // The write is committed (D1 failed after it, or the catalog's publisher could not be reached).
    // Checks that ask for its version read the catalog through from D1, and the cron republishes a
    // pointer found behind D1 (scheduled.ts). A KV failure does not land here: the publisher retries.
    console.error(JSON.stringify({ msg: "catalog publish failed", requestId: c.var.requestId, error: String(err) }));
    rev = await readCatalogRev(c.env.DB);
  }
  // entitlements.changed for the customers this change reaches (events/catalog-events.ts); the cron
  // starts it again if this fails.
  try {
    await startCatalogEvents(c.env, now);
  } catch (err) {
    console.error(
      JSON.stringify({ msg: "catalog events not started", requestId: c.var.requestId, error: String(err) }),
    );
  }
  return { catalogRev: rev, version: formatVersion(0, rev) };
}
