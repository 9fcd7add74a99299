// The catalog: features, region groups, plans with their entitlements, price mappings.
// These zod schemas validate the catalog file (catalog-as-code), the admin API and every JSON
// column before it is written to D1, so the three can never disagree.
import { z } from "zod";
import { isAssignedCountry, UNASSIGNED_COUNTRY_MESSAGE } from "./countries";
import { notPrototypeName, own, PROTOTYPE_NAME_MESSAGE } from "./records";
import { hasLimit } from "./types";

export const featureKey = z
  .string()
  .regex(/^[a-z][a-z0-9_.-]{0,63}$/, "lowercase letters, digits, '_', '.', '-'; starts with a letter; at most 64")
  .refine(notPrototypeName, PROTOTYPE_NAME_MESSAGE);
export const entityId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/, "letters, digits, '_', '.', ':', '@', '-'; at most 128")
  .refine(notPrototypeName, PROTOTYPE_NAME_MESSAGE);
export const countryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2, upper case")
  .refine(isAssignedCountry, UNASSIGNED_COUNTRY_MESSAGE);
/** A region rule names countries (`DE`) or region groups (`EU`): groups are upper case, 3+ characters or known names. */
export const regionRef = z
  .string()
  .regex(/^[A-Za-z0-9_-]{2,32}$/)
  .refine(notPrototypeName, PROTOTYPE_NAME_MESSAGE);

export const featureType = z.enum(["boolean", "metered", "config", "credits", "seats"]);
export const resetPeriod = z.enum(["none", "hour", "day", "week", "month", "year"]);
export const resetAnchor = z.enum(["calendar", "billing"]);
export const overagePolicy = z.enum(["block", "allow"]);
export const failurePolicy = z.enum(["closed", "open"]);

const json: z.ZodType<import("./types").Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(json), z.record(z.string(), json)]),
);

/** A finite, non-negative unit count that JSON and JavaScript can represent exactly. */
export const units = z.number().finite().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const entitlementSpec = z
  .object({
    enabled: z.boolean().default(true),
    limit: units.nullable().optional().describe("metered: units per period; null = unlimited"),
    reset: resetPeriod.optional().describe("metered: when the counter resets (default month)"),
    anchor: resetAnchor.optional().describe("metered: calendar (UTC) or the subscription's billing anchor"),
    overage: overagePolicy.optional().describe("metered: block (hard limit, default) or allow (soft limit)"),
    overageCap: units.nullable().optional().describe("with overage allow: at most this many units beyond the limit"),
    value: json.optional().describe("config: the value"),
    roles: z.array(z.string().min(1).max(64)).max(64).nullable().optional(),
    regions: z
      .object({ allow: z.array(regionRef).max(300).optional(), deny: z.array(regionRef).max(300).optional() })
      .strict()
      .nullable()
      .optional(),
    rollover: z
      .object({
        max: units.describe("the carried balance is at most this"),
        periods: z.number().int().min(1).max(120).describe("a carry is usable for this many later periods"),
      })
      .strict()
      .nullable()
      .optional()
      .describe("metered/credits: unused allowance carries over, drawn before the new period's"),
    topUp: z
      .boolean()
      .optional()
      .describe("grants of a credits feature: `limit` credits once, for the grant's window (a top-up)"),
    perEntity: z
      .object({
        limit: units.describe("units each entity may use per period"),
        reset: resetPeriod.optional().describe("the entity's period (default: the entitlement's reset)"),
      })
      .strict()
      .nullable()
      .optional()
      .describe("metered/credits: a limit per entity (user, seat) besides the customer's pooled one"),
  })
  .strict();
export type EntitlementInput = z.input<typeof entitlementSpec>;

/** In a catalog file an entitlement may be written as `true`/`false` (boolean on/off) or a number (config value or metered limit). */
export const entitlementShorthand = z.union([z.boolean(), z.number(), z.string(), entitlementSpec]);

export const featureDef = z
  .object({
    type: featureType,
    description: z.string().max(500).default(""),
    unit: z.string().max(32).optional(),
    integer: z.boolean().default(true).describe("metered: only whole units"),
    failurePolicy: failurePolicy.default("closed").describe("answer when neither KV nor D1 can be read"),
    creditCost: z
      .object({
        credits: featureKey.describe("the credits feature whose balance one unit draws from"),
        cost: units.positive().describe("credits one unit draws"),
      })
      .strict()
      .optional()
      .describe("metered: each unit also draws `cost` credits from a credits feature (docs/model.md, Credits)"),
    seat: featureKey
      .optional()
      .describe(
        "an entity's checks and usage of this feature need a seat of this seats feature (docs/model.md, Entities)",
      ),
  })
  .strict();

export const planDef = z
  .object({
    name: z.string().min(1).max(200),
    kind: z.enum(["base", "addon"]).default("base"),
    description: z.string().max(1000).default(""),
    entitlements: z.record(featureKey, entitlementShorthand).default({}),
  })
  .strict();

/** Days a Stripe top-up is usable when its price mapping does not say (docs/billing.md, Credit top-ups). */
export const TOP_UP_DEFAULT_EXPIRES_IN_DAYS = 365;

/** A price that sells credits once: each unit of quantity paid grants `amount` credits of `credits` for `expiresInDays`. */
export const topUpPrice = z
  .object({
    credits: featureKey.describe("the credits feature the payment tops up"),
    amount: units.positive().describe("credits per unit of quantity paid"),
    expiresInDays: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(TOP_UP_DEFAULT_EXPIRES_IN_DAYS)
      .describe("the top-up is usable this many days from the payment (default 365)"),
  })
  .strict();
export type TopUpPrice = z.output<typeof topUpPrice>;

/** What a billing price id provisions: a plan (its id) or a credit top-up. */
export const priceTarget = z.union([entityId, topUpPrice]);
export type PriceTarget = z.output<typeof priceTarget>;

export const catalogFile = z
  .object({
    $schema: z.string().optional(),
    regionGroups: z.record(regionRef, z.array(countryCode).min(1)).default({}),
    features: z.record(featureKey, featureDef),
    plans: z
      .record(
        entityId,
        planDef.extend({
          migrate: z
            .enum(["stay", "now", "at_period_end"])
            .optional()
            .describe(
              "When this apply makes a new version of the plan: existing subscribers stay on theirs (default), move now, or each at its own period end",
            ),
        }),
      )
      .default({}),
    prices: z
      .record(z.string().min(1).max(255), priceTarget)
      .default({})
      .describe("billing price/product id -> plan id, or a credit top-up { credits, amount, expiresInDays }"),
  })
  .strict()
  .superRefine((cat, ctx) => {
    for (const [key, f] of Object.entries(cat.features)) {
      const problem = creditCostProblem(f, (k) => own(cat.features, k)?.type);
      if (problem) ctx.addIssue({ code: "custom", path: ["features", key, "creditCost"], message: problem });
      const seat = seatProblem(f, (k) => own(cat.features, k)?.type);
      if (seat) ctx.addIssue({ code: "custom", path: ["features", key, "seat"], message: seat });
    }
    for (const [planId, plan] of Object.entries(cat.plans)) {
      for (const [key, ent] of Object.entries(plan.entitlements)) {
        const feature = own(cat.features, key);
        const path = ["plans", planId, "entitlements", key];
        if (!feature) {
          ctx.addIssue({ code: "custom", path, message: `unknown feature '${key}'` });
          continue;
        }
        const problem =
          typeof ent === "object" && ent.topUp ? "topUp applies to grants only" : shorthandProblem(feature.type, ent);
        if (problem) ctx.addIssue({ code: "custom", path, message: problem });
        const regions =
          typeof ent === "object" && ent.regions ? [...(ent.regions.allow ?? []), ...(ent.regions.deny ?? [])] : [];
        for (const r of regions) {
          const problem = regionRefProblem(r, (g) => own(cat.regionGroups, g) !== undefined);
          if (problem) ctx.addIssue({ code: "custom", path, message: problem });
        }
      }
    }
    for (const [price, target] of Object.entries(cat.prices)) {
      const problem =
        typeof target === "string"
          ? own(cat.plans, target)
            ? null
            : `unknown plan '${target}'`
          : topUpPriceProblem(target, (k) => own(cat.features, k)?.type);
      if (problem) ctx.addIssue({ code: "custom", path: ["prices", price], message: problem });
    }
  });
export type CatalogFile = z.output<typeof catalogFile>;
export type FeatureDef = z.output<typeof featureDef>;
export type PlanDef = z.output<typeof planDef>;

/** What is wrong with a feature's credit cost, or null: only metered features draw, from an existing credits feature. */
export function creditCostProblem(
  f: { type: string; creditCost?: { credits: string } | null },
  typeOf: (key: string) => string | undefined,
): string | null {
  if (!f.creditCost) return null;
  if (f.type !== "metered") return "creditCost applies to metered features only";
  const type = typeOf(f.creditCost.credits);
  if (type === undefined) return `unknown feature '${f.creditCost.credits}'`;
  return type === "credits" ? null : `'${f.creditCost.credits}' is a ${type} feature, not a credits feature`;
}

/** What is wrong with a feature's seat, or null: it names an existing seats feature (and is not one itself). */
export function seatProblem(
  f: { type: string; seat?: string | null },
  typeOf: (key: string) => string | undefined,
): string | null {
  if (!f.seat) return null;
  if (f.type === "seats") return "a seats feature needs no seat of another";
  const type = typeOf(f.seat);
  if (type === undefined) return `unknown feature '${f.seat}'`;
  return type === "seats" ? null : `'${f.seat}' is a ${type} feature, not a seats feature`;
}

/** What is wrong with a top-up price, or null: it tops up an existing credits feature. */
export function topUpPriceProblem(t: { credits: string }, typeOf: (key: string) => string | undefined): string | null {
  const type = typeOf(t.credits);
  if (type === undefined) return `unknown feature '${t.credits}'`;
  return type === "credits" ? null : `'${t.credits}' is a ${type} feature, not a credits feature`;
}

function shorthandProblem(type: string, ent: z.output<typeof entitlementShorthand>): string | null {
  if (typeof ent === "boolean") return null;
  if (typeof ent === "number") return type === "boolean" ? "a boolean feature takes true/false" : null;
  if (typeof ent === "string") return type === "config" ? null : "only config features take a string value";
  return specProblem(type, ent);
}

/** Rules that depend on the feature's type; returns a message, or null when the spec fits. */
export function specProblem(type: string, spec: z.output<typeof entitlementSpec>): string | null {
  const meteredOnly = ["reset", "anchor", "overage", "overageCap", "rollover", "perEntity"] as const;
  if (type !== "metered" && type !== "credits" && meteredOnly.some((k) => spec[k] !== undefined))
    return `${meteredOnly.join("/")} apply to metered and credits features only`;
  if (!hasLimit(type) && spec.limit !== undefined) return "limit applies to metered, credits and seats features only";
  if (spec.perEntity && spec.topUp) return "a topUp has no perEntity limit";
  if (type !== "config" && spec.value !== undefined) return "value applies to config features only";
  if (spec.overageCap != null && spec.overage !== "allow") return "overageCap needs overage: allow";
  if (spec.rollover && spec.reset === "none") return "rollover needs a reset period";
  if (spec.topUp && type !== "credits") return "topUp applies to credits features only";
  if (spec.topUp && (spec.limit == null || spec.limit <= 0))
    return "a topUp needs a positive limit (the credits it adds)";
  return null;
}

/** Expands the shorthand forms of a catalog file into a full entitlement spec. */
export function normalizeEntitlement(
  type: string,
  ent: z.output<typeof entitlementShorthand>,
): z.output<typeof entitlementSpec> {
  if (typeof ent === "boolean") return { enabled: ent };
  if (typeof ent === "number") return hasLimit(type) ? { enabled: true, limit: ent } : { enabled: true, value: ent };
  if (typeof ent === "string") return { enabled: true, value: ent };
  return ent;
}

/**
 * What is wrong with a region rule's reference, or null: a region group that exists (the compiler
 * expands groups first, so a group may be called `EU`); else two upper-case letters name a country,
 * which must be assigned (src/domain/countries.ts); anything else is an unknown group.
 */
export function regionRefProblem(ref: string, groupExists: (name: string) => boolean): string | null {
  if (groupExists(ref)) return null;
  if (/^[A-Z]{2}$/.test(ref)) return isAssignedCountry(ref) ? null : `'${ref}' is ${UNASSIGNED_COUNTRY_MESSAGE}`;
  return `unknown region group '${ref}'`;
}
