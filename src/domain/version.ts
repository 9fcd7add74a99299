// Versions a client can wait for (`minVersion`). Pure.
//
// A snapshot is composed of two parts cached independently: the customer's part (its revision `c`,
// customers.rev) and the shared catalog (its revision `k`). Their sum, `snapshotVersion`, is what
// clients have always seen, but a sum cannot say "this write is included" once the parts travel
// separately: an old part with a newer catalog can reach the sum of a write it does not hold. So every
// write also returns a token "c.k", compared componentwise:
//   - a customer write returns "c.k" with its new revision c and the catalog revision k it was made on;
//   - a catalog write returns "0.k" (it concerns no customer in particular);
//   - a snapshot satisfies "c.k" when its customer revision is >= c AND its catalog revision is >= k.
// A plain number N (the snapshotVersion a write returned before tokens existed) is still accepted: it is
// satisfied when the customer part's revision plus the catalog revision read WITH that part (both from
// one D1 read, so the sum is monotone) is >= N.
export interface VersionToken {
  customer: number;
  catalog: number;
}

export type MinVersion = VersionToken | { sum: number };

const TOKEN = /^(\d{1,16})\.(\d{1,16})$/;
const safe = (n: number) => Number.isSafeInteger(n);

export const formatVersion = (customer: number, catalog: number): string => `${customer}.${catalog}`;

/** A token "c.k" or a plain non-negative integer; null when it is neither. */
export function parseMinVersion(raw: string | number): MinVersion | null {
  if (typeof raw === "number") return Number.isSafeInteger(raw) && raw >= 0 ? { sum: raw } : null;
  const t = TOKEN.exec(raw);
  if (t) {
    const [customer, catalog] = [Number(t[1]), Number(t[2])];
    return safe(customer) && safe(catalog) ? { customer, catalog } : null;
  }
  return /^\d{1,16}$/.test(raw) && safe(Number(raw)) ? { sum: Number(raw) } : null;
}

/** What the check must hold to satisfy `min`: the customer part and the catalog it is composed with. */
export interface Held {
  customerRev: number;
  /** The catalog revision read with the part (the part is never composed with an older catalog). */
  partCatalogRev: number;
  /** The catalog revision composed with it. */
  catalogRev: number;
}

export function satisfies(held: Held, min: MinVersion | undefined): boolean {
  if (!min) return true;
  if ("sum" in min) return held.customerRev + held.partCatalogRev >= min.sum;
  return held.customerRev >= min.customer && held.catalogRev >= min.catalog;
}

/** The catalog revision a check needs to satisfy `min` (0: any). */
export const catalogNeeded = (min: MinVersion | undefined): number => (min && "catalog" in min ? min.catalog : 0);

/** Whether the customer part satisfies the customer side of `min` (the catalog side is met separately). */
export function partSatisfies(part: { rev: number; catalogRev: number }, min: MinVersion | undefined): boolean {
  if (!min) return true;
  if ("sum" in min) return part.rev + part.catalogRev >= min.sum;
  return part.rev >= min.customer;
}

export const describeMinVersion = (min: MinVersion): string =>
  "sum" in min ? String(min.sum) : formatVersion(min.customer, min.catalog);

/** What a customer write answers: its summed snapshotVersion (for older clients) and its token. */
export interface WriteVersion {
  snapshotVersion: number;
  version: string;
}

/** The version of a freshly compiled part: its revision and the catalog revision read with it. */
export const writeVersionOf = (part: { rev: number; catalogRev: number }): WriteVersion => ({
  snapshotVersion: part.rev + part.catalogRev,
  version: formatVersion(part.rev, part.catalogRev),
});

/**
 * Whether version token `a` holds everything `b` does (both "c.k"): what a client compares, e.g. a
 * decision's `version` against the `version` a write returned. A plain number compares as a number.
 */
export function versionAtLeast(a: string | number, b: string | number): boolean {
  const [x, y] = [parseMinVersion(a), parseMinVersion(b)];
  if (!x || !y) return false;
  if ("sum" in x || "sum" in y) return "sum" in x && "sum" in y && x.sum >= y.sum;
  return x.customer >= y.customer && x.catalog >= y.catalog;
}
