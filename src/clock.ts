// The one source of "now". Production uses the system clock; tests inject a fixed or movable one
// (createWorker({ clock })), so time windows are tested without sleeps.
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: `clock.set(t)`, `clock.advance(ms)`. */
export class ManualClock implements Clock {
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  set(t: number | string | Date): void {
    this.t = typeof t === "number" ? t : new Date(t).getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
