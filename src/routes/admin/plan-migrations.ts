// /admin/v1/plans/{id}/versions and /migrations: a plan's versions (with how many live subscriptions are
// on each), and moving existing subscribers to a newer version (domain/plan-versions.ts). A migration
// can be previewed (`preview: true`: who gains or loses what, per version in use, nothing written), is
// audited, shows its progress, can be cancelled, and only one runs per plan at a time (409
// `migration_running`). It is one row whatever the number of subscribers: checks resolve it.
import { z } from "@hono/zod-openapi";
import { entityId } from "../../domain/catalog";
import { compareSpecs } from "../../domain/catalog-diff";
import { iso } from "../../domain/time";
import { auditReason } from "../../http/audit-reason";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { conflictResponse, errorResponses, jsonBody, jsonResponse, notFoundResponse } from "../../http/schemas";
import { readCatalog, readCatalogFacts } from "../../store/catalog";
import {
  cancelPlanMigrationStatement,
  pendingSubscribers,
  planMigrations,
  planVersions,
  readPlanMigration,
} from "../../store/plan-versions";
import { commitCatalogWrite } from "../../write/catalog-write";
import { migrationWire, migrationWrite } from "../../write/plan-migration";
import { planOr404 } from "./plans";
import { adminRoute, catalogWrittenFields } from "./route";

const route = adminRoute("admin: plans");
const planParam = z.object({ id: entityId });
const migrationParams = z.object({ id: entityId, mid: z.string().min(1).max(128) });

const migrationSchema = z
  .object({
    id: z.string(),
    planId: z.string(),
    toVersion: z.number().int(),
    mode: z.enum(["now", "at_period_end"]),
    at: z.string(),
    cancelledAt: z.string().nullable(),
    createdBy: z.string(),
    status: z.enum(["running", "done", "cancelled"]),
    pending: z.number().int().describe("Live subscriptions still to move at their period end"),
  })
  .openapi("PlanMigration");

const versionSchema = z
  .object({
    version: z.number().int(),
    current: z.boolean().describe("What new subscriptions get"),
    subscribers: z.number().int().describe("Live subscriptions on this version"),
    entitlements: z.record(z.string(), z.any()),
    createdAt: z.string(),
  })
  .openapi("PlanVersion");

const startInput = z
  .object({
    mode: z.enum(["now", "at_period_end"]),
    toVersion: z.number().int().positive().optional().describe("Default: the plan's current version"),
    preview: z.boolean().default(false).describe("Only say who gains or loses what; write nothing"),
  })
  .strict()
  .openapi("PlanMigrationInput");

const listVersions = route("viewer", {
  method: "get",
  path: "/{id}/versions",
  summary: "A plan's versions, with the live subscriptions on each",
  request: { params: planParam },
  responses: {
    200: jsonResponse(z.object({ items: z.array(versionSchema) }), "The versions"),
    404: notFoundResponse,
    ...errorResponses,
  },
});
const listMigrations = route("viewer", {
  method: "get",
  path: "/{id}/migrations",
  summary: "A plan's migrations with their progress",
  request: { params: planParam },
  responses: {
    200: jsonResponse(z.object({ items: z.array(migrationSchema) }), "The migrations"),
    404: notFoundResponse,
    ...errorResponses,
  },
});
const startMigration = route("admin", {
  method: "post",
  path: "/{id}/migrations",
  summary: "Move existing subscribers to a newer version (or preview who gains or loses what)",
  request: { params: planParam, body: jsonBody(startInput) },
  responses: {
    200: jsonResponse(z.object({ preview: z.any() }), "The preview (nothing written)"),
    201: jsonResponse(z.object({ migration: migrationSchema, ...catalogWrittenFields }), "Started"),
    404: notFoundResponse,
    409: conflictResponse,
    ...errorResponses,
  },
});
const cancelMigration = route("admin", {
  method: "post",
  path: "/{id}/migrations/{mid}/cancel",
  summary: "Cancel a running migration: subscriptions not moved yet stay on their version",
  request: { params: migrationParams },
  responses: {
    200: jsonResponse(z.object({ migration: migrationSchema, ...catalogWrittenFields }), "Cancelled"),
    404: notFoundResponse,
    409: conflictResponse,
    ...errorResponses,
  },
});

type Migration = NonNullable<Awaited<ReturnType<typeof readPlanMigration>>>;
async function withProgress(db: D1Database, m: Migration, now: number) {
  const pending = await pendingSubscribers(db, m, now);
  const status = m.cancelledAt !== null ? "cancelled" : pending > 0 ? "running" : "done";
  return { ...migrationWire(m), status, pending } as const;
}

export const planMigrationRoutes = newRouter();
planMigrationRoutes
  .openapi(listVersions, async (c) => {
    const { id } = c.req.valid("param");
    const plan = await planOr404(c.env.DB, id);
    const items = (await planVersions(c.env.DB, id)).map((v) => ({
      version: v.version,
      current: v.version === plan.version,
      subscribers: v.subscribers,
      entitlements: v.entitlements,
      createdAt: iso(v.createdAt),
    }));
    return c.json({ items }, 200);
  })
  .openapi(listMigrations, async (c) => {
    const { id } = c.req.valid("param");
    await planOr404(c.env.DB, id);
    const now = c.var.services.clock.now();
    const items = [];
    for (const m of await planMigrations(c.env.DB, id)) items.push(await withProgress(c.env.DB, m, now));
    return c.json({ items }, 200);
  })
  .openapi(startMigration, async (c) => {
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    const db = c.env.DB;
    const plan = await planOr404(db, id);
    const toVersion = input.toVersion ?? plan.version;
    const versions = await planVersions(db, id);
    const target = versions.find((v) => v.version === toVersion);
    if (!target) throw new Problem("not-found", `Plan '${id}' has no version ${toVersion}.`);
    const older = versions.filter((v) => v.version < toVersion && v.subscribers > 0);
    if (input.preview) {
      const [facts, catalog] = await Promise.all([readCatalogFacts(db), readCatalog(db)]);
      const groups = catalog.regionGroups;
      const preview = older.map((v) => {
        const keys = [...new Set([...Object.keys(v.entitlements), ...Object.keys(target.entitlements)])].sort();
        const changes = keys.flatMap((key) => {
          const type = facts.featureTypes.get(key) ?? "boolean";
          const b = v.entitlements[key] ?? { enabled: false };
          const a = target.entitlements[key] ?? { enabled: false };
          return compareSpecs(b, a, type, groups, groups).map((e) => ({ feature: key, ...e }));
        });
        return { fromVersion: v.version, subscribers: v.subscribers, changes };
      });
      return c.json({ preview: { planId: id, toVersion, mode: input.mode, versions: preview } }, 200);
    }
    const w = await migrationWrite(c, id, toVersion, input.mode, auditReason(c));
    const published = await commitCatalogWrite(c, [w.statement], [w.audit]);
    const migration = await withProgress(db, w.migration, c.var.services.clock.now());
    return c.json({ migration, ...published }, 201);
  })
  .openapi(cancelMigration, async (c) => {
    const { id, mid } = c.req.valid("param");
    const db = c.env.DB;
    const m = await readPlanMigration(db, mid);
    if (!m || m.planId !== id) throw new Problem("not-found", `No migration '${mid}' of plan '${id}'.`);
    const now = c.var.services.clock.now();
    const before = await withProgress(db, m, now);
    if (before.status !== "running")
      throw new Problem("conflict", `Migration '${mid}' is ${before.status}: nothing left to cancel.`, {
        reason: before.status,
      });
    const after = { ...m, cancelledAt: now };
    const published = await commitCatalogWrite(
      c,
      [cancelPlanMigrationStatement(db, mid, now)],
      [
        {
          action: "plan.migration.cancel",
          entityType: "plan_migration",
          entityId: mid,
          before,
          after: migrationWire(after),
          reason: auditReason(c),
        },
      ],
    );
    return c.json({ migration: await withProgress(db, after, now), ...published }, 200);
  });
