// KV as deployed KV misbehaves, around the real local KV (which has none of this): every write goes to the
// real namespace, after two faults deployed KV has, a 429 on a second write of one key within a second
// (on the test's clock) and plain failures on demand; and each "location" sees the writes of at least
// `lagMs` ago only, the way a KV edge keeps serving what it cached. Reads at lag 0, and of keys this
// wrapper never saw written (the catalog, API keys), go to the real namespace.
import { env } from "cloudflare:workers";
import type { ManualClock } from "../../src/clock";

interface Written {
  at: number;
  value: string | null;
  metadata: unknown;
}

export class LaggingKV {
  /** Every write that KV took, per key, in order. */
  readonly log = new Map<string, Written[]>();
  /** Writes refused: [key, why]. */
  readonly refused: [string, "429" | "failed"][] = [];
  /** While above 0, each write fails (and counts it down); Infinity: KV is down for writes. */
  failWrites = 0;
  /** KV's per-key rate: a second write of a key within this many ms of the last is a 429. */
  rateLimitMs = 1_000;

  constructor(
    readonly clock: ManualClock,
    readonly base: KVNamespace = env.SNAPSHOTS,
  ) {}

  /** The values KV took for `key`, in order (null: deleted). */
  values(key: string): (string | null)[] {
    return (this.log.get(key) ?? []).map((w) => w.value);
  }

  /** The namespace as seen from a location `lagMs` behind. */
  at(lagMs: number): KVNamespace {
    const read = (key: string): Written | null | undefined => {
      const log = this.log.get(key);
      if (lagMs === 0 || !log) return undefined; // the real namespace answers
      const visible = this.clock.now() - lagMs;
      return log.filter((w) => w.at <= visible).at(-1) ?? null;
    };
    const parse = (text: string | null, type?: unknown) =>
      text !== null && (type === "json" || (typeof type === "object" && (type as { type?: string })?.type === "json"))
        ? JSON.parse(text)
        : text;
    const view = {
      get: async (key: string, type?: unknown) => {
        const seen = read(key);
        if (seen === undefined) return this.base.get(key, type as "text");
        return parse(seen?.value ?? null, type);
      },
      getWithMetadata: async (key: string, type?: unknown) => {
        const seen = read(key);
        if (seen === undefined) return this.base.getWithMetadata(key, type as "text");
        return { value: parse(seen?.value ?? null, type), metadata: seen?.metadata ?? null, cacheStatus: null };
      },
      put: (key: string, value: string, opts?: KVNamespacePutOptions) => this.#write(key, value, opts),
      delete: (key: string) => this.#write(key, null),
      list: (opts?: KVNamespaceListOptions) => this.base.list(opts),
    };
    return view as unknown as KVNamespace;
  }

  async #write(key: string, value: string | null, opts?: KVNamespacePutOptions): Promise<void> {
    const now = this.clock.now();
    if (this.failWrites > 0) {
      this.failWrites--;
      this.refused.push([key, "failed"]);
      throw new Error("KV PUT failed: 500 Internal Server Error");
    }
    const last = this.log.get(key)?.at(-1);
    if (last && now - last.at < this.rateLimitMs) {
      this.refused.push([key, "429"]);
      throw new Error("KV PUT failed: 429 Too Many Requests");
    }
    if (value === null) await this.base.delete(key);
    else await this.base.put(key, value, opts);
    const log = this.log.get(key) ?? [];
    log.push({ at: now, value, metadata: opts?.metadata ?? null });
    this.log.set(key, log);
  }
}
