// The bench's second Worker (check-rpc): an app on Workers that reaches Tollgate only through a
// service binding to its TollgateRpc entrypoint (server.mjs binds it), as docs/api.md shows. It takes
// the same request the HTTP scenarios send and answers the decision, so the load generator sees the
// same work; what Tollgate skips is the HTTP parsing, the validation middleware and the API-key lookup.
export default {
  async fetch(request, env) {
    const result = await env.TOLLGATE.check(await request.json());
    return result.ok ? Response.json(result.value) : Response.json(result.problem, { status: result.problem.status });
  },
};
