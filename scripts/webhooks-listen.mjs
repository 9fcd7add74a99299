#!/usr/bin/env node
// `npm run webhooks:listen`: a local receiver for Tollgate's outbound webhooks, like `stripe listen`.
// It starts an HTTP server, registers it as a webhook endpoint of the running worker (npm start, or
// --url/--key), verifies every delivery's Standard Webhooks signature with the standardwebhooks
// library, and prints it. Ctrl-C deletes the endpoint again.
//   --port N         the receiver's port (default 8790)
//   --events a,b     only these event types (default: every type)
//   --customer ID    only this customer's events
//   --fail N         answer the first N deliveries with 503, to watch the retries
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";
import { createAdminClient } from "./lib/admin-client.mjs";
import { parseCli, UsageError } from "./lib/cli.mjs";
import { runMain, targetFrom } from "./lib/node-target.mjs";

const USAGE = `usage: npm run webhooks:listen -- [--env local|staging|production] [--url URL --key KEY]
         [--port N] [--events TYPE,TYPE] [--customer ID] [--fail N]`;

async function main() {
  const { options: o } = parseCli(process.argv.slice(2), {
    flags: ["help"],
    options: ["env", "url", "key", "port", "events", "customer", "fail"],
  });
  if (o.help) return void console.log(USAGE);
  const port = o.port === undefined ? 8790 : Number(o.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new UsageError("--port must be a port number");
  let failures = o.fail === undefined ? 0 : Number(o.fail);
  if (!Number.isInteger(failures) || failures < 0) throw new UsageError("--fail must be a whole number");
  const admin = createAdminClient(targetFrom(o));

  let webhook = null;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      if (failures > 0) {
        failures--;
        print("503", req.headers["webhook-id"], "answered 503 (--fail): Tollgate retries with backoff");
        res.writeHead(503).end();
        return;
      }
      try {
        const event = webhook.verify(body, req.headers);
        print("ok ", event.id, `${event.type} customer=${event.customerId} seq=${event.sequence}`);
        console.log(`     ${JSON.stringify(event.data)}`);
        res.writeHead(204).end();
      } catch (err) {
        print("BAD", req.headers["webhook-id"], `signature check failed: ${err.message}`);
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));

  const eventTypes = typeof o.events === "string" ? o.events.split(",").map((s) => s.trim()) : [];
  const endpoint = await admin.request("POST", "/admin/v1/webhook-endpoints", {
    url: `http://127.0.0.1:${port}/`,
    description: "npm run webhooks:listen",
    eventTypes,
    customerId: typeof o.customer === "string" ? o.customer : null,
  });
  webhook = new Webhook(endpoint.secret);
  console.log(`Listening on http://127.0.0.1:${port}/ as endpoint ${endpoint.id}`);
  console.log(`Signing secret: ${endpoint.secret}`);
  console.log(`Events: ${eventTypes.length ? eventTypes.join(", ") : "every type"}. Ctrl-C to stop.`);

  await new Promise((resolve) => process.once("SIGINT", resolve));
  await admin.request("DELETE", `/admin/v1/webhook-endpoints/${endpoint.id}`).catch(() => undefined);
  server.close();
  console.log(`\nDeleted endpoint ${endpoint.id}.`);
  return 0;
}

function print(status, id, text) {
  console.log(`${new Date().toISOString()} ${status} ${id ?? "-"} ${text}`);
}

await runMain(main, USAGE);
