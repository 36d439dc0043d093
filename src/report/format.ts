/**
 * How numbers read on a page and in the terminal: one copy of each form, so a value reads the
 * same in `lmdyn analyze …`, the demos, the figure texts and the HTML report. p-values are never
 * smaller than the arithmetic can vouch for. A value that is missing (null, undefined) or NaN
 * prints '–'; an infinity prints '∞' / '−∞'.
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

/** Fixed decimals: fixed(0.12345, 3) = '0.123'. */
export function fixed(v: number | null | undefined, digits: number): string {
  return isNumber(v) ? v.toFixed(digits) : notFinite(v);
}

/** Significant digits, trailing zeros kept: precise(0.5, 3) = '0.500'. */
export function precise(v: number | null | undefined, digits: number): string {
  return isNumber(v) ? v.toPrecision(digits) : notFinite(v);
}

/** Significant digits, trailing zeros dropped: rounded(0.5, 3) = '0.5', rounded(1234567, 4) = '1235000'. */
export function rounded(v: number | null | undefined, digits: number): string {
  return isNumber(v) ? String(Number(v.toPrecision(digits))) : notFinite(v);
}

/** Four significant digits, exponent form below 1e-3 and from 1e4 (0 prints '0'). */
export function compact(v: number | null | undefined): string {
  if (!isNumber(v)) return notFinite(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  return a < 1e-3 || a >= 1e4 ? v.toExponential(2) : v.toPrecision(4);
}

/** A number in a report table: integers as they are (below 1e9), else four significant digits with the exponent form below 1e-3 and from 1e6. */
export function tableNumber(v: number | null | undefined): string {
  if (!isNumber(v)) return notFinite(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

/** A table cell of any value: numbers by tableNumber, anything else as its string (not escaped). */
export function cell(v: unknown): string {
  return typeof v === 'number' || v === null || v === undefined ? tableNumber(v) : String(v);
}

/** A share as a percentage: percent(0.256) = '26%', percent(0.256, 1) = '25.6%'. */
export function percent(v: number | null | undefined, digits = 0): string {
  return isNumber(v) ? `${(100 * v).toFixed(digits)}%` : notFinite(v);
}

/** A duration for a progress line: '42s', '3m07s', '2h05m'; '?' when unknown. */
export function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
  }
  const h = Math.floor(s / 3600);
  return `${h}h${String(Math.round((s - 3600 * h) / 60)).padStart(2, '0')}m`;
}

function isNumber(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function notFinite(v: number | null | undefined): string {
  if (v === Infinity) return '∞';
  if (v === -Infinity) return '−∞';
  return '–';
}
