// Bindings wrapped to count what a piece of code writes and reads (nothing is mocked: every call reaches
// the real local KV and D1). D1's own meta.rows_written and rows_read are summed over every statement
// run, alone or in a batch.
import { env } from "cloudflare:workers";

export interface WriteCounter {
  kvPuts: string[];
  d1RowsWritten: number;
  /** D1's meta.rows_read, summed likewise: what a query costs as D1 bills and limits it. */
  d1RowsRead: number;
  d1Statements: number;
}

export function countingEnv(base: Cloudflare.Env = env): { counter: WriteCounter; env: Cloudflare.Env } {
  const counter: WriteCounter = { kvPuts: [], d1RowsWritten: 0, d1RowsRead: 0, d1Statements: 0 };
  const add = (meta: { rows_written?: number; rows_read?: number } | undefined) => {
    counter.d1Statements++;
    counter.d1RowsWritten += meta?.rows_written ?? 0;
    counter.d1RowsRead += meta?.rows_read ?? 0;
  };
  const patch = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const bind = stmt.bind.bind(stmt);
    const run = stmt.run.bind(stmt);
    const all = stmt.all.bind(stmt);
    Object.assign(stmt, {
      bind: (...values: unknown[]) => patch(bind(...values)),
      run: async () => {
        const r = await run();
        add(r.meta);
        return r;
      },
      all: async () => {
        const r = await all();
        add(r.meta);
        return r;
      },
    });
    return stmt;
  };
  const DB = new Proxy(base.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => patch(target.prepare(sql));
      if (prop === "withSession") return () => DB;
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          for (const r of results) add(r.meta);
          return results;
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const SNAPSHOTS = new Proxy(base.SNAPSHOTS, {
    get(target, prop) {
      if (prop === "put")
        return (key: string, ...rest: unknown[]) => {
          counter.kvPuts.push(key);
          return (target.put as (...a: unknown[]) => Promise<void>)(key, ...rest);
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { counter, env: { ...base, DB, SNAPSHOTS } as Cloudflare.Env };
}

export interface CompileCounter {
  /** D1 batches that read a customer part (a part compile: read-through, minVersion, or a write's). */
  parts: number;
  /** D1 batches that read the catalog (a catalog compile). */
  catalogs: number;
  /** While true, every D1 call throws (the attempts are still counted). */
  failing: boolean;
}

/**
 * D1 wrapped to count the compiles that reach it, told apart by the SQL of their batch, and to fail on
 * demand. Every other call goes to the real local D1.
 */
export function compileCountingEnv(base: Cloudflare.Env = env): { counter: CompileCounter; env: Cloudflare.Env } {
  const counter: CompileCounter = { parts: 0, catalogs: 0, failing: false };
  const sqlOf = new WeakMap<D1PreparedStatement, string>();
  const fail = () => {
    throw new Error("D1 unavailable");
  };
  const track = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    sqlOf.set(stmt, sql);
    const bind = stmt.bind.bind(stmt);
    const guarded = (name: "first" | "all" | "run" | "raw") => {
      const call = (stmt[name] as (...a: unknown[]) => Promise<unknown>).bind(stmt);
      return async (...a: unknown[]) => (counter.failing ? fail() : call(...a));
    };
    return Object.assign(stmt, {
      bind: (...values: unknown[]) => track(bind(...values), sql),
      first: guarded("first"),
      all: guarded("all"),
      run: guarded("run"),
      raw: guarded("raw"),
    });
  };
  const DB = new Proxy(base.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => track(target.prepare(sql), sql);
      // A session (read replicas) reads through the same wrapper: counted and failing alike.
      if (prop === "withSession") return () => DB;
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          const sql = statements.map((s) => sqlOf.get(s) ?? "");
          if (sql.some((q) => q.includes("FROM subscriptions WHERE customer_id IN"))) counter.parts++;
          if (sql.some((q) => q.includes("FROM features"))) counter.catalogs++;
          if (counter.failing) fail();
          return target.batch(statements);
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { counter, env: { ...base, DB } as Cloudflare.Env };
}

/** One RPC to a customer's meter, as a wrapped METER binding saw it. */
export interface MeterCallSeen {
  method: string;
  name: string;
  result?: unknown;
  error?: string;
}

/**
 * The METER binding wrapped to record every RPC (method, object name, result) and to make the methods
 * named in `failing` throw before they reach the object, as an unreachable meter would. Every other
 * call reaches the real Durable Object.
 */
export function observedMeterEnv(
  base: Cloudflare.Env = env,
  failing: Set<string> = new Set(),
): { calls: MeterCallSeen[]; env: Cloudflare.Env } {
  const calls: MeterCallSeen[] = [];
  const names = new Map<string, string>();
  const wrapStub = (stub: DurableObjectStub, name: string) =>
    new Proxy(stub, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof prop !== "string" || prop === "then" || typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          const seen: MeterCallSeen = { method: prop, name };
          calls.push(seen);
          if (failing.has(prop)) {
            seen.error = "injected: meter unreachable";
            throw new Error(seen.error);
          }
          seen.result = await (target as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[prop]!(
            ...args,
          );
          return seen.result;
        };
      },
    });
  const METER = new Proxy(base.METER, {
    get(target, prop) {
      if (prop === "idFromName")
        return (name: string) => {
          const id = target.idFromName(name);
          names.set(id.toString(), name);
          return id;
        };
      if (prop === "get")
        return (id: DurableObjectId) => wrapStub(target.get(id), names.get(id.toString()) ?? id.toString());
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { calls, env: { ...base, METER } as Cloudflare.Env };
}

/** Calls made on each binding, by binding name and method ("SNAPSHOTS.get", "DB.prepare", "ANALYTICS.writeDataPoint"). */
export interface BindingCalls {
  calls: string[];
  /** Every writeDataPoint argument, in order (the real binding gets them too). */
  dataPoints: AnalyticsEngineDataPoint[];
}

/**
 * The env with SNAPSHOTS, DB, METER and ANALYTICS wrapped to record every method called on them (each call
 * still reaches the real local binding), so a test can assert that a path touched no binding at all.
 */
export function recordingEnv(base: Cloudflare.Env): { recorded: BindingCalls; env: Cloudflare.Env } {
  const recorded: BindingCalls = { calls: [], dataPoints: [] };
  const wrap = <T extends object>(name: string, target: T): T =>
    new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          recorded.calls.push(`${name}.${String(prop)}`);
          if (name === "ANALYTICS" && prop === "writeDataPoint")
            recorded.dataPoints.push(args[0] as AnalyticsEngineDataPoint);
          return (value as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  return {
    recorded,
    env: {
      ...base,
      SNAPSHOTS: wrap("SNAPSHOTS", base.SNAPSHOTS),
      DB: wrap("DB", base.DB),
      METER: wrap("METER", base.METER),
      ANALYTICS: wrap("ANALYTICS", base.ANALYTICS),
    } as Cloudflare.Env,
  };
}
