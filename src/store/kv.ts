// Every KV key Tollgate writes, in one place. KV is eventually consistent across locations (a
// write is visible at other edges within about 60 s), has no compare-and-set, and is never the
// source of record: anything here can be rebuilt from D1 (`scripts/snapshots rebuild`). Parts and the
// catalog are written only by their publisher (store/publisher.ts), which orders and retries the writes.
//
//   part:<customerId>  -> CustomerPart JSON (domain/customer-part.ts; carries its rev), expiring after
//                         PART_KV_TTL_SECONDS, with metadata {publishedAt}; or {"unknown":true} for an id
//                         that is no customer, expiring after 60 s (written by the read-through itself)
//   catalog:<rev>      -> CompiledCatalog JSON (domain/catalog-compile.ts), immutable once written
//   catalog:head       -> {"rev":k}: the newest catalog revision (store/catalog-store.ts)
//   key:<sha256 hex>   -> ApiKeyRecord JSON (revoked keys are overwritten with revokedAt set)
// Before the split (issue 12) a whole snapshot per customer lived under snap:<customerId>; nothing reads
// those keys any more, so they can be deleted (`wrangler kv key list --prefix snap:`).
export const kvKeys = {
  part: (customerId: string) => `part:${customerId}`,
  catalog: (rev: number) => `catalog:${rev}`,
  catalogHead: "catalog:head",
  apiKey: (hash: string) => `key:${hash}`,
  partPrefix: "part:",
  legacySnapshotPrefix: "snap:",
} as const;
