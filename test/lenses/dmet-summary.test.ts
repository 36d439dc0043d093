import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize } from '../../src/lenses/dmet/summary.js';
import type { DmetConfiguration, SequenceRow } from '../../src/lenses/dmet/rows.js';
import { benjaminiHochberg } from '../../src/stats/multiple.js';
import { createRng } from '../../src/tensor/rng.js';

/** 8 configurations × 5 sequences of random features; grammar = 1 everywhere (as in a small sweep). */
function grid(): { rows: SequenceRow[]; configs: DmetConfiguration[] } {
  const rng = createRng(3);
  const configs: DmetConfiguration[] = [];
  const rows: SequenceRow[] = [];
  for (let c = 0; c < 8; c++) {
    const sampling = { temperature: 0.2 + 0.2 * c, topP: 1, topK: 0, repetitionPenalty: 1 };
    configs.push({ index: c, dir: `c${c}`, sampling });
    for (let s = 0; s < 5; s++) {
      const C = 1 + rng.normal();
      const row = {
        config: c,
        temperature: sampling.temperature,
        top_p: 1,
        C_mean: C,
        C_std: 0.1,
        C_max: 2,
        jumps: 0,
        C_cos: 0.9,
        C_norm: 0.5,
        silhouette: 0.5 + 0.1 * rng.normal(),
        persistence: Math.abs(rng.normal()),
        predictability: NaN,
        log_ppl: 2 + 0.5 * C + 0.3 * rng.normal(),
        spelling: 0.9 + 0.01 * rng.normal(),
        diversity: 0.8 + 0.05 * rng.normal(),
        grammar: 1 - (s % 2 ? 1e-12 : 0), // rounding-level noise
        coherence: 0.5,
      };
      rows.push(row as unknown as SequenceRow);
    }
  }
  return { rows, configs };
}

test('DMET: a constant target (grammar = 1, coherence = 0.5) is not fitted and stays out of the BH family', () => {
  const { rows, configs } = grid();
  const s = summarize(rows, configs, { predictability: false });
  for (const family of [s.tests.mixed_model.fits, s.tests.fixed_effects.fits]) {
    for (const t of ['grammar', 'coherence']) {
      const fit = family.find((f) => f.target === t)!;
      assert.match(fit.error!, /^target constant/);
      assert.equal(fit.coefficients.length, 0);
    }
    // The family's q-values are BH over the fitted targets' slopes only (recomputed by hand here).
    const slopes = family.flatMap((f) => f.coefficients.filter((c) => c.name !== 'Intercept'));
    assert.equal(slopes.length, 3 * 3); // log_ppl, spelling, diversity × 3 features
    const q = benjaminiHochberg(slopes.map((c) => c.p));
    slopes.forEach((c, i) => assert.equal(c.q, q[i]));
    for (const c of slopes) assert.ok(c.p >= 0 && c.p <= 1);
  }
  // Per-configuration Pearson on a constant target has r undefined and no p.
  const grammar = s.tests.per_config_pearson.tests.filter((t) => t.target === 'grammar');
  assert.ok(grammar.every((t) => t.r === null && t.p === null && t.q === null));
  assert.equal(s.tests.mixed_model.fits[0].covariance, 'statsmodels observed information');
});
