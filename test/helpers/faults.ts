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
