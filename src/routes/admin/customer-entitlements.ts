// /admin/v1/customers/{id}/entitlements: for audits, disputes and support.
// - /explain: per feature, what the customer has now and why: each plan, add-on and grant with its
//   window and what it did (from the snapshot the check path reads, explained by src/domain/explain.ts);
//   ?minVersion= reads a write's own result, as a check does.
// - ?at=<instant>: what the customer was entitled to then: the customer part and the catalog in force
//   at `at` (store/snapshot-history.ts), composed and evaluated at `at`. Usage counters are not part of
//   history.
import { z } from "@hono/zod-openapi";
import { checkDeps, requireSnapshot, toDecision } from "../../check-path";
import { featureKey } from "../../domain/catalog";
import { evaluate } from "../../domain/evaluate";
import { type ExplainedSource, explainSnapshot } from "../../domain/explain";
import { iso, isoOrNull } from "../../domain/time";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import {
  countryParam,
  errorResponses,
  featureTypeSchema,
  idParam,
  jsonResponse,
  minVersionQuery,
  notFoundResponse,
  roleParam,
} from "../../http/schemas";
import { snapshotAt } from "../../store/snapshot-history";
import { adminRoute } from "./route";

const route = adminRoute("admin: customers");
const context = { role: roleParam.optional(), country: countryParam.optional() };

const explainSchema = z
  .object({
    customerId: z.string(),
    snapshotVersion: z.number().int(),
    compiledAt: z.string(),
    evaluatedAt: z.string(),
    features: z.record(
      z.string(),
      z.object({
        type: featureTypeSchema,
        granted: z.boolean().describe("Has the feature at all (before role, region and usage rules)"),
        check: z
          .object({ allowed: z.boolean(), reason: z.string() })
          .describe("A check now, in the ?role=&country= context"),
        effective: z.any().nullable(),
        lapse: z.string().nullable(),
        changesAt: z.string().nullable(),
        sources: z.array(z.any()),
      }),
    ),
  })
  .openapi("EntitlementsExplained");

const historySchema = z
  .object({
    customerId: z.string(),
    at: z.string(),
    snapshotVersion: z.number().int(),
    compiledAt: z.string(),
    features: z.record(z.string(), z.any()),
  })
  .openapi("EntitlementsAt");

const explain = route("viewer", {
  method: "get",
  path: "/{id}/entitlements/explain",
  summary: "Per feature: what the customer has and why (which plan, add-on or grant, until when)",
  request: {
    params: idParam,
    query: z.object({ feature: featureKey.optional(), minVersion: minVersionQuery.optional(), ...context }),
  },
  responses: { 200: jsonResponse(explainSchema, "The explanation"), 404: notFoundResponse, ...errorResponses },
});

const atInstant = route("viewer", {
  method: "get",
  path: "/{id}/entitlements",
  summary: "What the customer was entitled to at a past instant (snapshot history)",
  request: {
    params: idParam,
    query: z.object({ at: z.iso.datetime({ offset: true }).optional().describe("Default: now"), ...context }),
  },
  responses: {
    200: jsonResponse(historySchema, "Entitlements at that instant"),
    404: notFoundResponse,
    ...errorResponses,
  },
});

const wireSource = (s: ExplainedSource) => ({ ...s, from: isoOrNull(s.from), until: isoOrNull(s.until) });

export const customerEntitlementRoutes = newRouter();
customerEntitlementRoutes
  .openapi(explain, async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    const now = c.var.services.clock.now();
    // minVersion: read-your-writes, as on the check path (a 409 while the write is not visible yet).
    const { snapshot } = await requireSnapshot(checkDeps(c), id, now, q.minVersion);
    if (q.feature && !Object.hasOwn(snapshot.features, q.feature))
      throw new Problem("not-found", `No feature '${q.feature}' in the catalog.`);
    const features: z.input<typeof explainSchema>["features"] = {};
    for (const [key, f] of Object.entries(explainSnapshot(snapshot, now, q.feature))) {
      const ev = evaluate(snapshot, { feature: key, role: q.role, country: q.country }, now);
      features[key] = {
        ...f,
        check: { allowed: ev.allowed, reason: ev.reason },
        changesAt: isoOrNull(f.changesAt),
        sources: f.sources.map(wireSource),
      };
    }
    return c.json(
      {
        customerId: id,
        snapshotVersion: snapshot.version,
        compiledAt: iso(snapshot.compiledAt),
        evaluatedAt: iso(now),
        features,
      },
      200,
    );
  })
  .openapi(atInstant, async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    const now = c.var.services.clock.now();
    const at = q.at === undefined ? now : Date.parse(q.at);
    if (at > now)
      throw new Problem("validation", "`at` is in the future: history only answers for the past.", {
        errors: [{ path: "query.at", message: "must not be in the future" }],
      });
    const snapshot = await snapshotAt(c.env.DB, id, at);
    if (!snapshot)
      throw new Problem("not-found", `No snapshot of customer '${id}' was compiled at or before ${iso(at)}.`);
    const features: Record<string, unknown> = {};
    for (const key of Object.keys(snapshot.features)) {
      const {
        customerId: _c,
        feature: _f,
        snapshotVersion: _v,
        version: _t,
        snapshotAgeMs: _a,
        evaluatedAt: _e,
        ...rest
      } = toDecision(snapshot, evaluate(snapshot, { feature: key, role: q.role, country: q.country }, at), at);
      features[key] = rest;
    }
    return c.json(
      {
        customerId: id,
        at: iso(at),
        snapshotVersion: snapshot.version,
        compiledAt: iso(snapshot.compiledAt),
        features,
      },
      200,
    );
  });
