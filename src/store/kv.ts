// Every KV key Tollgate writes, in one place. KV is eventually consistent across locations (a
// write is visible at other edges within about 60 s), has no compare-and-set, and is never the
// source of record: anything here can be rebuilt from D1 (`scripts/snapshots rebuild`).
//
//   snap:<customerId>  -> Snapshot JSON (compiled by compileSnapshot; carries its version), or
//                         {"unknown":true} for an id that is no customer, expiring after 60 s
//   key:<sha256 hex>   -> ApiKeyRecord JSON (revoked keys are overwritten with revokedAt set)
export const kvKeys = {
  snapshot: (customerId: string) => `snap:${customerId}`,
  apiKey: (hash: string) => `key:${hash}`,
  snapshotPrefix: "snap:",
} as const;
