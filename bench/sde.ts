/**
 * Speed of the SDE lens's fit (papers.md §2.4): drift and diffusion MLPs (the default
 * 2 × 128 tanh, t as an input) trained by the Euler–Maruyama likelihood on 10,000 increments
 * of an 8-dimensional Ornstein–Uhlenbeck process (100 paths × 100 steps), validated on another
 * 2,000. Reports the seconds of the whole default fit (early stopping on the validation NLL)
 * and per epoch (every increment through both networks, forward, backward and Adam, plus the
 * validation pass), and how well the same fit recovers θ. Wall-clock: on the shared 2-core
 * machine, run it when the load is low.
 *
 * Run alone: `node dist/bench/sde.js` (after `npx tsc -p .`), or call benchSde().
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateSde, fitSde } from '../src/lenses/sde/model.js';
import { incrementsOf } from '../src/lenses/sde/paths.js';
import { simulateOu } from '../src/lenses/sde/synthetic.js';

export interface SdeBenchResult {
  increments: number;
  dims: number;
  hidden: number[];
  /** The default fit: epochs run (early stopping), seconds, and seconds per epoch (with its validation pass). */
  fitEpochs: number;
  fitSeconds: number;
  epochSeconds: number;
  /** Recovery check of the same fit: mean |θ̂_i − θ_i^EM| / θ_i^EM over the 8 components. */
  thetaRelativeError: number;
}

export function benchSde(options: { maxEpochs?: number } = {}): SdeBenchResult {
  const k = 8;
  const dt = 0.05;
  const theta = Array.from({ length: k }, (_, i) => 0.5 + 0.25 * i);
  const mean = Array.from({ length: k }, (_, i) => (i % 2 === 0 ? 1 : -1) * 0.1 * i);
  const sigma = Array.from({ length: k }, (_, i) => 0.3 + 0.05 * i);
  const p = { theta, mean, sigma };
  const train = incrementsOf(simulateOu(p, { dt, steps: 100, paths: 100, seed: 1 }), k, dt);
  const validation = incrementsOf(simulateOu(p, { dt, steps: 100, paths: 20, seed: 2 }), k, dt);

  const fit = fitSde(train, validation, { seed: 1, maxEpochs: options.maxEpochs ?? 300 });
  // θ̂_i from the slope of μ_i along x_i (others at their mean), against (1 − e^{−θΔt})/Δt
  let err = 0;
  for (let i = 0; i < k; i++) {
    const sd = sigma[i] / Math.sqrt(2 * theta[i]);
    const x = new Float64Array(2 * k);
    x.set(mean);
    x.set(mean, k);
    x[i] = mean[i] - sd;
    x[k + i] = mean[i] + sd;
    const mu = evaluateSde(fit.network, x, Float64Array.of(2.5, 2.5), 2).mu; // t mid-path
    const slope = (mu[k + i] - mu[i]) / (2 * sd);
    const target = (1 - Math.exp(-theta[i] * dt)) / dt;
    err += Math.abs(-slope - target) / target / k;
  }
  return {
    increments: train.n,
    dims: k,
    hidden: fit.options.hidden,
    fitEpochs: fit.epochs,
    fitSeconds: fit.seconds,
    epochSeconds: fit.seconds / fit.epochs,
    thetaRelativeError: err,
  };
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const r = benchSde();
  console.log(
    `sde fit: ${r.increments} increments, k = ${r.dims}, MLPs ${r.hidden.join('×')} tanh (drift + diffusion, EM likelihood, Adam, batch 256)`,
  );
  console.log(
    `default fit (early stopping): ${r.fitEpochs} epochs, ${r.fitSeconds.toFixed(1)} s (${r.epochSeconds.toFixed(2)} s per epoch)`,
  );
  console.log(`recovery on the same fit: mean |θ̂ − θ_EM|/θ_EM ${r.thetaRelativeError.toFixed(3)}`);
}
