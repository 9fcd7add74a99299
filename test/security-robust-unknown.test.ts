// Unknown customer ids are cached in KV as well as in the isolate, so probing ids (an unbound key checking
// made-up customers) costs each isolate no D1 read; creating the customer replaces the mark at once.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { kvKeys } from "../src/store/kv";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { testWorker, uid } from "./helpers/worker";

/** The test env with D1 statements counted (prepare calls). */
function countingD1() {
  const counter = { prepares: 0 };
  const DB = new Proxy(env.DB, {
    get(target, prop, receiver) {
      if (prop === "prepare")
        return (sql: string) => {
          counter.prepares++;
          return target.prepare(sql);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { counter, env: { ...env, DB } as Cloudflare.Env };
}

const w = testWorker();
let key: string;

beforeAll(async () => {
  await loadTestCatalog(w);
  key = await createKey(w, ["check"]);
});

describe("unknown customers", () => {
  it("a check of an unknown id leaves a short-lived mark in KV, and another isolate answers it without D1", async () => {
    const id = uid("ghost");
    const first = await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso" } });
    expect(first.json).toMatchObject({ allowed: false, reason: "unknown_customer" });
    expect(JSON.parse((await env.SNAPSHOTS.get(kvKeys.part(id), "text")) ?? "null")).toEqual({ unknown: true });

    const { counter, env: counted } = countingD1();
    const other = testWorker({ env: counted }); // its own isolate cache, the same KV and D1
    const again = await other.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso" } });
    expect(again.json).toMatchObject({ allowed: false, reason: "unknown_customer" });
    expect(counter.prepares).toBe(0); // the key is in KV, the unknown id is marked there: no D1 read at all
    // A never-seen id, by contrast, is read from D1 (once, then marked).
    await other.call("POST", "/v1/check", { key, body: { customerId: uid("ghost"), feature: "sso" } });
    expect(counter.prepares).toBeGreaterThan(0);
  });

  it("creating the customer replaces the mark: the next check in any isolate sees the customer", async () => {
    const id = uid("late");
    await w.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso" } });
    await createCustomer(w, { id, name: id, subscriptions: [{ planId: "pro", status: "active" }] });
    const other = testWorker();
    const res = await other.call("POST", "/v1/check", { key, body: { customerId: id, feature: "sso", role: "admin" } });
    expect(res.json.reason).not.toBe("unknown_customer");
    expect(res.json.allowed).toBe(true);
  });
});
