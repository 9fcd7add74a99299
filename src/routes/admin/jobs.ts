// /admin/v1/jobs: progress of recompile jobs, and a way to push one forward without waiting for the cron.
import { z } from "@hono/zod-openapi";
import { decodeCursor, page, pageOf, pageQuery } from "../../http/pagination";
import { Problem } from "../../http/problem";
import { newRouter } from "../../http/router";
import { errorResponses, jsonResponse, notFoundResponse, opaqueIdParam } from "../../http/schemas";
import { listJobs, readJob } from "../../store/jobs";
import { runRecompileBatch, toJobView } from "../../write/recompile-jobs";
import { adminRoute } from "./route";

export const jobSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    params: z.object({ scope: z.enum(["all", "plan"]), planId: z.string().optional() }),
    status: z.enum(["running", "done", "failed"]),
    done: z.number().int().describe("Customers recompiled so far"),
    total: z.number().int().describe("Customers in scope when the job started (grows if more are reached)"),
    attempts: z
      .number()
      .int()
      .describe("Batches that failed; the job is failed after RECOMPILE_MAX_ATTEMPTS (default 5)"),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Job");

const notFound = (id: string) => new Problem("not-found", `No job '${id}'.`);
const route = adminRoute("admin: jobs");

const listJobsRoute = route("viewer", {
  method: "get",
  path: "/",
  summary: "Jobs, newest first",
  request: { query: z.object({ status: z.enum(["running", "done", "failed"]).optional(), ...pageQuery }) },
  responses: { 200: jsonResponse(pageOf(jobSchema), "A page of jobs"), ...errorResponses },
});

const getJob = route("viewer", {
  method: "get",
  path: "/{id}",
  summary: "A job's progress",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(jobSchema, "The job"), 404: notFoundResponse, ...errorResponses },
});

const continueJob = route("admin", {
  method: "post",
  path: "/{id}/continue",
  summary: "Recompile the job's next batch now (the cron does this too)",
  request: { params: opaqueIdParam },
  responses: { 200: jsonResponse(jobSchema, "The job after the batch"), 404: notFoundResponse, ...errorResponses },
});

const cursorKey = z.tuple([z.number(), z.string()]);

export const jobRoutes = newRouter();
jobRoutes
  .openapi(listJobsRoute, async (c) => {
    const q = c.req.valid("query");
    const before = decodeCursor(q.cursor, cursorKey);
    const rows = await listJobs(c.env.DB, { status: q.status, before, limit: q.limit + 1 });
    return c.json(
      page(rows, q.limit, (r) => [r.created_at, r.id], toJobView),
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
