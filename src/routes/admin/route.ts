// The one way an admin route is declared: its tag, the least role it needs, and the OpenAPI spec.
// The role check is route middleware (requireRole), so it is enforced before validation and documented
// in one place; every admin route shares the security schemes. After it, and before the schema reads
// the body, the body's nesting and config values are bounded (boundAdminBody, http/guards.ts).
import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import type { OperatorRole } from "../../auth/operator-jwt";
import { boundAdminBody } from "../../http/guards";
import { adminSecurity } from "../../http/schemas";

type AdminRouteSpec = Omit<RouteConfig, "tags" | "security" | "middleware">;

/** `adminRoute(tag)` returns a declarer for one resource's routes: `route("viewer", { method, path, ... })`. */
export function adminRoute(tag: string) {
  const tags = [tag];
  return <P extends string, R extends AdminRouteSpec & { path: P }>(role: OperatorRole, spec: R) =>
    createRoute({ ...spec, tags, security: adminSecurity, middleware: [requireRole(role), boundAdminBody] as const });
}

/** What every catalog write answers besides its entity (write/catalog-write.ts). */
export const catalogWrittenFields = {
  catalogRev: z.number().int().describe("The catalog revision this write made"),
  version: z
    .string()
    .describe('"0.<catalogRev>": pass as minVersion to read a check composed with this catalog or a newer one'),
};
