// The Worker's side of publication: what leaves for KV, and through what. Every customer part and every
// catalog revision is published through its Publisher Durable Object (store/publisher.ts), which
// guards versions, spaces and retries the KV writes; this module writes the history row first (D1), so a
// part or catalog that checks can see is always one that GET .../entitlements?at= can explain later,
// then hands the publication to the object. Used by the write path (SnapshotStore.compile after every
// customer write, the catalog write), the read-through (a KV miss compiled from D1 is published as a
// repair), the cron's repair pass and customer deletion.
import type { CompiledCatalog } from "../domain/catalog-compile";
import { compileCatalog } from "../domain/catalog-compile";
import { type CustomerPart, compilePart } from "../domain/customer-part";
import type { Publication, PublishAnswer, PubVersion } from "../domain/publication";

type Repair = Publication["repair"];

import type { Env } from "../env";
import { loadCatalogRows, loadPartRows } from "./customer-rows";
import { kvKeys } from "./kv";

type PublishEnv = Pick<Env, "DB" | "PUBLISHER">;

/** The publisher of an entry: "part:<customerId>" or "catalog". */
export const publisherNames = {
  part: (customerId: string) => kvKeys.part(customerId),
  catalog: "catalog",
} as const;

const publisher = (env: Pick<Env, "PUBLISHER">, name: string) => env.PUBLISHER.get(env.PUBLISHER.idFromName(name));

/** A compiled part as it is published: version [rev, catalogRev], one KV put that expires after `ttlSeconds`. */
export function partPublication(part: CustomerPart, text: string, ttlSeconds: number): Publication {
  return {
    version: [part.rev, part.catalogRev],
    compiledAt: part.compiledAt,
    puts: [{ key: kvKeys.part(part.customerId), value: text, ttlSeconds }],
  };
}

/** A compiled catalog as it is published: its immutable object, then the pointer to it. */
export function catalogPublication(catalog: CompiledCatalog, text = JSON.stringify(catalog)): Publication {
  return {
    version: [catalog.rev],
    compiledAt: catalog.compiledAt,
    puts: [
      { key: kvKeys.catalog(catalog.rev), value: text },
      { key: kvKeys.catalogHead, value: JSON.stringify({ rev: catalog.rev }) },
    ],
  };
}

/** History row, then the publisher. `repair`: KV was found without this version (domain/publication.ts). */
export async function publishPart(
  env: PublishEnv,
  part: CustomerPart,
  text: string,
  ttlSeconds: number,
  now: number,
  repair?: Repair,
): Promise<PublishAnswer> {
  await partHistory(env.DB, part, text).run();
  const pub: Publication = { ...partPublication(part, text, ttlSeconds), ...(repair ? { repair } : {}) };
  return publisher(env, publisherNames.part(part.customerId)).publish(publisherNames.part(part.customerId), pub, now);
}

/** Asks the customer's publisher to recompile its part from D1 and publish it (an old copy, an unconfirmed write). */
export function refreshPart(env: Pick<Env, "PUBLISHER">, customerId: string, now: number): Promise<PublishAnswer> {
  const name = publisherNames.part(customerId);
  return publisher(env, name).refresh(name, now);
}

/** The customer was deleted: its part leaves KV, and nothing read from D1 before `now` is published again. */
export function retirePart(env: Pick<Env, "PUBLISHER">, customerId: string, now: number): Promise<PublishAnswer> {
  const name = publisherNames.part(customerId);
  return publisher(env, name).retire(name, [kvKeys.part(customerId)], now);
}

/** History row, then the publisher. `repair`: the pointer was found missing or behind. */
export async function publishCatalog(
  env: PublishEnv,
  catalog: CompiledCatalog,
  now: number,
  repair?: Repair,
): Promise<PublishAnswer> {
  const text = JSON.stringify(catalog);
  await catalogHistory(env.DB, catalog, text).run();
  return publisher(env, publisherNames.catalog).publish(
    publisherNames.catalog,
    { ...catalogPublication(catalog, text), ...(repair ? { repair } : {}) },
    now,
  );
}

/** Asks the catalog's publisher to recompile it from D1 and publish it (the cron found the pointer behind). */
export function refreshCatalog(env: Pick<Env, "PUBLISHER">, now: number): Promise<PublishAnswer> {
  return publisher(env, publisherNames.catalog).refresh(publisherNames.catalog, now);
}

/** Compiles the catalog from D1 and publishes it: the catalog write path after its commit, and rebuilds ("drift"). */
export async function compileAndPublishCatalog(
  env: PublishEnv,
  now: number,
  repair?: Repair,
): Promise<CompiledCatalog> {
  const compiled = compileCatalog(await loadCatalogRows(env.DB), now);
  await publishCatalog(env, compiled, now, repair);
  return compiled;
}

// ---- the publisher's side: what it needs of D1 ----

/** The entry compiled afresh from D1, its history row written (null: the customer does not exist). */
export async function freshPublication(
  db: D1Database,
  name: string,
  now: number,
  partTtlSeconds: number,
): Promise<Publication | null> {
  if (name === publisherNames.catalog) {
    const catalog = compileCatalog(await loadCatalogRows(db), now);
    const text = JSON.stringify(catalog);
    await catalogHistory(db, catalog, text).run();
    return catalogPublication(catalog, text);
  }
  const customerId = name.slice(kvKeys.partPrefix.length);
  const rows = await loadPartRows(db, customerId);
  if (!rows) return null;
  const part = compilePart(rows, now);
  const text = JSON.stringify(part);
  await partHistory(db, part, text).run();
  return partPublication(part, text, partTtlSeconds);
}

/**
 * KV has this version of the entry: a customer part marks its revision published in D1, so the cron's
 * repair pass (customers whose rev is ahead of published_rev) skips it. A failure is logged: the cron
 * asks again, and the publisher answers "current".
 */
export async function confirmPublished(db: D1Database, name: string, version: PubVersion): Promise<void> {
  if (!name.startsWith(kvKeys.partPrefix)) return;
  const customerId = name.slice(kvKeys.partPrefix.length);
  try {
    await db
      .prepare("UPDATE customers SET published_rev = ?2 WHERE id = ?1 AND published_rev < ?2")
      .bind(customerId, version[0] ?? 0)
      .run();
  } catch (err) {
    console.warn(JSON.stringify({ msg: "publication confirm failed", customerId, error: String(err) }));
  }
}

function catalogHistory(db: D1Database, catalog: CompiledCatalog, text: string): D1PreparedStatement {
  return db
    .prepare("INSERT OR IGNORE INTO catalog_history (rev, compiled_at, catalog) VALUES (?1, ?2, ?3)")
    .bind(catalog.rev, catalog.compiledAt, text);
}

function partHistory(db: D1Database, part: CustomerPart, text: string): D1PreparedStatement {
  return db
    .prepare("INSERT OR IGNORE INTO part_history (customer_id, rev, compiled_at, part) VALUES (?1, ?2, ?3, ?4)")
    .bind(part.customerId, part.rev, part.compiledAt, text);
}
