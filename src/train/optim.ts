/**
 * The optimizer of llama2.c's train.py: AdamW (PyTorch's update: decoupled weight decay on the
 * matrices and embeddings only, not the norm gains), global-norm gradient clipping, and a
 * learning rate with linear warm-up and cosine decay to a floor.
 */
import type { ParamTensor } from './model.js';
import type { Vec } from './tensor.js';

export interface OptimConfig {
  lr: number; // peak learning rate
  minLr: number; // floor of the cosine decay
  warmup: number; // steps of linear warm-up
  steps: number; // total steps (the decay ends here)
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number; // max global L2 norm; 0 = off
}

export const DEFAULT_OPTIM: Omit<OptimConfig, 'steps'> = {
  lr: 1e-3,
  minLr: 1e-4,
  warmup: 100,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  gradClip: 1,
};

/**
 * The learning rate at 0-based step `t`: lr·(t+1)/warmup during warm-up, then
 * minLr + ½(1 + cos(π·progress))·(lr − minLr) with progress from 0 at the end of warm-up to 1 at
 * the last step (train.py get_lr, with the warm-up counted from 1 so step 0 moves the weights).
 */
export function learningRate(t: number, c: OptimConfig): number {
  if (t < c.warmup) return (c.lr * (t + 1)) / c.warmup;
  const span = Math.max(1, c.steps - 1 - c.warmup);
  const progress = Math.min(1, (t - c.warmup) / span);
  return c.minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (c.lr - c.minLr);
}

/** Scales `grads` so their global L2 norm is at most `maxNorm`; returns the norm before. */
export function clipGradNorm(grads: Vec, maxNorm: number): number {
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += grads[i] * grads[i];
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6); // torch.nn.utils.clip_grad_norm_
    for (let i = 0; i < grads.length; i++) grads[i] *= s;
  }
  return norm;
}

/** AdamW moments; `t` counts the updates taken (bias correction uses t after the increment). */
export interface AdamState {
  m: Vec;
  v: Vec;
  t: number;
}

/**
 * One AdamW update in place (torch.optim.AdamW): θ ← θ·(1 − lr·λ) for decayed tensors, then
 * m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², θ ← θ − lr·m̂/(√v̂ + ε).
 */
export function adamwStep(
  params: Vec,
  grads: Vec,
  state: AdamState,
  tensors: readonly ParamTensor[],
  lr: number,
  c: OptimConfig,
): void {
  state.t += 1;
  const { m, v, t } = state;
  const bc1 = 1 - Math.pow(c.beta1, t);
  const bc2 = 1 - Math.pow(c.beta2, t);
  const stepSize = lr / bc1;
  const sqrtBc2 = Math.sqrt(bc2);
  for (const tensor of tensors) {
    const end = tensor.offset + tensor.rows * tensor.cols;
    const decay = tensor.decay ? 1 - lr * c.weightDecay : 1;
    for (let i = tensor.offset; i < end; i++) {
      const g = grads[i];
      const mi = c.beta1 * m[i] + (1 - c.beta1) * g;
      const vi = c.beta2 * v[i] + (1 - c.beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + c.eps);
    }
  }
}
