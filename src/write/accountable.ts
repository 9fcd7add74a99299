// Who a principal stands for when four eyes counts people (security review H2). An operator is
// itself (`operator:<sub>`). An API key is the person who created it: api_keys.created_by holds that
// person's identity, resolved when the key is made, so a key made with a key alice made is alice's
// too. The bootstrap key is "bootstrap": whoever holds the secret, so nobody in particular, and
// neither is a key it made. Only an operator identity is a person whom four eyes can tell apart from
// another (`isPerson`); grant proposals and decisions record these identities (write/four-eyes.ts).
//
// Rows written before identities were stored hold the creator's bare principal id: an operator's
// `sub`, "bootstrap", or the creating key's id ("key_..."); "system" is the column's default.
// `creatorIdentity` reads both forms (an operator whose sub is literally "bootstrap" or "system", or
// starts with "key_", would be misread in such an old row), and `personBehind` follows old key ids.
import type { Principal } from "../auth/principal";
import { readApiKeyCreator } from "../store/api-keys";
import { identityOf } from "./grant-policy";

/** Keys made by keys are followed this far (each step is one D1 read); beyond it the key is its own identity. */
const MAX_KEY_CHAIN = 8;

/** A stored api_keys.created_by as an identity: new rows already hold one, old rows a bare principal id. */
export function creatorIdentity(stored: string): string {
  if (/^(operator|key):/.test(stored) || stored === "bootstrap" || stored === "system") return stored;
  if (stored.startsWith("key_")) return `key:${stored}`;
  return `operator:${stored}`;
}

/** The identity four eyes compares for a stored identity: `key:<id>` resolves to the key's creator. */
export async function personBehind(db: D1Database, identity: string): Promise<string> {
  let current = identity;
  for (let i = 0; i < MAX_KEY_CHAIN && current.startsWith("key:"); i++) {
    const createdBy = await readApiKeyCreator(db, current.slice("key:".length));
    if (createdBy === null) return current;
    current = creatorIdentity(createdBy);
  }
  return current;
}

/** The person a principal stands for (one D1 read per key in its chain; none for an operator). */
export function personOf(db: D1Database, p: Principal): Promise<string> {
  return personBehind(db, identityOf(p));
}

/** Whether an identity names one person (an operator), whom four eyes can tell apart from another. */
export const isPerson = (identity: string): boolean => identity.startsWith("operator:");
