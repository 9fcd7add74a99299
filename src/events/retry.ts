// The retry schedule of a failed delivery. Queues redelivers a message retried with delaySeconds;
// after max_retries (8, wrangler.toml) it goes to the dead-letter queue. Attempt n (1-based, as
// Message.attempts counts) that fails waits min(12 h, 30 s x 4^(n-1)) before the next:
//   30 s, 2 min, 8 min, 32 min, 2 h 8 min, 8 h 32 min, 12 h, 12 h: 9 attempts over about 35 h.
// 12 h is the longest delay Queues accepts.

export const MAX_DELAY_SECONDS = 12 * 3600;
export const MAX_RETRIES = 8;

/** Seconds to wait after failed attempt `attempt` (1-based). */
export const retryDelaySeconds = (attempt: number): number =>
  Math.min(MAX_DELAY_SECONDS, 30 * 4 ** Math.max(0, attempt - 1));

/** The whole schedule: the delay after each attempt that can still be retried. */
export const retrySchedule = (): number[] => Array.from({ length: MAX_RETRIES }, (_, i) => retryDelaySeconds(i + 1));
