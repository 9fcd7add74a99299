// Benchmark-only: counts what the worker asks of its bindings, so `npm run bench` can report KV reads,
// D1 queries and Durable Object calls per request. Nothing is mocked: every call goes to the real
// binding; the wrappers only count on the way through. Used only when BENCH_INSTRUMENT is "on".
import type { Env } from "../env";
import type { MeterResult } from "../meter/protocol";

export interface BindingCounts {
  /** Requests served by the app (the /__bench/stats and /__bench/reset calls excluded). */
  requests: number;
  kvReads: number;
  kvWrites: number;
  kvLists: number;
  /** Statements run against D1: first/all/run/raw count one each, a batch counts its statements, exec one. */
  d1Queries: number;
  /** Rows D1 says it wrote (meta.rows_written of run, all and batch results; index entries included). */
  d1RowsWritten: number;
  /** Method calls on Durable Object stubs (RPC), whatever the method. */
  doCalls: number;
  /** Meter answers to usage() that admitted the units (allowed: true), as the Worker received them. */
  meterAdmitted: number;
  /** Responses with a 4xx or 5xx status (a denial is a 200). */
  http4xx: number;
  http5xx: number;
}

export const counts: BindingCounts = {
  requests: 0,
  kvReads: 0,
  kvWrites: 0,
  kvLists: 0,
  d1Queries: 0,
  d1RowsWritten: 0,
  doCalls: 0,
  meterAdmitted: 0,
  http4xx: 0,
  http5xx: 0,
};

export function resetCounts(): void {
  for (const k of Object.keys(counts) as (keyof BindingCounts)[]) counts[k] = 0;
}

const wrapped = new WeakMap<object, Env>();

/** The same bindings, counted. One wrapper per env object (workerd passes the same env to every request). */
export function instrumented(env: Env): Env {
  let out = wrapped.get(env);
  if (!out) {
    out = {
      ...env,
      SNAPSHOTS: countedKv(env.SNAPSHOTS),
      DB: countedD1(env.DB),
      METER: countedNamespace(env.METER, meterLatencyMs(env)),
      PUBLISHER: countedNamespace(env.PUBLISHER) as unknown as Env["PUBLISHER"],
    };
    wrapped.set(env, out);
  }
  return out;
}

export function countedKv(kv: KVNamespace): KVNamespace {
  const call = (name: keyof KVNamespace, counter: "kvReads" | "kvWrites" | "kvLists") => {
    const method = kv[name] as (...a: unknown[]) => unknown;
    return (...args: unknown[]) => {
      counts[counter]++;
      return method.apply(kv, args);
    };
  };
  const counted = {
    get: call("get", "kvReads"),
    getWithMetadata: call("getWithMetadata", "kvReads"),
    put: call("put", "kvWrites"),
    delete: call("delete", "kvWrites"),
    list: call("list", "kvLists"),
  };
  return counted as unknown as KVNamespace;
}

/** A prepared statement that counts when it runs; `inner` is the real one (D1 batches need it). */
class CountedStatement {
  constructor(readonly inner: D1PreparedStatement) {}
  bind(...values: unknown[]) {
    return new CountedStatement(this.inner.bind(...values));
  }
  first(col?: string) {
    counts.d1Queries++;
    return col === undefined ? this.inner.first() : this.inner.first(col);
  }
  async all() {
    counts.d1Queries++;
    return written(await this.inner.all());
  }
  async run() {
    counts.d1Queries++;
    return written(await this.inner.run());
  }
  raw(options?: { columnNames?: false }) {
    counts.d1Queries++;
    return this.inner.raw(options);
  }
}

function written<R extends { meta?: { rows_written?: number } }>(result: R): R {
  counts.d1RowsWritten += result.meta?.rows_written ?? 0;
  return result;
}

export function countedD1(db: D1Database): D1Database {
  const counted = {
    prepare: (sql: string) => new CountedStatement(db.prepare(sql)),
    batch: async (statements: CountedStatement[]) => {
      counts.d1Queries += statements.length;
      return (await db.batch(statements.map((s) => s.inner))).map(written);
    },
    exec: (sql: string) => {
      counts.d1Queries++;
      return db.exec(sql);
    },
    dump: () => db.dump(),
  };
  return counted as unknown as D1Database;
}

type Namespace = Env["METER"];

/**
 * `npm run bench -- --do-latency MS` (BENCH_DO_LATENCY_MS): every meter call waits this long first, as a
 * call to a meter on another continent would; 0 (the default) adds nothing.
 */
function meterLatencyMs(env: Env): number {
  const ms = Number((env as unknown as Record<string, unknown>).BENCH_DO_LATENCY_MS ?? 0);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function countedNamespace(ns: Namespace | Env["PUBLISHER"], latencyMs = 0): Namespace {
  const counted = {
    idFromName: (name: string) => ns.idFromName(name),
    idFromString: (id: string) => ns.idFromString(id),
    newUniqueId: (opts?: DurableObjectNamespaceNewUniqueIdOptions) => ns.newUniqueId(opts),
    jurisdiction: (j: DurableObjectJurisdiction) => countedNamespace(ns.jurisdiction(j) as Namespace, latencyMs),
    get: (id: DurableObjectId, opts?: DurableObjectNamespaceGetDurableObjectOptions) =>
      countedStub(ns.get(id, opts), latencyMs),
    getByName: (name: string, opts?: DurableObjectNamespaceGetDurableObjectOptions) =>
      countedStub(ns.getByName(name, opts), latencyMs),
  };
  return counted as unknown as Namespace;
}

/** Every property of an RPC stub is a remote method; count each call. `then` stays undefined so a stub is never a thenable. */
function countedStub<T extends object>(stub: T, latencyMs: number): T {
  return new Proxy({} as T, {
    get(_target, prop) {
      if (prop === "then") return undefined;
      const target = stub as Record<PropertyKey, (...a: unknown[]) => unknown>;
      if (typeof target[prop] !== "function") return target[prop];
      // Called as stub[prop](...) so the RPC receiver is the stub (an RPC method has no .apply of its own).
      return (...args: unknown[]) => {
        counts.doCalls++;
        const call = () => (target[prop] as (...a: unknown[]) => unknown)(...args);
        const result = latencyMs > 0 ? pause(latencyMs).then(call) : call();
        return prop === "usage" ? (result as Promise<MeterResult>).then(countAdmission) : result;
      };
    },
  });
}

function countAdmission(r: MeterResult): MeterResult {
  if (r.ok && r.answer.allowed && !r.answer.replayed) counts.meterAdmitted++;
  return r;
}
