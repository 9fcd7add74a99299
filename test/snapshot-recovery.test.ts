// Recovery tools: POST /admin/v1/snapshots/{verify,rebuild}, and the paged driver of scripts/snapshots.mjs.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createAdminClient, retryAfterMs } from "../scripts/lib/admin-client.mjs";
import {
  catalogDrifted,
  formatJobSummary,
  type JobState,
  newJobState,
  renderProgress,
  runPagedJob,
} from "../scripts/lib/paged-job.mjs";
import { kvKeys } from "../src/store/kv";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { auditOf, parsed } from "./helpers/d1";
import { kvPart } from "./helpers/kv";
import { operatorToken } from "./helpers/operators";
import { DAY_MS } from "./helpers/time";
import { BOOTSTRAP, postCheck, testWorker, uid } from "./helpers/worker";

const w = testWorker();
beforeAll(async () => {
  await loadTestCatalog(w);
});

const post = (path: string, body: unknown, key = BOOTSTRAP, callEnv?: Cloudflare.Env) =>
  w.call("POST", `/admin/v1/snapshots/${path}`, { key, body, env: callEnv });

/** The three ways a KV copy goes wrong: an old version, a lost key, garbage. */
async function damagedCustomers() {
  const [stale, missing, garbled, healthy] = [uid(), uid(), uid(), uid()];
  for (const id of [stale, missing, garbled, healthy])
    await createCustomer(w, { id, subscriptions: [{ planId: "pro" }] });
  const good = (await kvPart(stale))!;
  await env.SNAPSHOTS.put(kvKeys.part(stale), JSON.stringify({ ...good, rev: good.rev - 1, subscriptions: [] }));
  await env.SNAPSHOTS.delete(kvKeys.part(missing));
  await env.SNAPSHOTS.put(kvKeys.part(garbled), "{not json");
  return { stale, missing, garbled, healthy, version: good.rev };
}

describe("POST /admin/v1/snapshots/verify", () => {
  it("lists each drifted snapshot with its kind, versions and differing fields, and writes nothing", async () => {
    const d = await damagedCustomers();
    const drift = async (id: string) => (await post("verify", { customerId: id })).json;
    expect(await drift(d.stale)).toMatchObject({
      processed: 1,
      nextCursor: null,
      drift: [{ customerId: d.stale, kind: "stale", kvVersion: d.version - 1, freshVersion: d.version }],
    });
    expect((await drift(d.stale)).drift[0].fields).toEqual(["rev", "subscriptions"]);
    expect((await drift(d.missing)).drift).toEqual([
      { customerId: d.missing, kind: "missing", kvVersion: null, freshVersion: d.version, fields: [] },
    ]);
    expect((await drift(d.garbled)).drift).toMatchObject([{ kind: "unreadable" }]);
    expect((await drift(d.healthy)).drift).toEqual([]);
    // A part read with an older catalog (a catalog change since) answers every check the same once
    // composed with the current catalog: not drift.
    const same = (await kvPart(d.healthy))!;
    await env.SNAPSHOTS.put(kvKeys.part(d.healthy), JSON.stringify({ ...same, catalogRev: same.catalogRev - 1 }));
    expect((await drift(d.healthy)).drift).toEqual([]);
    // Verify only reads: the damage is still there.
    expect(await env.SNAPSHOTS.get(kvKeys.part(d.missing))).toBeNull();
    expect(await env.SNAPSHOTS.get(kvKeys.part(d.garbled))).toBe("{not json");
  });

  it("ignores compiledAt: a snapshot compiled at another time is not drift", async () => {
    const id = uid();
    await createCustomer(w, { id, subscriptions: [{ planId: "free" }] });
    const part = (await kvPart(id))!;
    await env.SNAPSHOTS.put(kvKeys.part(id), JSON.stringify({ ...part, compiledAt: part.compiledAt - DAY_MS }));
    expect((await post("verify", { customerId: id })).json.drift).toEqual([]);
  });

  it("answers 404 for an unknown customer, 503 with Retry-After when KV fails, and checks roles", async () => {
    const unknown = await post("verify", { customerId: uid("nobody") });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("content-type")).toBe("application/problem+json");
    const id = uid();
    await createCustomer(w, { id, subscriptions: [{ planId: "free" }] });
    const kvDown = {
      ...env,
      SNAPSHOTS: {
        get: async () => {
          throw new Error("KV unavailable");
        },
      } as unknown as KVNamespace,
    } as Cloudflare.Env;
    const down = await post("verify", { customerId: id }, BOOTSTRAP, kvDown);
    expect(down.status).toBe(503);
    expect(down.headers.get("Retry-After")).toBe("5");
    expect((await post("verify", { customerId: id }, await operatorToken("viewer"))).status).toBe(200);
    expect((await post("verify", { customerId: id }, await createKey(w, ["check"]))).status).toBe(403);
    expect((await post("verify", { limit: 0 })).json.errors[0].path).toBe("json.limit");
  });
});

describe("POST /admin/v1/snapshots/rebuild", () => {
  it("rewrites exactly the drifted snapshots from D1, counts them, and audits the repair", async () => {
    const d = await damagedCustomers();
    for (const id of [d.stale, d.missing, d.garbled, d.healthy]) {
      const res = await post("rebuild", { customerId: id }, await operatorToken("support", "op_support"));
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({
        processed: 1,
        changed: id === d.healthy ? 0 : 1,
        rewritten: id === d.healthy ? 0 : 1,
        nextCursor: null,
      });
      expect(await kvPart(id)).toMatchObject({ customerId: id, rev: d.version });
    }
    const rebuilds = async (id: string) =>
      (await auditOf("snapshot", id)).filter((a) => a.action === "snapshots.rebuild");
    const [audit] = await rebuilds(d.missing);
    expect(audit!.actor).toBe("op_support");
    expect(parsed(audit!.after)).toEqual({
      changed: [{ customerId: d.missing, kind: "missing" }],
      rewritten: 1,
      force: false,
    });
    expect(await rebuilds(d.healthy)).toHaveLength(0);
    // A check is answered from the repaired snapshot.
    const key = await createKey(w, ["check"]);
    expect((await postCheck(w, key, { customerId: d.garbled, feature: "audit_export" })).json).toMatchObject({
      allowed: true,
      version: expect.stringMatching(new RegExp(`^${d.version}\\.`)),
    });
  });

  it("with force rewrites a healthy snapshot too, without calling it a change", async () => {
    const id = uid();
    await createCustomer(w, { id, subscriptions: [{ planId: "free" }] });
    expect((await post("rebuild", { customerId: id, force: true })).json).toMatchObject({
      processed: 1,
      changed: 0,
      rewritten: 1,
    });
  });

  it("viewers may not rebuild (403)", async () => {
    const id = uid();
    await createCustomer(w, { id, subscriptions: [{ planId: "free" }] });
    expect((await post("rebuild", { customerId: id }, await operatorToken("viewer"))).status).toBe(403);
  });
});

describe("scripts/snapshots.mjs driver (runPagedJob) against the worker", () => {
  const request = async (method: string, path: string, body: unknown) => {
    const res = await w.call(method, path, { key: BOOTSTRAP, body });
    if (res.status !== 200) throw new Error(`${res.status} ${res.text}`);
    return res.json;
  };

  it("walks every customer page by page, resumes after an interruption, and reports the final counts", async () => {
    const d = await damagedCustomers();
    let saved: JobState | null = null;
    const state = newJobState("rebuild", "test");
    // The run dies after its second page (as if interrupted); the state saved by then resumes it.
    let pagesSaved = 0;
    await expect(
      runPagedJob({
        request,
        path: "/admin/v1/snapshots/rebuild",
        body: { limit: 2 },
        state,
        save: (s) => {
          if (++pagesSaved > 2) throw new Error("interrupted");
          saved = structuredClone(s);
        },
      }),
    ).rejects.toThrow("interrupted");
    expect(saved!.processed).toBe(4);
    expect(saved!.cursor).not.toBeNull();
    const done = await runPagedJob({ request, path: "/admin/v1/snapshots/rebuild", body: { limit: 2 }, state: saved! });
    expect(done.done).toBe(true);
    expect(done.total).toBeGreaterThanOrEqual(4);
    expect(done.processed).toBe(done.total);
    // Every drifted snapshot of this file's customers was repaired, whichever run reached it.
    for (const id of [d.stale, d.missing, d.garbled]) expect(await kvPart(id)).toMatchObject({ rev: d.version });
    const verify = await runPagedJob({
      request,
      path: "/admin/v1/snapshots/verify",
      body: { limit: 3 },
      state: newJobState("verify", "test"),
    });
    expect(verify).toMatchObject({ processed: done.total, byKind: {}, done: true, catalog: { kind: null } });
    expect(catalogDrifted(verify)).toBe(false);
    expect(formatJobSummary(verify)).toBe(
      `Verified ${done.total} snapshots: no drift.\nCatalog: in step (revision ${verify.catalog?.freshRev}).`,
    );
  });

  it("renders a progress bar and a summary that names the drift", () => {
    const state = { ...newJobState("verify", "t"), total: 5000, processed: 1200, byKind: { stale: 2, missing: 1 } };
    expect(renderProgress(state, 10)).toBe("[==>       ] 1,200/5,000  24%  drift 3");
    state.examples = [{ customerId: "acme", kind: "stale", kvVersion: 3, freshVersion: 5, fields: ["version"] }];
    expect(formatJobSummary(state)).toBe(
      "Verified 1,200 snapshots: 3 drifted (stale 2, missing 1).\n  stale      acme (KV v3, fresh v5): version\n  ... and 2 more",
    );
    // The catalog found out of step is reported, and makes verify exit 4 like a drifted customer.
    const catalog = { ...newJobState("verify", "t"), processed: 10, catalog: { kind: "stale", kvRev: 3, freshRev: 4 } };
    expect(catalogDrifted(catalog)).toBe(true);
    expect(formatJobSummary(catalog)).toBe(
      "Verified 10 snapshots: no drift.\nCatalog: stale (KV names revision 3, D1 has 4).",
    );
  });

  it("paces requests (--max-rps) and waits out 429 Retry-After before retrying", async () => {
    const slept: number[] = [];
    let t = 0;
    const sleep = async (ms: number) => {
      slept.push(ms);
      t += ms;
    };
    const pages = [
      { processed: 2, nextCursor: "b" },
      { processed: 1, nextCursor: null },
    ];
    await runPagedJob({
      request: async () => pages.shift(),
      path: "/x",
      body: {},
      state: newJobState("rebuild", "t"),
      maxRps: 2,
      now: () => t,
      sleep,
    });
    expect(slept).toEqual([500]);

    const answers = [
      new Response("{}", { status: 429, headers: { "Retry-After": "3" } }),
      new Response(JSON.stringify({ ok: 1 }), { status: 200 }),
    ];
    const waits: number[] = [];
    const client = createAdminClient(
      { url: "http://x", key: "k" },
      { fetch: (async () => answers.shift()!) as unknown as typeof fetch, sleep: async (ms) => void waits.push(ms) },
    );
    expect(await client.request("POST", "/p", {})).toEqual({ ok: 1 });
    expect(waits).toEqual([3000]);
    expect(retryAfterMs("Wed, 21 Oct 2015 07:28:30 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT"))).toBe(30_000);
  });
});
