// POST /admin/v1/catalog/diff: what PUT /admin/v1/catalog would change, and its blast radius (how
// many customers gain or lose which feature or limit, with examples). Read-only: viewer role.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { catalogFile } from "../../domain/catalog";
import { type CatalogChange, diffCatalog, stateOfFile } from "../../domain/catalog-diff";
import { newRouter } from "../../http/router";
import { adminSecurity, errorResponses, jsonBody, jsonResponse } from "../../http/schemas";
import { readCatalog } from "../../store/catalog-reader";

const EXAMPLES = 5;

const reach = { customers: z.number().int(), examples: z.array(z.string()) };
const effect = z.enum(["gain", "loss", "change"]);

const diffResult = z
  .object({
    destructive: z.boolean().describe("Some customer loses a feature or limit: apply needs --allow-destructive"),
    summary: z.object({
      added: z.number(),
      changed: z.number(),
      removed: z.number(),
      kept: z.number(),
      customersLosing: z.number(),
      customersGaining: z.number(),
    }),
    impact: z.array(
      z
        .object({
          feature: z.string(),
          effect,
          plans: z.array(z.string()),
          details: z.array(z.string()),
          destructive: z.boolean(),
          ...reach,
        })
        .describe("Per feature and effect: which customers feel it"),
    ),
    changes: z.array(
      z.object({
        kind: z.string(),
        op: z.enum(["added", "changed", "removed", "kept"]),
        id: z.string(),
        effect,
        details: z.array(z.string()),
        ...reach,
      }),
    ),
  })
  .openapi("CatalogDiff");

const postDiff = createRoute({
  method: "post",
  path: "/",
  tags: ["admin: catalog"],
  security: adminSecurity,
  summary: "What applying this catalog file would change, and whom it affects (changes nothing)",
  request: { body: jsonBody(catalogFile.openapi("CatalogFile")) },
  responses: { 200: jsonResponse(diffResult, "The difference"), ...errorResponses },
});

export const catalogDiffRoutes = newRouter();
catalogDiffRoutes.use("/", requireRole("viewer"));
catalogDiffRoutes.openapi(postDiff, async (c) => {
  const changes = diffCatalog(await readCatalog(c.env.DB), stateOfFile(c.req.valid("json")));
  const impact = impactOf(changes);
  const groups = [
    ...changes.map((ch) => ch.plans),
    ...impact.map((i) => i.plans),
    ...["loss", "gain"].map((e) => unionOfPlans(impact.filter((i) => i.effect === e))),
  ];
  const reached = await customersOn(c.env.DB, groups, c.var.services.clock.now());
  const at = (i: number) => reached[i] ?? { customers: 0, examples: [] };
  const impacts = impact.map((i, n) => ({
    ...i,
    ...at(changes.length + n),
    destructive: i.effect === "loss" && at(changes.length + n).customers > 0,
  }));
  const count = (op: string) => changes.filter((ch) => ch.op === op).length;
  return c.json(
    {
      destructive: impacts.some((i) => i.destructive),
      summary: {
        added: count("added"),
        changed: count("changed"),
        removed: count("removed"),
        kept: count("kept"),
        customersLosing: at(changes.length + impact.length).customers,
        customersGaining: at(changes.length + impact.length + 1).customers,
      },
      impact: impacts,
      changes: changes.map((ch, n) => ({
        kind: ch.kind,
        op: ch.op,
        id: ch.id,
        effect: ch.effect,
        details: ch.details,
        ...at(n),
      })),
    },
    200,
  );
});

interface Impact {
  feature: string;
  effect: "gain" | "loss" | "change";
  plans: string[];
  details: string[];
}

/** Groups the changes that reach customers by feature and effect. */
function impactOf(changes: CatalogChange[]): Impact[] {
  const byKey = new Map<string, Impact>();
  for (const ch of changes) {
    if (ch.plans.length === 0) continue;
    const feature = ch.feature ?? `plan:${ch.id}`;
    const key = `${feature}\u0000${ch.effect}`;
    const entry = byKey.get(key) ?? { feature, effect: ch.effect, plans: [], details: [] };
    entry.plans = [...new Set([...entry.plans, ...ch.plans])].sort();
    entry.details.push(
      ...ch.details.map((d) =>
        ch.kind === "entitlement" ? `${ch.id.split("/")[0]}: ${ch.op === "changed" ? d : `${ch.op} (${d})`}` : d,
      ),
    );
    byKey.set(key, entry);
  }
  // Losses first: they are what a reviewer must read.
  const rank = { loss: 0, gain: 1, change: 2 };
  return [...byKey.values()].sort(
    (a, b) => rank[a.effect] - rank[b.effect] || (a.feature < b.feature ? -1 : a.feature > b.feature ? 1 : 0),
  );
}

const unionOfPlans = (items: { plans: string[] }[]) => [...new Set(items.flatMap((i) => i.plans))];

/**
 * For each group of plans: how many distinct customers hold one of them now (a live subscription, or
 * one scheduled to switch to it), and a few of their ids. Two queries whatever the number of groups.
 */
async function customersOn(
  db: D1Database,
  groups: string[][],
  now: number,
): Promise<{ customers: number; examples: string[] }[]> {
  const out = groups.map(() => ({ customers: 0, examples: [] as string[] }));
  const wanted = groups.map((plans, g) => ({ g, plans })).filter((x) => x.plans.length > 0);
  if (wanted.length === 0) return out;
  const cte = `WITH g AS (SELECT CAST(j.key AS INTEGER) AS g, p.value AS plan_id FROM json_each(?1) j, json_each(j.value) p),
    live AS (SELECT customer_id, plan_id FROM subscriptions WHERE ${LIVE}
             UNION SELECT customer_id, scheduled_plan_id FROM subscriptions WHERE ${LIVE} AND scheduled_plan_id IS NOT NULL),
    hit AS (SELECT DISTINCT g.g, live.customer_id FROM g JOIN live ON live.plan_id = g.plan_id)`;
  const groupsJson = JSON.stringify(Object.fromEntries(wanted.map((x) => [x.g, x.plans])));
  const [counts, examples] = await db.batch<{ g: number; n?: number; customer_id?: string }>([
    db.prepare(`${cte} SELECT g, COUNT(*) AS n FROM hit GROUP BY g`).bind(groupsJson, now),
    db
      .prepare(
        `${cte} SELECT g, customer_id FROM (SELECT g, customer_id, ROW_NUMBER() OVER (PARTITION BY g ORDER BY customer_id) AS rn FROM hit) WHERE rn <= ${EXAMPLES} ORDER BY g, customer_id`,
      )
      .bind(groupsJson, now),
  ]);
  for (const r of counts!.results) out[r.g]!.customers = r.n ?? 0;
  for (const r of examples!.results) out[r.g]!.examples.push(r.customer_id!);
  return out;
}

/** A subscription that gives access now (or will, by a scheduled change): mirrors subscriptionWindows. */
const LIVE = `status IN ('trialing', 'active', 'past_due') AND (ended_at IS NULL OR ended_at > ?2) AND (cancel_at IS NULL OR cancel_at > ?2)`;
