// A per-isolate budget for read-through compiles from D1: a token bucket refilled at `perSecond`, holding
// at most `burst`, read on the injected clock (`now` is passed in). When KV fails or misses everywhere at
// once, each isolate sends D1 at most burst + perSecond x elapsed part compiles; beyond that the check
// path answers from a stale copy or the failure policy (degraded, `read_through_limited`).
export class ReadBudget {
  #tokens: number;
  #at: number | null = null;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
  }

  /** Takes one token if there is one. A clock that moves backwards refills nothing. */
  take(now: number): boolean {
    if (this.#at === null) this.#at = now;
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.perSecond) / 1000);
      this.#at = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
