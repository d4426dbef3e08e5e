/** Number formatting for the panel's text; DOM-free so the tests can check it in Node. */

export function percent(value: number, digits = 1): string {
  return `${(value * 100).toFixed(digits)}%`;
}

/**
 * Shares rounded to `digits` decimals of a percent with the largest-remainder method, so that the
 * legend's numbers add up to exactly 100% instead of 99.9% or 100.1%.
 */
export function roundedPercents(shares: readonly number[], digits = 1): string[] {
  const unit = 10 ** digits;
  const total = shares.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return shares.map(() => (0).toFixed(digits));
  const exact = shares.map((s) => (s / total) * 100 * unit);
  const floors = exact.map(Math.floor);
  let missing = 100 * unit - floors.reduce((a, b) => a + b, 0);
  const order = exact.map((v, i) => ({ i, rest: v - floors[i] })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (const { i } of order) {
    if (missing <= 0) break;
    floors[i]++;
    missing--;
  }
  return floors.map((f) => (f / unit).toFixed(digits));
}
