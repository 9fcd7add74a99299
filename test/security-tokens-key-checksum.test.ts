// Security review M5 (issue 11, item 13): guessing keys costs the guesser, not Tollgate. A key carries a keyed
// checksum (tg_<43 random>_<8 checksum>, HMAC-SHA256 under the secret API_KEY_CHECKSUM_SECRET), so a forgery is
// refused with a 401 before any KV or D1 read. Keys of the older format (tg_<43>, no checksum) keep working and
// are looked up as before, but what no store knows goes into a small cache of its own: a flood of made-up keys
// never evicts a real key's record, which is what carries a key through an outage of KV and D1.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { displayPrefix, generateApiKey, hashApiKey } from "../src/auth/api-keys";
import { KEY_CACHE_TTL_MS } from "../src/store/api-key-store";
import { insertApiKeyStatement } from "../src/store/api-keys";
import { createCustomer, createKey, loadTestCatalog } from "./helpers/admin";
import { outage } from "./helpers/faults";
import { T0 } from "./helpers/time";
import { BOOTSTRAP, expectProblem, testWorker, uid } from "./helpers/worker";

/** The test env with every call on KV and D1 counted (the real bindings answer). */
function countedEnv(base: Cloudflare.Env = env) {
  const calls = { kv: 0, d1: 0 };
  const counted = <T extends object>(target: T, counter: "kv" | "d1"): T =>
    new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop, t);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls[counter]++;
          return value.apply(t, args);
        };
      },
    });
  return { calls, env: { ...base, SNAPSHOTS: counted(base.SNAPSHOTS, "kv"), DB: counted(base.DB, "d1") } };
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_");
/** The first 8 base64url characters of HMAC-SHA256(secret, body): what a key's checksum must be. */
async function checksumOf(secret: string, body: string): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return b64url(new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(body)))).slice(0, 8);
}
const randomBody = () => `tg_${b64url(crypto.getRandomValues(new Uint8Array(32))).replace(/=+$/, "")}`;

const w = testWorker();
let customer: string;
const check = (tw: ReturnType<typeof testWorker>, key: string, e?: Cloudflare.Env) =>
  tw.call("POST", "/v1/check", { key, env: e, body: { customerId: customer, feature: "sso", role: "admin" } });

/** A key row written straight to D1, as the admin API made keys before checksums (tg_<43>). */
async function legacyKey(): Promise<string> {
  const key = generateApiKey();
  await insertApiKeyStatement(env.DB, {
    id: `key_${crypto.randomUUID()}`,
    hash: await hashApiKey(key),
    prefix: displayPrefix(key),
    name: "legacy",
    scopes: JSON.stringify(["check"]),
    customer_id: null,
    created_by: "bootstrap",
    created_at: T0,
  }).run();
  return key;
}

beforeAll(async () => {
  await loadTestCatalog(w);
  customer = (await createCustomer(w, { id: uid(), subscriptions: [{ planId: "pro" }] })).id;
});

describe("the key checksum", () => {
  it("a new key is tg_<43>_<8>, the checksum is HMAC-SHA256 of the rest under the secret, and it works", async () => {
    const key = await createKey(w, ["check"]);
    const m = /^(tg_[A-Za-z0-9_-]{43})_([A-Za-z0-9_-]{8})$/.exec(key);
    expect(m).not.toBeNull();
    expect(m?.[2]).toBe(await checksumOf(env.API_KEY_CHECKSUM_SECRET as string, m?.[1] as string));
    expect((await check(w, key)).json).toMatchObject({ allowed: true });
  });

  it("a key whose checksum does not verify is a 401, with no KV or D1 read at all", async () => {
    const real = await createKey(w, ["check"]);
    const body = real.slice(0, 46);
    const forgeries = [
      `${real.slice(0, -1)}${real.endsWith("A") ? "B" : "A"}`, // its checksum's last character changed
      `${randomBody()}_${b64url(crypto.getRandomValues(new Uint8Array(6)))}`, // random checksum
      `${body}_${await checksumOf("another-secret", body)}`, // another deployment's secret
    ];
    const { calls, env: counted } = countedEnv();
    const fresh = testWorker({ env: counted }); // its own, empty, isolate caches
    for (const forged of forgeries) {
      expect(forged).toMatch(/^tg_[A-Za-z0-9_-]{43}_[A-Za-z0-9_-]{8}$/);
      expect(forged).not.toBe(real);
      expectProblem(await check(fresh, forged), 401, "unauthorized");
      expectProblem(await check(fresh, forged), 401, "unauthorized");
    }
    expect(calls).toEqual({ kv: 0, d1: 0 });
    // The real key, by contrast, is looked up (this isolate has never seen it).
    expect((await check(fresh, real)).json).toMatchObject({ allowed: true });
    expect(calls.kv + calls.d1).toBeGreaterThan(0);
    // Even with KV and D1 down a forgery is a 401, not a 503: nothing had to be read to refuse it.
    expectProblem(await check(testWorker(), forgeries[1] as string, outage), 401, "unauthorized");
  });

  it("keys of the older format (tg_<43>, no checksum) keep working and are revoked as before", async () => {
    const key = await legacyKey();
    expect(key).toMatch(/^tg_[A-Za-z0-9_-]{43}$/);
    expect((await check(w, key)).json).toMatchObject({ allowed: true });
    const listed = await w.call("GET", "/admin/v1/api-keys?limit=100", { key: BOOTSTRAP });
    const id = listed.json.items.find((k: { prefix: string }) => k.prefix === displayPrefix(key)).id;
    expect((await w.call("POST", `/admin/v1/api-keys/${id}/revoke`, { key: BOOTSTRAP })).status).toBe(200);
    expectProblem(await check(w, key), 401, "unauthorized");
  });

  it("an unknown key of the older format is read once, then refused from the cache of unknown keys", async () => {
    const { calls, env: counted } = countedEnv();
    const fresh = testWorker({ env: counted });
    const guess = randomBody();
    expectProblem(await check(fresh, guess), 401, "unauthorized");
    const first = calls.kv + calls.d1;
    expect(first).toBeGreaterThan(0);
    expectProblem(await check(fresh, guess), 401, "unauthorized");
    expect(calls.kv + calls.d1).toBe(first);
  });

  it("a flood of made-up keys of the older format does not evict a real key: it still works in an outage", async () => {
    const tw = testWorker({ keyCache: { maxEntries: 8 } }); // a small record cache, so a flood would fill it
    const real = await createKey(w, ["check"]);
    expect((await check(tw, real)).json).toMatchObject({ allowed: true });
    for (let i = 0; i < 40; i++) expectProblem(await check(tw, randomBody()), 401, "unauthorized");
    // KV and D1 go down once the record is due for a refresh: only the isolate's copy can answer.
    const later = T0 + KEY_CACHE_TTL_MS + 1;
    const res = await tw.at(later, () => check(tw, real, outage));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ allowed: true, degraded: true });
  });
});

describe("the checksum secret", () => {
  it("in development a documented default applies when API_KEY_CHECKSUM_SECRET is not set", async () => {
    const { API_KEY_CHECKSUM_SECRET: _unset, ...rest } = env;
    const dev = rest as Cloudflare.Env;
    const tw = testWorker({ env: dev });
    const created = await tw.call("POST", "/admin/v1/api-keys", { key: BOOTSTRAP, body: { scopes: ["check"] } });
    expect(created.status).toBe(201);
    const key = created.json.key as string;
    expect(key.slice(47)).toBe(await checksumOf("tollgate-development-api-key-checksum", key.slice(0, 46)));
    expect((await check(tw, key)).json).toMatchObject({ allowed: true });
  });

  it("in production without the secret a checksummed key cannot be verified: 503, and nothing is read", async () => {
    const key = await createKey(w, ["check"]);
    const { API_KEY_CHECKSUM_SECRET: _unset, ...rest } = env;
    const { calls, env: counted } = countedEnv({ ...rest, ENVIRONMENT: "production" } as Cloudflare.Env);
    const res = await check(testWorker({ env: counted }), key);
    expect(expectProblem(res, 503, "unavailable").detail).toMatch(/API_KEY_CHECKSUM_SECRET/);
    expect(calls).toEqual({ kv: 0, d1: 0 });
  });
});
