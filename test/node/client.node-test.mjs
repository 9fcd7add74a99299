// The built client on plain Node, outside workerd: "tollgate/client" is imported through this
// package's own exports (dist/client, `npm run build`), exactly as another project imports it, and
// talks to a local node:http server that answers like Tollgate. `npm test` builds the client and runs
// this file after vitest (node --test test/node/*.mjs); the name keeps vitest's *.test.* pattern off it.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { TollgateClient, TollgateError } from "tollgate/client";

const KEY = "tg_node-test-key";
const requests = [];
let server;
let baseUrl;

/** A decision as POST /v1/check answers it (src/domain/types.ts Decision). */
const decision = (body) => ({
  allowed: body.feature === "sso",
  reason: body.feature === "sso" ? "ok" : "not_entitled",
  customerId: body.customerId,
  feature: body.feature,
  type: "boolean",
  snapshotVersion: 7,
  snapshotAgeMs: 12,
  evaluatedAt: new Date().toISOString(),
});

/** A problem+json body as src/http/problem.ts writes it. */
const problem = (slug, status, detail, instance) => ({
  type: `urn:tollgate:problem:${slug}`,
  title: slug === "unauthorized" ? "Authentication required" : "Not allowed",
  status,
  detail,
  instance,
  requestId: "req-node-test",
});

before(async () => {
  server = createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : undefined;
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    const send = (status, type, payload) => {
      res.writeHead(status, { "Content-Type": type });
      res.end(JSON.stringify(payload));
    };
    if (req.headers.authorization !== `Bearer ${KEY}`)
      return send(401, "application/problem+json", problem("unauthorized", 401, "Invalid API key", req.url));
    if (req.method === "POST" && req.url === "/v1/check" && body.customerId === "other-tenant")
      return send(
        403,
        "application/problem+json",
        problem("forbidden", 403, "This key is bound to another customer", req.url),
      );
    if (req.method === "POST" && req.url === "/v1/check") return send(200, "application/json", decision(body));
    send(404, "application/problem+json", problem("not_found", 404, "No such route", req.url));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${server.address().port}/`;
});

after(() => server.close());

describe("tollgate/client on Node", () => {
  it("is the built JavaScript, resolved through the package's exports", () => {
    assert.match(import.meta.resolve("tollgate/client"), /\/dist\/client\/index\.js$/);
  });

  it("checks over HTTP and parses the decision", async () => {
    const client = new TollgateClient({ baseUrl, apiKey: KEY });
    const d = await client.check({ customerId: "acme", feature: "sso", role: "admin" });
    const { evaluatedAt, ...rest } = d;
    assert.deepEqual(rest, {
      allowed: true,
      reason: "ok",
      customerId: "acme",
      feature: "sso",
      type: "boolean",
      snapshotVersion: 7,
      snapshotAgeMs: 12,
    });
    assert.ok(!Number.isNaN(Date.parse(evaluatedAt)));
    const sent = requests.at(-1);
    assert.equal(sent.method, "POST");
    assert.equal(sent.url, "/v1/check"); // the trailing slash of baseUrl is dropped
    assert.equal(sent.headers["content-type"], "application/json");
    assert.deepEqual(sent.body, { customerId: "acme", feature: "sso", role: "admin" });
    const denied = await client.check({ customerId: "acme", feature: "audit_export" });
    assert.equal(denied.allowed, false);
    assert.equal(denied.reason, "not_entitled");
  });

  it("throws a TollgateError carrying the problem+json body, without retrying a 4xx", async () => {
    const before = requests.length;
    const client = new TollgateClient({ baseUrl, apiKey: KEY });
    const err = await client.check({ customerId: "other-tenant", feature: "sso" }).catch((e) => e);
    assert.ok(err instanceof TollgateError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, "TollgateError");
    assert.equal(err.status, 403);
    assert.equal(err.message, "This key is bound to another customer");
    assert.equal(err.problem.type, "urn:tollgate:problem:forbidden");
    assert.equal(err.problem.requestId, "req-node-test");
    assert.equal(requests.length, before + 1);
    const unauthenticated = await new TollgateClient({ baseUrl, apiKey: "tg_wrong" })
      .check({ customerId: "acme", feature: "sso" })
      .catch((e) => e);
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.problem.type, "urn:tollgate:problem:unauthorized");
  });

  it("reports an unreachable server as status 0, after its retries", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const { port } = closed.address();
    await new Promise((resolve) => closed.close(resolve));
    const client = new TollgateClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: KEY, retries: 1, backoffMs: 1 });
    const err = await client.check({ customerId: "acme", feature: "sso" }).catch((e) => e);
    assert.ok(err instanceof TollgateError);
    assert.equal(err.status, 0);
    assert.equal(err.message, "Tollgate could not be reached");
    assert.ok(err.cause instanceof Error);
  });
});
