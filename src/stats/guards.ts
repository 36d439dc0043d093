/**
 * Guards shared by the statistics: probabilities from approximations stay in [0, 1], and a
 * variable that is constant to rounding is not regressed or correlated.
 */

/** A probability computed by an approximation, clamped into [0, 1]. */
export function clampProbability(p: number): number {
  return Math.min(1, Math.max(0, p));
}

/**
 * Whether a variable is constant to floating-point precision: its range is at most 1e-9 of its
 * largest magnitude (so 1 ± 1e-22 noise counts as constant, 1e-20-sized real spread does not).
 * A regression or correlation on such a target measures rounding, not data.
 */
export function isConstant(values: readonly number[]): boolean {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo > hi) return true;
  return hi - lo <= 1e-9 * Math.max(Math.abs(lo), Math.abs(hi));
}
