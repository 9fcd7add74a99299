// Lookups in records keyed by ids that come from outside (plan ids, feature keys, region names): a key
// such as "toString" or "constructor" must find nothing rather than Object.prototype's member. Ids that
// name such members are refused at the door too (PROTOTYPE_NAMES), but rows that are already stored must
// still compile, so every lookup by an id goes through `own`.

/** The own property `key` of `record`, never one inherited from Object.prototype. */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Names no id may take: the members of Object.prototype (toString, constructor, __proto__, ...). */
export const PROTOTYPE_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

export const notPrototypeName = (id: string): boolean => !PROTOTYPE_NAMES.has(id);
export const PROTOTYPE_NAME_MESSAGE = "must not be the name of an Object.prototype member (toString, constructor, ...)";

/** Orders ids by code unit (the order the compilers sort subscriptions, grants, features and plans in). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
