// No request waits on a load another request started, where it has something it may serve (store/flight.ts):
// past the TTL while one request refreshes the customer's part or the catalog, the others answer from what
// the isolate holds; a request with nothing to serve joins the load on its own timers and gets its result.
// The loads are held open by a KV binding wrapped with a gate, so "while one refreshes" is exact.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../src/clock";
import { kvKeys } from "../src/store/kv";
import { createCustomer, createKey, loadTestCatalog, upgradeElsewhere } from "./helpers/admin";
import { T0 } from "./helpers/time";
import { BOOTSTRAP, testWorker, uid } from "./helpers/worker";

const setup = testWorker();
let key: string;
beforeAll(async () => {
  await loadTestCatalog(setup);
  key = await createKey(setup, ["check"]);
});

/** KV whose reads of the keys `held` names wait until `open()`; `entered` counts the reads that reached the gate. */
function gatedKV(held: (key: string) => boolean) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const state = { entered: 0, open };
  const kv = new Proxy(env.SNAPSHOTS, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if ((prop !== "get" && prop !== "getWithMetadata") || typeof value !== "function") return value;
      return async (k: string, ...rest: unknown[]) => {
        if (held(k)) {
          state.entered++;
          await gate;
        }
        return (value as (...a: unknown[]) => unknown).call(target, k, ...rest);
      };
    },
  });
  return { state, env: { ...env, SNAPSHOTS: kv } as Cloudflare.Env };
}

/** Lets the worker's pending reads run until `cond` holds (bounded: a missed gate fails the test, never hangs it). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
}

const check = (w: ReturnType<typeof testWorker>, customerId: string, e?: Cloudflare.Env) =>
  w.call("POST", "/v1/check", { key, body: { customerId, feature: "sso" }, ...(e ? { env: e } : {}) });

describe("a customer's part past its TTL", () => {
  it("is served from the isolate while another request refreshes it; the refresh's request sees the new one", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    const before = await check(w, c.id);
    expect(before.json.allowed).toBe(false);
    const newer = await upgradeElsewhere(c.id);
    clock.advance(5_001); // past the part's TTL (5 s), by less than another
    const gated = gatedKV((k) => k === kvKeys.part(c.id));
    const refreshing = check(w, c.id, gated.env);
    await until(() => gated.state.entered === 1);
    // Meanwhile: answered from the held part, without reading KV (the gated read is the only one).
    const meanwhile = await check(w, c.id, gated.env);
    expect(meanwhile.json).toMatchObject({ allowed: false, version: before.json.version });
    expect(gated.state.entered).toBe(1);
    gated.state.open();
    expect((await refreshing).json).toMatchObject({ allowed: true, version: newer.version });
    expect((await check(w, c.id)).json).toMatchObject({ allowed: true, version: newer.version });
  });

  it("more than twice the TTL old is not served while a refresh runs: the request waits for the load", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "free" }] });
    await check(w, c.id);
    const newer = await upgradeElsewhere(c.id);
    clock.advance(10_001);
    const gated = gatedKV((k) => k === kvKeys.part(c.id));
    const first = check(w, c.id, gated.env);
    await until(() => gated.state.entered === 1);
    let joinedDone = false;
    const joined = check(w, c.id, gated.env).then((r) => {
      joinedDone = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(joinedDone).toBe(false); // it joined the load in flight: no answer before the load has one
    gated.state.open();
    const [a, b] = await Promise.all([first, joined]);
    expect(a.json).toMatchObject({ allowed: true, version: newer.version });
    expect(b.json).toMatchObject({ allowed: true, version: newer.version });
    expect(gated.state.entered).toBe(1); // one KV read for both: the second joined the first
  });
});

describe("a cold isolate", () => {
  it("concurrent first reads of a customer join one load and each gets its answer", async () => {
    const c = await createCustomer(setup, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const w = testWorker();
    const gated = gatedKV((k) => k === kvKeys.part(c.id));
    const all = Array.from({ length: 20 }, () => check(w, c.id, gated.env));
    await until(() => gated.state.entered === 1);
    gated.state.open();
    const answers = await Promise.all(all);
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => `${a.json.allowed} ${a.json.version}`)).size).toBe(1);
    expect(answers[0]!.json).toMatchObject({ customerId: c.id, reason: expect.any(String) });
    expect(gated.state.entered).toBe(1);
  });
});

describe("the catalog past its TTL", () => {
  it("is served from the isolate while another request reads the pointer; that request sees the new revision", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    const before = await check(w, c.id);
    const heldRev = w.services().snapshots.catalogs.held!.rev;
    // Another isolate changes the catalog (a feature's description) and publishes it.
    const other = testWorker();
    const changed = await other.call("PATCH", "/admin/v1/features/sso", {
      key: BOOTSTRAP,
      body: { description: `changed ${uid()}` },
    });
    expect(changed.status).toBeLessThan(300);
    const head = await env.SNAPSHOTS.get<{ rev: number }>(kvKeys.catalogHead, "json");
    expect(head!.rev).toBeGreaterThan(heldRev);
    clock.advance(5_001);
    const gated = gatedKV((k) => k === kvKeys.catalogHead);
    const refreshing = check(w, c.id, gated.env);
    await until(() => gated.state.entered === 1);
    const meanwhile = await check(w, c.id, gated.env);
    expect(meanwhile.json.version).toBe(before.json.version); // the held catalog, with the held part
    expect(gated.state.entered).toBe(1);
    gated.state.open();
    expect((await refreshing).json.version).toMatch(new RegExp(`\\.${head!.rev}$`));
    expect(w.services().snapshots.catalogs.held!.rev).toBe(head!.rev);
  });

  it("more than twice the TTL old is not served while a refresh reads the pointer: the request waits for it", async () => {
    const clock = new ManualClock(T0);
    const w = testWorker({ clock });
    const c = await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] });
    await check(w, c.id);
    const other = testWorker();
    const changed = await other.call("PATCH", "/admin/v1/features/sso", {
      key: BOOTSTRAP,
      body: { description: `changed again ${uid()}` },
    });
    expect(changed.status).toBeLessThan(300);
    const head = await env.SNAPSHOTS.get<{ rev: number }>(kvKeys.catalogHead, "json");
    clock.advance(10_001);
    const gated = gatedKV((k) => k === kvKeys.catalogHead);
    const first = check(w, c.id, gated.env);
    await until(() => gated.state.entered === 1);
    const second = check(w, c.id, gated.env);
    gated.state.open();
    const [a, b] = await Promise.all([first, second]);
    expect(a.json.version).toMatch(new RegExp(`\\.${head!.rev}$`));
    expect(b.json.version).toMatch(new RegExp(`\\.${head!.rev}$`)); // joined: the new revision, not the held one
    expect(gated.state.entered).toBe(1);
  });
});
