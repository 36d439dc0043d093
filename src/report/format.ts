/**
 * How numbers read on a page: p-values never smaller than the arithmetic can vouch for, and the
 * names of the fields that hold them. One place, used by the report, the dashboard blocks and
 * the figure texts the lenses write.
 */

/**
 * The smallest p-value printed as a number. Below it, double-precision tails (1 − CDF, erfc,
 * incomplete beta) no longer carry a digit we can stand behind, so the page says "< 1e-16".
 */
export const P_FLOOR = 1e-16;

/** A p-value as text: "0.042", "3.1e-7", "< 1e-16" (never "< 1e-300"); "–" when there is none. */
export function pValue(p: number | null | undefined): string {
  if (p === null || p === undefined || Number.isNaN(p)) return '–';
  if (p < P_FLOOR) return '< 1e-16';
  if (p < 1e-3) return p.toExponential(1);
  return p.toFixed(3);
}

/**
 * Whether a JSON field holds a p-value: `p`, `*_p`, `p_value`, `pvalue`, `*_p_value` — but not
 * the decoding knobs and probabilities that share the letter (`top_p`, `min_p`, `min_log_p`).
 */
export function isPValueKey(key: string): boolean {
  const k = key.toLowerCase();
  if (/(^|_)(top|min|max|log)_p$/.test(k)) return false;
  return k === 'p' || /(^|_)p_?value$/.test(k) || /_p$/.test(k);
}
