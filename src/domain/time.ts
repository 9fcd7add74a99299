// Instants on the wire and the units of time the rules are written in. Pure.

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** An instant (ms since the epoch) as the wire writes it: ISO 8601 in UTC. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** `iso`, passing `null` (an open-ended window) through. */
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));
