// POST /admin/v1/catalog/diff: what PUT /admin/v1/catalog would change, and its blast radius (how
// many customers gain or lose which feature or limit, with examples). Read-only: viewer role.
import { z } from "@hono/zod-openapi";
import { catalogFile } from "../../domain/catalog";
import { type CatalogChange, diffCatalog, stateOfFile } from "../../domain/catalog-diff";
import { newRouter } from "../../http/router";
import { errorResponses, jsonBody, jsonResponse } from "../../http/schemas";
import { customersOnPlans, readCatalog } from "../../store/catalog";
import { adminRoute } from "./route";

// Customer ids shown per change and per impact.
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

const route = adminRoute("admin: catalog");

const postDiff = route("viewer", {
  method: "post",
  path: "/",
  summary: "What applying this catalog file would change, and whom it affects (changes nothing)",
  request: { body: jsonBody(catalogFile.openapi("CatalogFile")) },
  responses: { 200: jsonResponse(diffResult, "The difference"), ...errorResponses },
});

export const catalogDiffRoutes = newRouter();
catalogDiffRoutes.openapi(postDiff, async (c) => {
  const changes = diffCatalog(await readCatalog(c.env.DB), stateOfFile(c.req.valid("json")));
  const impact = impactOf(changes);
  const groups = [
    ...changes.map((ch) => ch.plans),
    ...impact.map((i) => i.plans),
    ...["loss", "gain"].map((e) => unionOfPlans(impact.filter((i) => i.effect === e))),
  ];
  const reached = await customersOnPlans(c.env.DB, groups, c.var.services.clock.now(), EXAMPLES);
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
