// /admin/v1/jobs: progress of recompile jobs, and a way to push one forward without waiting for the cron.
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../auth/admin";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { adminSecurity, errorResponses, jsonResponse, notFoundResponse, opaqueIdParam } from "../../http/schemas";
import { SqlFilter } from "../../store/sql-filter";
import { type JobRow, readJob, runRecompileBatch, toJobView } from "../../write/recompile-jobs";

const tags = ["admin: jobs"];

export const jobSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    params: z.object({ scope: z.enum(["all", "plan"]), planId: z.string().optional() }),
    status: z.enum(["running", "done", "failed"]),
    done: z.number().int().describe("Customers recompiled so far"),
    total: z.number().int().describe("Customers in scope when the job started (grows if more are reached)"),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Job");

const notFound = (id: string) => new Problem("not-found", `No job '${id}'.`);

const listJobs = createRoute({
  method: "get",
  path: "/",
  tags,
  security: adminSecurity,
  middleware: [requireRole("viewer")],
  summary: "Jobs, newest first",
  request: { query: z.object({ status: z.enum(["running", "done", "failed"]).optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(jobSchema), "A page of jobs"), ...errorResponses },
});

const getJob = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  security: adminSecurity,
  middleware: [requireRole("viewer")],
  summary: "A job's progress",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(jobSchema, "The job"), 404: notFoundResponse, ...errorResponses },
});

const continueJob = createRoute({
  method: "post",
  path: "/{id}/continue",
  tags,
  security: adminSecurity,
  middleware: [requireRole("admin")],
  summary: "Recompile the job's next batch now (the cron does this too)",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(jobSchema, "The job after the batch"), 404: notFoundResponse, ...errorResponses },
});

const cursorKey = z.tuple([z.number(), z.string()]);

export const jobRoutes = newRouter();
jobRoutes
  .openapi(listJobs, async (c) => {
    const q = c.req.valid("query");
    const after = decodeCursor(q.cursor, cursorKey);
    const f = new SqlFilter()
      .when(q.status, "status = ?")
      .when(after, "(created_at, id) < (?, ?)", after?.[0], after?.[1]);
    const rows = await c.env.DB.prepare(`SELECT * FROM jobs ${f.sql} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .bind(...f.params, q.limit + 1)
      .all<JobRow>();
    return c.json(
      page(rows.results, q.limit, (r) => [r.created_at, r.id], toJobView),
      200,
    );
  })
  .openapi(getJob, async (c) => {
    const { id } = c.req.valid("param");
    const job = await readJob(c.env.DB, id);
    if (!job) throw notFound(id);
    return c.json(toJobView(job), 200);
  })
  .openapi(continueJob, async (c) => {
    const { id } = c.req.valid("param");
    const { job } = await runRecompileBatch(c.env, c.var.services, id, c.var.services.clock.now());
    if (!job) throw notFound(id);
    return c.json(toJobView(job), 200);
  });
