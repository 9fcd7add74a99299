// One way to make a router: an OpenAPIHono whose validation failures become problem+json 400s, so
// every sub-app validates with zod and documents itself in /openapi.json from the same schemas.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { zodProblem } from "./problem";

export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodProblem(result.error, result.target);
    },
  });
}
