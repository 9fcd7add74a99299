// Wire schemas shared by several routes (and by the OpenAPI document).
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { entityId, featureType } from "../domain/catalog";
import { edgeCountryCode, isAssignedCountry, UNASSIGNED_COUNTRY_MESSAGE } from "../domain/countries";
import { REASONS } from "../domain/types";
import { type MinVersion, parseMinVersion } from "../domain/version";

export const customerIdParam = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, "letters, digits, '_', '.', ':', '@', '-'")
  .openapi({ example: "acme" });

/** An entity inside a customer has a customer id's form (so `customer/entity` is unambiguous: neither holds '/'). */
export const entityIdParam = customerIdParam
  .describe("the user, seat or device inside the customer the call is for (docs/model.md, Entities)")
  .openapi({ example: "user_42" });

/** Any plausible feature key is accepted: a key missing from the catalog is a 200 "unknown_feature", not a 400. */
export const featureParam = z.string().min(1).max(128).openapi({ example: "sso" });

/** An assigned ISO 3166-1 alpha-2 code (src/domain/countries.ts); lower case accepted. */
export const countryParam = z
  .string()
  .regex(/^[A-Za-z]{2}$/, "ISO 3166-1 alpha-2 country code")
  .transform((s) => s.toUpperCase())
  .refine(isAssignedCountry, UNASSIGNED_COUNTRY_MESSAGE)
  .openapi({ example: "DE", type: "string" });

/** An instant in a request: ISO 8601 with an offset, parsed to ms since the epoch. */
export const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

/** `{id}` of a named entity (customer, plan, subscription): the catalog's id rules. */
export const idParam = z.object({ id: entityId });

/** `{id}` of something Tollgate generated (grant, API key, job): any short opaque string. */
export const opaqueIdParam = z.object({ id: z.string().min(1).max(128) });

/**
 * The country the edge saw (`request.cf.country`), or undefined: without `cf`, and for the edge's
 * placeholders `XX` (unknown) and `T1` (Tor), which name no country. A region rule then judges the
 * request as one without a country: an allow list blocks it, a deny list does not.
 */
export const edgeCountry = (c: Context<AppEnv>) => edgeCountryCode(c.req.raw.cf?.country);

const MIN_VERSION_HELP = 'a snapshotVersion (integer) or a version token "<customer rev>.<catalog rev>"';

const toMinVersion = (raw: string | number, ctx: z.RefinementCtx): MinVersion => {
  const parsed = parseMinVersion(raw);
  if (parsed) return parsed;
  ctx.addIssue({ code: "custom", message: `minVersion must be ${MIN_VERSION_HELP}` });
  return z.NEVER;
};

/**
 * Read-your-writes (domain/version.ts): the `version` a write returned ("c.k"), or its older numeric
 * `snapshotVersion`. In a JSON body: a number or a string; in a query: a string.
 */
export const minVersionBody = z
  .union([z.number(), z.string().max(40)])
  .transform(toMinVersion)
  .openapi({
    description: `Read-your-writes: never answer from an older snapshot; ${MIN_VERSION_HELP}`,
    example: "12.4",
  });
export const minVersionQuery = z
  .string()
  .max(40)
  .transform(toMinVersion)
  .openapi({
    description: `Read-your-writes: never answer from an older snapshot; ${MIN_VERSION_HELP}`,
    example: "12.4",
  });

/** What a customer write answers about the snapshot it made (domain/version.ts WriteVersion). */
export const writeVersionFields = {
  snapshotVersion: z.number().int().describe("customer rev + catalog rev, as numeric minVersion"),
  version: z.string().describe('"<customer rev>.<catalog rev>": pass as minVersion to read this write'),
};
/** A write that changed no snapshot (a customer with nothing compiled yet). */
export const NO_WRITE_VERSION = { snapshotVersion: 0, version: "0.0" } as const;

export const roleParam = z.string().min(1).max(64).openapi({ example: "admin" });

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

export const reasonSchema = z.enum(REASONS).openapi("Reason");

/** A metered feature with a credit cost: the credit balance it draws from (docs/model.md, Credits). */
export const creditBalanceSchema = z
  .object({
    feature: z.string().describe("the credits feature"),
    cost: z.number().describe("credits one unit of the checked feature draws"),
    limit: z.number().nullable(),
    used: z.number(),
    remaining: z.number().nullable().describe("the period's allowance and the open top-ups together"),
    topUpRemaining: z.number().optional().describe("credits left in open top-ups (drawn first)"),
  })
  .openapi("CreditBalance");

export const featureTypeSchema = z.enum(featureType.options).openapi("FeatureType");

/** A check for an entity: the seat it holds and its own limit (docs/model.md, Entities). */
export const entityViewSchema = z
  .object({
    id: z.string().describe("the entity (user, seat, device) inside the customer"),
    seat: z
      .object({ feature: z.string(), held: z.boolean() })
      .optional()
      .describe("the seats feature this feature needs, and whether the entity holds one of its seats"),
    limit: z.number().optional().describe("the per-entity limit (perEntity) of its period"),
    used: z.number().optional(),
    remaining: z.number().optional(),
    resetsAt: z.string().nullable().optional(),
  })
  .openapi("EntityView");

/** Which bound denied an entity's check or usage when the customer's own terms allow it. */
export const deniedBySchema = z
  .enum(["seat", "entity_limit"])
  .describe("an entity's denial: it holds no seat, or its per-entity limit is reached (absent: the customer's)");

export const decisionSchema = z
  .object({
    allowed: z.boolean(),
    reason: reasonSchema,
    customerId: z.string(),
    feature: z.string(),
    type: featureTypeSchema.optional(),
    value: z.any().optional(),
    limit: z.number().nullable().optional(),
    used: z.number().optional(),
    remaining: z.number().nullable().optional(),
    usageAgeMs: z
      .number()
      .optional()
      .describe(
        "Metered: how old `used` is in ms: 0 when the meter was asked, else the age of this isolate's usage summary (at most maxUsageAgeMs)",
      ),
    resetsAt: z.string().nullable().optional(),
    expiresAt: z.string().nullable().optional(),
    snapshotVersion: z.number().int().describe("customer rev + catalog rev (for display; compare `version`)"),
    version: z
      .string()
      .describe('"<customer rev>.<catalog rev>": pass as minVersion; newer when both parts are >= (docs/api.md)'),
    snapshotAgeMs: z.number(),
    evaluatedAt: z.string(),
    degraded: z.boolean().optional(),
    degradedReason: z
      .enum(["stores_unavailable", "read_through_limited"])
      .optional()
      .describe(
        "why a degraded answer is degraded: KV and D1 failed, or this isolate's D1 read-through budget was spent",
      ),
    failurePolicy: z.enum(["open", "closed"]).optional(),
    credits: creditBalanceSchema.optional(),
    entity: entityViewSchema.optional(),
    deniedBy: deniedBySchema.optional(),
    rolledOver: z
      .number()
      .optional()
      .describe("with a rollover: what earlier periods carried over and is left (counted in remaining, drawn first)"),
    topUpRemaining: z
      .number()
      .optional()
      .describe("a credits feature: credits left in open top-ups (counted in remaining, drawn first)"),
    upgrade: z
      .array(
        z.object({
          planId: z.string(),
          kind: z.enum(["base", "addon"]),
          limit: z.number().nullable().optional().describe("Metered: the limit with it (null: unlimited)"),
        }),
      )
      .optional()
      .describe(
        'With "include": ["upgrade"] on a not_entitled or limit_reached denial: what would allow it, lowest tier first',
      ),
  })
  .openapi("Decision");

/** A documented problem+json response. */
export const problemDoc = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: problemSchema } },
});
const problem = problemDoc;
export const notFoundResponse = problemDoc("No such customer, feature or resource");
export const conflictResponse = problemDoc(
  "Conflicts with the current state (idempotency key reused with another body, closed reservation, version not yet available)",
);

/** The error responses every authenticated JSON route can give. */
export const errorResponses = {
  400: problem("Malformed JSON or a schema violation (with `errors`)"),
  401: problem("Missing or bad API key"),
  403: problem("Key without the scope, or bound to another customer"),
  413: problem("Body too large"),
  415: problem("Body is not application/json"),
  503: problem("The stores needed to answer are unavailable"),
} as const;

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

type Security = { [scheme: string]: string[] }[];
/** Public API: an API key as a Bearer token. */
export const apiKeySecurity: Security = [{ apiKey: [] }];
/** Admin API: an operator JWT (Cloudflare Access or Bearer) or an API key with scope admin. */
export const adminSecurity: Security = [{ operatorJwt: [] }, { apiKey: [] }];
