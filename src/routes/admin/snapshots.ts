// Recovery: /admin/v1/snapshots/{verify,rebuild}. KV is never the source of record; these compare
// every customer part in KV with a fresh compile from D1 (verify) and rewrite the ones that drifted
// (rebuild), a page of customers per request so a deployment of any size stays under a Worker
// invocation's limits; the first page also compares the shared catalog (pointer and object) with D1.
// scripts/snapshots.mjs drives the pages (progress, resume, rate limits).
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { actorOf } from "../../auth/principal";
import { entityId } from "../../domain/catalog";
import { compileCatalog, isCompiledCatalog } from "../../domain/catalog-compile";
import { canonical } from "../../domain/catalog-diff";
import { compilePart } from "../../domain/customer-part";
import { type Drift, partDrift } from "../../domain/part-drift";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse, notFoundResponse } from "../../http/schemas";
import { countCustomers, customerExists, customerIdsAfter } from "../../store/customer-ids";
import { loadCatalogRows, loadPartRows } from "../../store/customer-rows";
import { kvKeys } from "../../store/kv";
import { compileAndPublishCatalog } from "../../store/snapshot-publisher";
import { auditStatement } from "../../write/commit";
import { adminRoute } from "./route";

const route = adminRoute("admin: operations");

// Per customer: one KV read, one D1 batch and, on a rebuild, one KV write and one D1 insert, so
// 200 customers stay well under the ~1000 subrequests of one invocation.
const pageInput = {
  cursor: z.string().max(300).nullable().optional().describe("nextCursor of the previous page; absent: start"),
  limit: z.number().int().min(1).max(200).default(50).describe("customers in this page"),
  customerId: entityId.optional().describe("only this customer"),
  concurrency: z.number().int().min(1).max(16).default(6).describe("customers processed at once"),
};
const verifyInput = z.object(pageInput).strict().openapi("SnapshotVerifyInput");
const rebuildInput = z
  .object({
    ...pageInput,
    force: z.boolean().default(false).describe("rewrite every snapshot, not only the ones that drifted"),
  })
  .strict()
  .openapi("SnapshotRebuildInput");

const driftSchema = z
  .object({
    customerId: z.string(),
    kind: z.enum(["missing", "unreadable", "stale", "ahead", "different"]),
    kvVersion: z.number().nullable(),
    freshVersion: z.number(),
    fields: z.array(z.string()),
  })
  .openapi("SnapshotDrift");
const catalogDriftSchema = z
  .object({
    kind: z.enum(["missing", "unreadable", "stale", "ahead", "different"]).nullable().describe("null: in step"),
    kvRev: z.number().int().nullable().describe("the revision KV's pointer names"),
    freshRev: z.number().int().describe("D1's catalog revision"),
  })
  .openapi("CatalogDrift");
const page = {
  processed: z.number().int(),
  nextCursor: z.string().nullable(),
  total: z.number().int().optional().describe("all customers (first page only)"),
  catalog: catalogDriftSchema.optional().describe("the shared catalog against D1 (first page only)"),
};

const verify = route("viewer", {
  method: "post",
  path: "/verify",
  summary: "Compare KV's customer parts (and, on the first page, the catalog) with D1 (writes nothing)",
  request: { body: jsonBody(verifyInput) },
  responses: {
    200: jsonResponse(z.object({ ...page, drift: z.array(driftSchema) }), "The drift in this page"),
    404: notFoundResponse,
    ...errorResponses,
  },
});

// Rewriting KV from D1 cannot grant anything D1 does not: support may repair a customer.
const rebuild = route("support", {
  method: "post",
  path: "/rebuild",
  summary: "Recompile customer parts (and the catalog) from D1 and rewrite the ones that drifted",
  request: { body: jsonBody(rebuildInput) },
  responses: {
    200: jsonResponse(
      z.object({
        ...page,
        changed: z.number().int().describe("customer parts that had drifted, now rewritten"),
        rewritten: z.number().int().describe("KV writes (changed, or all with force)"),
        drift: z.array(driftSchema),
      }),
      "What was rewritten",
    ),
    404: notFoundResponse,
    ...errorResponses,
  },
});

export const snapshotRoutes = newRouter();
snapshotRoutes
  .openapi(verify, async (c) => {
    const input = c.req.valid("json");
    const { ids, nextCursor, total } = await customerPage(c.env.DB, input);
    const now = c.var.services.clock.now();
    const results = await mapLimit(ids, input.concurrency, (id) => driftOf(c, id, now));
    const catalog = input.cursor || input.customerId ? undefined : await catalogDriftOf(c, now);
    return c.json(
      {
        processed: ids.length,
        nextCursor,
        ...(total === undefined ? {} : { total }),
        ...(catalog ? { catalog } : {}),
        drift: results.filter((d): d is Drift => d !== null),
      },
      200,
    );
  })
  .openapi(rebuild, async (c) => {
    const input = c.req.valid("json");
    const { ids, nextCursor, total } = await customerPage(c.env.DB, input);
    const now = c.var.services.clock.now();
    let catalog: CatalogDrift | undefined;
    if (!input.cursor && !input.customerId) {
      catalog = await catalogDriftOf(c, now);
      if (catalog.kind !== null || input.force) {
        c.var.services.snapshots.catalogs.adopt(await compileAndPublishCatalog(c.env, now, "drift"), now);
      }
    }
    const results = await mapLimit(ids, input.concurrency, async (id) => {
      const drift = await driftOf(c, id, now);
      if (!drift && !input.force) return { drift, written: false };
      // Through the snapshot store: KV, the snapshot history and this isolate's cache, as after any write.
      const written = (await c.var.services.snapshots.compile(c.env, id, now, { repair: "drift" })) !== null;
      return { drift, written };
    });
    const drift = results.flatMap((r) => (r.drift && r.written ? [r.drift] : []));
    const rewritten = results.filter((r) => r.written).length;
    const catalogRewritten = catalog !== undefined && (catalog.kind !== null || input.force);
    if (rewritten > 0 || catalogRewritten) {
      const after = {
        changed: drift.map((d) => ({ customerId: d.customerId, kind: d.kind })),
        rewritten,
        ...(catalogRewritten ? { catalog } : {}),
        force: input.force,
      };
      const entry = {
        action: "snapshots.rebuild",
        entityType: "snapshot",
        entityId: input.customerId ?? "all",
        customerId: input.customerId ?? null,
        after,
      };
      await auditStatement(c.env.DB, entry, actorOf(c.var.principal), now, c.var.requestId).run();
    }
    return c.json(
      {
        processed: ids.length,
        changed: drift.length,
        rewritten,
        nextCursor,
        ...(total === undefined ? {} : { total }),
        ...(catalog ? { catalog } : {}),
        drift,
      },
      200,
    );
  });

/** The KV copy against a fresh compile from D1; null when they agree (or the customer is gone). */
async function driftOf(c: Context<AppEnv>, customerId: string, now: number): Promise<Drift | null> {
  const [kvText, rows] = await Promise.all([
    c.env.SNAPSHOTS.get(kvKeys.part(customerId), "text").catch((err) => unavailable("KV", err)),
    loadPartRows(c.env.DB, customerId).catch((err) => unavailable("D1", err)),
  ]);
  return rows ? partDrift(customerId, kvText, compilePart(rows, now)) : null;
}

type CatalogDrift = z.infer<typeof catalogDriftSchema>;

/** KV's catalog pointer and the object it names against a fresh compile of D1's catalog. */
async function catalogDriftOf(c: Context<AppEnv>, now: number): Promise<CatalogDrift> {
  const [pointer, rows] = await Promise.all([
    c.env.SNAPSHOTS.get<{ rev?: unknown }>(kvKeys.catalogHead, "json").catch((err) => unavailable("KV", err)),
    loadCatalogRows(c.env.DB).catch((err) => unavailable("D1", err)),
  ]);
  const fresh = compileCatalog(rows, now);
  const kvRev = typeof pointer?.rev === "number" ? pointer.rev : null;
  const base = { kvRev, freshRev: fresh.rev };
  if (kvRev === null) return { ...base, kind: "missing" };
  if (kvRev < fresh.rev) return { ...base, kind: "stale" };
  if (kvRev > fresh.rev) return { ...base, kind: "ahead" };
  const stored = await c.env.SNAPSHOTS.get(kvKeys.catalog(kvRev), "json").catch((err) => unavailable("KV", err));
  if (!isCompiledCatalog(stored)) return { ...base, kind: stored === null ? "missing" : "unreadable" };
  const same = (["features", "regionGroups", "plans"] as const).every(
    (k) => canonical(stored[k]) === canonical(fresh[k]),
  );
  return { ...base, kind: same ? null : "different" };
}

/** A store that fails mid-page: 503 with Retry-After, which scripts/snapshots.mjs waits out and retries. */
function unavailable(store: string, err: unknown): never {
  console.error(JSON.stringify({ msg: "snapshot recovery: store failed", store, error: String(err) }));
  throw new Problem("unavailable", `${store} cannot be read right now; retry this page.`, {
    headers: { "Retry-After": "5" },
  });
}

/** Customers in id order after the cursor (the last id of the previous page). */
async function customerPage(db: D1Database, input: { cursor?: string | null; limit: number; customerId?: string }) {
  if (input.customerId) {
    if (!(await customerExists(db, input.customerId)))
      throw new Problem("not-found", `Customer '${input.customerId}' does not exist.`);
    return { ids: [input.customerId], nextCursor: null, total: 1 };
  }
  const fetched = await customerIdsAfter(db, input.cursor ?? "", input.limit + 1);
  const ids = fetched.slice(0, input.limit);
  const nextCursor = fetched.length > input.limit ? (ids[ids.length - 1] ?? null) : null;
  // Counting reads every row: only on the first page, for the progress bar.
  const total = input.cursor ? undefined : await countCustomers(db);
  return { ids, nextCursor, total };
}

/** Like Promise.all(items.map(fn)), at most `limit` at a time; results keep the input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
