/**
 * Multiple-testing correction (papers.md §1.6: DMET v3 reports Benjamini–Hochberg-corrected
 * associations).
 */

/**
 * Benjamini–Hochberg adjusted p-values (q-values), as R's p.adjust(method = "BH") and
 * statsmodels' multipletests(method = "fdr_bh"): with the m finite p-values sorted ascending,
 * q_(i) = min_{j ≥ i} min(1, m·p_(j) / j). Null or non-finite entries stay null and do not count
 * in m.
 */
export function benjaminiHochberg(p: readonly (number | null)[]): (number | null)[] {
  const idx = p
    .map((_, i) => i)
    .filter((i) => p[i] !== null && Number.isFinite(p[i]))
    .sort((a, b) => (p[a] as number) - (p[b] as number));
  const m = idx.length;
  const out: (number | null)[] = p.map(() => null);
  let running = 1;
  for (let r = m - 1; r >= 0; r--) {
    const i = idx[r];
    running = Math.min(running, ((p[i] as number) * m) / (r + 1));
    out[i] = running;
  }
  return out;
}
