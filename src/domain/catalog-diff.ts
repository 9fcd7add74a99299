// What applying a catalog file would change, compared with the catalog in D1. Pure: the route adds
// the blast radius (which customers hold the plans involved).
//
// PUT /admin/v1/catalog upserts: it never deletes a feature, plan, region group or price mapping that
// the file leaves out (those are reported as "kept"), but it does replace each listed plan's
// entitlements exactly. An entitlement change is a "loss" when some customer could be allowed less
// afterwards: removed, disabled, a lower limit or overage cap, overage allow -> block, fewer roles or
// countries. A feature's type change is a loss too (every entitlement of it is reinterpreted). Losses
// that reach customers are destructive: `scripts/catalog.mjs apply` refuses them without
// --allow-destructive. Config values, reset periods, anchors and descriptions are plain changes.

import { type CatalogFile, normalizeEntitlement, type PriceTarget } from "./catalog";
import type { EntitlementSpec } from "./types";
import { isCounted } from "./types";

export interface CatalogState {
  regionGroups: Record<string, string[]>;
  features: Record<
    string,
    {
      type: string;
      description: string;
      unit?: string;
      integer: boolean;
      failurePolicy: string;
      creditCost?: { credits: string; cost: number };
      seat?: string;
    }
  >;
  plans: Record<
    string,
    { name: string; kind: string; description: string; entitlements: Record<string, EntitlementSpec> }
  >;
  /** A plan id, or a credit top-up. */
  prices: Record<string, PriceTarget>;
}

export type Effect = "gain" | "loss" | "change";

export interface CatalogChange {
  kind: "feature" | "plan" | "entitlement" | "regionGroup" | "price";
  op: "added" | "changed" | "removed" | "kept";
  /** feature key, plan id, `plan/feature`, group name or price id. */
  id: string;
  effect: Effect;
  /** Human-readable details, e.g. "limit 1000 -> 500". */
  details: string[];
  /** Plans whose customers feel this change (the route counts them). */
  plans: string[];
  feature?: string;
}

/** The catalog file as it will be stored: defaults filled in, shorthands expanded, groups sorted. */
export function stateOfFile(cat: CatalogFile): CatalogState {
  const features: CatalogState["features"] = {};
  for (const [key, f] of Object.entries(cat.features)) {
    features[key] = {
      type: f.type,
      description: f.description,
      ...(f.unit ? { unit: f.unit } : {}),
      integer: f.integer,
      failurePolicy: f.failurePolicy,
      ...(f.creditCost ? { creditCost: f.creditCost } : {}),
      ...(f.seat ? { seat: f.seat } : {}),
    };
  }
  const plans: CatalogState["plans"] = {};
  for (const [id, p] of Object.entries(cat.plans)) {
    const entitlements: Record<string, EntitlementSpec> = {};
    for (const [key, ent] of Object.entries(p.entitlements))
      entitlements[key] = normalizeEntitlement(cat.features[key]?.type ?? "boolean", ent) as EntitlementSpec;
    plans[id] = { name: p.name, kind: p.kind, description: p.description, entitlements };
  }
  const regionGroups = Object.fromEntries(
    Object.entries(cat.regionGroups).map(([k, v]) => [k, [...new Set(v)].sort()]),
  );
  return { regionGroups, features, plans, prices: { ...cat.prices } };
}

/** Every difference between D1 (`before`) and the file (`after`), in a stable order. */
export function diffCatalog(before: CatalogState, after: CatalogState): CatalogChange[] {
  const out: CatalogChange[] = [];
  const plansWith = (feature: string) =>
    Object.entries(before.plans)
      .filter(([, plan]) => plan.entitlements[feature])
      .map(([id]) => id);

  for (const key of union(before.features, after.features)) {
    const [b, a] = [before.features[key], after.features[key]];
    if (!b) out.push({ kind: "feature", op: "added", id: key, effect: "change", details: [], plans: [], feature: key });
    else if (!a)
      out.push({
        kind: "feature",
        op: "kept",
        id: key,
        effect: "change",
        details: ["not in the file; apply keeps it"],
        plans: [],
        feature: key,
      });
    else {
      const details = fieldChanges(b, a, [
        "type",
        "description",
        "unit",
        "integer",
        "failurePolicy",
        "creditCost",
        "seat",
      ]);
      if (details.length === 0) continue;
      const retyped = b.type !== a.type;
      out.push({
        kind: "feature",
        op: "changed",
        id: key,
        effect: retyped ? "loss" : "change",
        details,
        plans: retyped ? plansWith(key) : [],
        feature: key,
      });
    }
  }

  for (const name of union(before.regionGroups, after.regionGroups)) {
    const [b, a] = [before.regionGroups[name], after.regionGroups[name]];
    if (!b) out.push({ kind: "regionGroup", op: "added", id: name, effect: "change", details: [], plans: [] });
    else if (!a)
      out.push({
        kind: "regionGroup",
        op: "kept",
        id: name,
        effect: "change",
        details: ["not in the file; apply keeps it"],
        plans: [],
      });
    else {
      const details = setChanges(name, b, a);
      // Its effect on customers shows up on the entitlements that name the group (below).
      if (details.length > 0)
        out.push({ kind: "regionGroup", op: "changed", id: name, effect: "change", details, plans: [] });
    }
  }

  for (const id of union(before.plans, after.plans)) {
    const [b, a] = [before.plans[id], after.plans[id]];
    if (!a) {
      out.push({
        kind: "plan",
        op: "kept",
        id,
        effect: "change",
        details: ["not in the file; apply keeps it and its entitlements"],
        plans: [],
      });
      continue;
    }
    if (!b) out.push({ kind: "plan", op: "added", id, effect: "change", details: [], plans: [] });
    else {
      const details = fieldChanges(b, a, ["name", "kind", "description"]);
      if (details.length > 0)
        out.push({ kind: "plan", op: "changed", id, effect: "change", details, plans: b.kind !== a.kind ? [id] : [] });
    }
    for (const feature of union(b?.entitlements ?? {}, a.entitlements)) {
      const change = entitlementChange(id, feature, b?.entitlements[feature], a.entitlements[feature], before, after);
      if (change) out.push(change);
    }
  }

  for (const price of union(before.prices, after.prices)) {
    const [b, a] = [before.prices[price], after.prices[price]];
    if (canonical(b) === canonical(a)) continue;
    const op = b === undefined ? "added" : a === undefined ? "kept" : "changed";
    const details =
      op === "changed"
        ? [
            typeof b === "string" && typeof a === "string"
              ? `plan ${b} -> ${a}`
              : `${describeTarget(b)} -> ${describeTarget(a)}`,
          ]
        : op === "kept"
          ? ["not in the file; apply keeps it"]
          : [`-> ${describeTarget(a)}`];
    out.push({ kind: "price", op, id: price, effect: "change", details, plans: [] });
  }
  return out;
}

/** "plan pro", or "top-up 500 ai_credits for 365 days". */
function describeTarget(t: PriceTarget | undefined): string {
  if (t === undefined) return "nothing";
  return typeof t === "string" ? `plan ${t}` : `top-up ${t.amount} ${t.credits} for ${t.expiresInDays} days`;
}

function entitlementChange(
  planId: string,
  feature: string,
  b: EntitlementSpec | undefined,
  a: EntitlementSpec | undefined,
  before: CatalogState,
  after: CatalogState,
): CatalogChange | null {
  const base = { kind: "entitlement" as const, id: `${planId}/${feature}`, plans: [planId], feature };
  if (!b && a) return { ...base, op: "added", effect: "gain", details: [describeSpec(a)] };
  if (b && !a) return { ...base, op: "removed", effect: "loss", details: [describeSpec(b)] };
  if (!b || !a) return null;
  const type = after.features[feature]?.type ?? before.features[feature]?.type ?? "boolean";
  const effects = compareSpecs(b, a, type, before.regionGroups, after.regionGroups);
  if (effects.length === 0)
    return canonical(b) === canonical(a)
      ? null
      : { ...base, op: "changed", effect: "change", details: ["rewritten, same meaning"] };
  const effect: Effect = effects.some((e) => e.effect === "loss")
    ? "loss"
    : effects.some((e) => e.effect === "gain")
      ? "gain"
      : "change";
  return { ...base, op: "changed", effect, details: effects.map((e) => e.detail) };
}

interface SpecEffect {
  effect: Effect;
  detail: string;
}

/** What changes for a holder of the entitlement, field by field, with region groups expanded. */
export function compareSpecs(
  b: EntitlementSpec,
  a: EntitlementSpec,
  type: string,
  groupsBefore: Record<string, string[]>,
  groupsAfter: Record<string, string[]>,
): SpecEffect[] {
  const out: SpecEffect[] = [];
  if (b.enabled !== a.enabled)
    out.push({ effect: a.enabled ? "gain" : "loss", detail: a.enabled ? "enabled" : "disabled" });
  if (isCounted(type)) {
    const [lb, la] = [b.limit ?? null, a.limit ?? null];
    if (lb !== la) out.push({ effect: lower(lb, la) ? "loss" : "gain", detail: `limit ${show(lb)} -> ${show(la)}` });
    if ((b.reset ?? "month") !== (a.reset ?? "month"))
      out.push({ effect: "change", detail: `reset ${b.reset ?? "month"} -> ${a.reset ?? "month"}` });
    if ((b.anchor ?? "calendar") !== (a.anchor ?? "calendar"))
      out.push({ effect: "change", detail: `anchor ${b.anchor ?? "calendar"} -> ${a.anchor ?? "calendar"}` });
    if ((b.overage ?? "block") !== (a.overage ?? "block"))
      out.push({
        effect: a.overage === "allow" ? "gain" : "loss",
        detail: `overage ${b.overage ?? "block"} -> ${a.overage ?? "block"}`,
      });
    const [cb, ca] = [b.overageCap ?? null, a.overageCap ?? null];
    if (cb !== ca)
      out.push({ effect: lower(cb, ca) ? "loss" : "gain", detail: `overageCap ${show(cb)} -> ${show(ca)}` });
  }
  if (type === "config" && canonical(b.value) !== canonical(a.value))
    out.push({ effect: "change", detail: `value ${canonical(b.value)} -> ${canonical(a.value)}` });
  out.push(...narrowing("roles", b.roles, a.roles));
  const expand = (refs: string[] | undefined, groups: Record<string, string[]>) =>
    refs && refs.length > 0 ? [...new Set(refs.flatMap((r) => groups[r] ?? [r.toUpperCase()]))].sort() : null;
  out.push(
    ...narrowing("countries allowed", expand(b.regions?.allow, groupsBefore), expand(a.regions?.allow, groupsAfter)),
  );
  // A deny list works the other way round: more entries allow less.
  const [db, da] = [expand(b.regions?.deny, groupsBefore) ?? [], expand(a.regions?.deny, groupsAfter) ?? []];
  const [denied, undenied] = [da.filter((c) => !db.includes(c)), db.filter((c) => !da.includes(c))];
  if (denied.length > 0) out.push({ effect: "loss", detail: `countries denied +${denied.join(",")}` });
  if (undenied.length > 0) out.push({ effect: "gain", detail: `countries denied -${undenied.join(",")}` });
  return out;
}

/** An allow-list: null/empty allows everything; a list allows its entries only. */
function narrowing(what: string, b: string[] | null | undefined, a: string[] | null | undefined): SpecEffect[] {
  const [lb, la] = [b && b.length > 0 ? b : null, a && a.length > 0 ? a : null];
  if (lb === null && la === null) return [];
  if (lb === null) return la === null ? [] : [{ effect: "loss", detail: `${what}: any -> ${la.join(",")}` }];
  if (la === null) return [{ effect: "gain", detail: `${what}: ${lb.join(",")} -> any` }];
  const [added, removed] = [la.filter((x) => !lb.includes(x)), lb.filter((x) => !la.includes(x))];
  const out: SpecEffect[] = [];
  if (removed.length > 0) out.push({ effect: "loss", detail: `${what} -${removed.join(",")}` });
  if (added.length > 0) out.push({ effect: "gain", detail: `${what} +${added.join(",")}` });
  return out;
}

/** null is unlimited. */
const lower = (before: number | null, after: number | null) => after !== null && (before === null || after < before);
const show = (n: number | null) => (n === null ? "unlimited" : String(n));

function describeSpec(s: EntitlementSpec): string {
  const parts = [s.enabled ? "enabled" : "disabled"];
  if (s.limit !== undefined) parts.push(`limit ${show(s.limit ?? null)}`);
  if (s.value !== undefined) parts.push(`value ${canonical(s.value)}`);
  if (s.roles?.length) parts.push(`roles ${s.roles.join(",")}`);
  return parts.join(", ");
}

function fieldChanges<T extends object>(b: T, a: T, fields: (keyof T & string)[]): string[] {
  return fields
    .filter((f) => canonical(b[f]) !== canonical(a[f]))
    .map((f) => `${f} ${canonical(b[f])} -> ${canonical(a[f])}`);
}

function setChanges(name: string, b: string[], a: string[]): string[] {
  const [added, removed] = [a.filter((x) => !b.includes(x)), b.filter((x) => !a.includes(x))];
  return [
    ...(added.length ? [`${name} +${added.join(",")}`] : []),
    ...(removed.length ? [`${name} -${removed.join(",")}`] : []),
  ];
}

const union = (a: object, b: object) => [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();

/** JSON with sorted keys, so equal values compare equal whatever their key order. */
export function canonical(v: unknown): string {
  if (v === undefined) return "undefined";
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)),
        )
      : x,
  );
}
