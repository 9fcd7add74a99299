// Which usage alerts a counter's move reaches: pure. A threshold is a percentage of the limit; it is
// reached when usage goes from below it to at or above it. Unlimited allowances have none.

/** The thresholds (percent) that `before -> after` reaches for `limit`, in ascending order. */
export function reachedThresholds(limit: number | null, before: number, after: number, thresholds: number[]): number[] {
  if (limit === null || limit <= 0 || after <= before) return [];
  return [...thresholds]
    .sort((a, b) => a - b)
    .filter((t) => {
      const mark = (limit * t) / 100;
      return before < mark && after >= mark;
    });
}
