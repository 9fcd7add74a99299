// Bindings that fail every call, for outages: wrapped in where a test needs KV or D1 down (nothing of the
// runtime is mocked elsewhere; these stand in for a binding that cannot be reached at all).
import { env } from "cloudflare:workers";
import { vi } from "vitest";

export const failingKV = {
  get: async () => {
    throw new Error("KV unavailable");
  },
  getWithMetadata: async () => {
    throw new Error("KV unavailable");
  },
  put: async () => {
    throw new Error("KV unavailable");
  },
} as unknown as KVNamespace;

export const failingDB = {
  prepare: () => {
    throw new Error("D1 unavailable");
  },
  batch: async () => {
    throw new Error("D1 unavailable");
  },
} as unknown as D1Database;

/** The bindings with KV and D1 both down (the meter still answers). */
export const outage = { ...env, SNAPSHOTS: failingKV, DB: failingDB } as Cloudflare.Env;

/** Silences the logs of a test that makes many of them on purpose (console only: no binding is mocked); vi.restoreAllMocks undoes it. */
export const quiet = () => {
  vi.spyOn(console, "warn").mockImplementation(() => {});
  vi.spyOn(console, "error").mockImplementation(() => {});
};

/** An R2 bucket whose writes fail (reads and listings still reach the real local bucket). */
export function failingR2(base: R2Bucket = env.LEDGER): R2Bucket {
  return new Proxy(base, {
    get(target, prop) {
      if (prop === "put")
        return async () => {
          throw new Error("R2 unavailable: injected outage");
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** An R2 bucket that stores every write and then loses the acknowledgement (the call throws). */
export function lossyR2(base: R2Bucket = env.LEDGER): R2Bucket {
  return new Proxy(base, {
    get(target, prop) {
      if (prop === "put")
        return async (...args: Parameters<R2Bucket["put"]>) => {
          await target.put(...args);
          throw new Error("network: R2 response lost");
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A D1 database whose batches fail (the meter's totals writes); single statements still run. */
export function failingBatchDB(base: D1Database = env.DB): D1Database {
  return new Proxy(base, {
    get(target, prop) {
      if (prop === "batch")
        return async () => {
          throw new Error("D1_ERROR: injected outage");
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A D1 database that commits every batch and then loses the acknowledgement (the call throws). */
export function lossyBatchDB(base: D1Database = env.DB): D1Database {
  return new Proxy(base, {
    get(target, prop) {
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          await target.batch(statements);
          throw new Error("network: D1 response lost");
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * A Durable Object namespace whose stubs throw on `method` (an RPC that fails: the callee unreachable,
 * or the answer lost); every other method reaches the real object. `failing()` says whether to fail now.
 */
export function failingDurableObjectMethod<T>(ns: T, method: string, failing: () => boolean = () => true): T {
  // A stub's methods are RPC proxies: `.bind` on one would itself be an RPC call, so calls are forwarded.
  const wrapStub = (stub: Record<string | symbol, any>) =>
    new Proxy(stub, {
      get(target, prop) {
        if (prop !== method) return Reflect.get(target, prop);
        return async (...args: unknown[]) => {
          if (failing()) throw new Error(`${method}: injected RPC failure`);
          return target[prop](...args);
        };
      },
    });
  const base = ns as unknown as DurableObjectNamespace;
  return new Proxy(base, {
    get(target, prop) {
      if (prop === "get") return (id: DurableObjectId) => wrapStub(target.get(id));
      if (prop === "jurisdiction")
        return (j: DurableObjectJurisdiction) => failingDurableObjectMethod(target.jurisdiction(j), method, failing);
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as unknown as T;
}
