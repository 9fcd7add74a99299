// Publisher: the one way customer parts and the catalog reach KV. One Durable Object per entry it owns
// ("part:<customerId>", "catalog"), so every publication of that entry is serialised in one place:
// - version-guarded: a publication older than the newest it has been given is dropped
//   (domain/publication.ts judge), so a slow writer or a read-through that read D1 earlier can never
//   put an older part back over a newer one, whatever the order the calls arrive in;
// - retried: a failed write (an error; a 429, KV's answer to a second write of one key within a second)
//   stays pending in this object's storage and its alarm retries it with backoff (1 s doubling to 5 min,
//   never sooner than a second after the last write of the key) until KV takes it, with no further write
//   needed; publications that arrive meanwhile coalesce into the newest;
// - confirmed: a part that reached KV is marked in D1 (customers.published_rev), so the cron finds any
//   write whose publication never reached this object at all (scheduled.ts repairPublications);
// - refreshed: a part's KV copy expires (PART_KV_TTL_SECONDS, default 2 days) so KV heals itself even
//   if everything else failed; readers ask for a refresh when the copy is older than half that, and this
//   object recompiles it from D1.
// The Worker's side (history rows, what a publication holds): store/snapshot-publisher.ts.
import { DurableObject } from "cloudflare:workers";
import { configOf } from "../config";
import {
  delayBeforeWrite,
  EMPTY_STATE,
  judge,
  newestOf,
  type Publication,
  type PublishAnswer,
  type PublisherState,
  type PubVersion,
} from "../domain/publication";
import type { Env } from "../env";
import { confirmPublished, freshPublication } from "./snapshot-publisher";

export class Publisher extends DurableObject<Env> {
  /** Fields (not env directly) so a test can inject a lagging, failing or rate-limited KV, or a D1 it controls. */
  kv: KVNamespace;
  db: D1Database;
  readonly #sql: SqlStorage;
  /** Every call runs after the one before has finished, KV writes included (the input gate does not cover them). */
  #tail: Promise<unknown> = Promise.resolve();
  /** The clock: the latest instant a caller told this object, moved on by real time since (for the alarm). */
  #seen = 0;
  #seenReal = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.kv = env.SNAPSHOTS;
    this.db = env.DB;
    this.#sql = ctx.storage.sql;
    this.#sql.exec(
      "CREATE TABLE IF NOT EXISTS publisher (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, state TEXT NOT NULL)",
    );
  }

  /** Publishes `pub` unless something newer is published or pending; answers once KV has it or it is pending. */
  publish(name: string, pub: Publication, now: number): Promise<PublishAnswer> {
    return this.#serial(name, now, () => this.#offer(name, pub, now));
  }

  /** Recompiles the entry from D1 and publishes it as a repair (readers found it old; the cron found it unconfirmed). */
  refresh(name: string, now: number): Promise<PublishAnswer> {
    return this.#serial(name, now, async () => {
      const pub = await freshPublication(this.db, name, now, configOf(this.env).snapshotCache.partTtlSeconds);
      if (pub === null) return { state: "gone", newest: newestOf(this.#load().state) };
      const answer = await this.#offer(name, { ...pub, repair: "missing" }, now);
      // KV already had it: say so in D1, so the cron (which asks this) stops asking.
      if (answer.state === "current" && answer.newest) await confirmPublished(this.db, name, answer.newest);
      return answer;
    });
  }

  /**
   * The entry's customer was deleted: its keys are deleted from KV (retried like any write), and every
   * publication read from D1 before `now` is refused from then on; a customer created again under the id
   * publishes from revision 1.
   */
  retire(name: string, keys: string[], now: number): Promise<PublishAnswer> {
    return this.#serial(name, now, async () => {
      const { state } = this.#load();
      const pending: Publication = { version: [], compiledAt: now, puts: keys.map((key) => ({ key, value: null })) };
      this.#save(name, { ...state, published: null, pending, floor: now });
      return this.#write(name, now);
    });
  }

  /** The retry of a pending publication. */
  override async alarm(): Promise<void> {
    const row = this.#load();
    if (!row.name || !row.state.pending) return;
    const name = row.name;
    const now = this.#now();
    await this.#serial(name, now, () => this.#write(name, now));
  }

  /** For tests and `snapshots verify`: what this publisher holds. */
  async inspect(): Promise<PublisherState> {
    return this.#load().state;
  }

  async #offer(name: string, pub: Publication, now: number): Promise<PublishAnswer> {
    const { state } = this.#load();
    const verdict = judge(state, pub, now);
    if (verdict === "superseded") return { state: verdict, newest: newestOf(state) };
    if (verdict === "current")
      return state.pending
        ? { state: "pending", newest: state.pending.version }
        : { state: verdict, newest: state.published };
    this.#save(name, { ...state, pending: pub });
    return this.#write(name, now);
  }

  /**
   * Writes the pending publication to KV, at once (local KV has no per-key rate; deployed KV answers a
   * second write within a second with a 429, which is a failure like any other). A failure leaves it
   * pending, with the alarm set for the retry.
   */
  async #write(name: string, now: number): Promise<PublishAnswer> {
    const { state } = this.#load();
    const pub = state.pending;
    if (!pub) return { state: "current", newest: state.published };
    try {
      for (const put of pub.puts) {
        if (put.value === null) await this.kv.delete(put.key);
        else
          await this.kv.put(put.key, put.value, {
            ...(put.ttlSeconds
              ? { expirationTtl: put.ttlSeconds, metadata: { ...put.metadata, publishedAt: now } }
              : {}),
          });
      }
    } catch (err) {
      const failed = { ...state, attempts: state.attempts + 1 };
      this.#save(name, failed);
      const delay = delayBeforeWrite(failed, now, Math.random());
      const msg = "publication failed; retrying";
      console.error(JSON.stringify({ msg, name, attempts: failed.attempts, retryInMs: delay, error: String(err) }));
      return this.#retryIn(delay, pub.version);
    }
    const published = pub.version.length > 0 ? pub.version : null;
    this.#save(name, { ...state, published, publishedAt: now, pending: null, attempts: 0 });
    if (published) await confirmPublished(this.db, name, published);
    return { state: "published", newest: published };
  }

  async #retryIn(ms: number, version: PubVersion): Promise<PublishAnswer> {
    await this.ctx.storage.setAlarm(Date.now() + ms);
    return { state: "pending", newest: version, retryInMs: ms };
  }

  #serial<T>(name: string, now: number, run: () => Promise<T>): Promise<T> {
    if (now > this.#seen) this.#seen = now;
    this.#seenReal = Date.now();
    if (!this.#load().name) this.#save(name, EMPTY_STATE);
    const next = this.#tail.then(run, run);
    this.#tail = next.catch(() => undefined);
    return next;
  }

  #now(): number {
    return this.#seen ? this.#seen + Math.max(0, Date.now() - this.#seenReal) : Date.now();
  }

  #load(): { name: string | null; state: PublisherState } {
    const row = this.#sql
      .exec<{ name: string; state: string }>("SELECT name, state FROM publisher WHERE id = 1")
      .toArray()[0];
    return row
      ? { name: row.name, state: JSON.parse(row.state) as PublisherState }
      : { name: null, state: EMPTY_STATE };
  }

  #save(name: string, state: PublisherState): void {
    this.#sql.exec(
      "INSERT INTO publisher (id, name, state) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
      name,
      JSON.stringify(state),
    );
  }
}
