/**
 * Adam (Kingma & Ba 2015, Algorithm 1) on a flat float64 parameter vector:
 *   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²,
 *   θ ← θ − lr · m̂ / (√v̂ + ε),  m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t).
 * Defaults are PyTorch's (lr 1e-3, β = (0.9, 0.999), ε = 1e-8, no weight decay).
 */
export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface Adam {
  /** Learning rate (may be changed between steps, e.g. by a schedule). */
  lr: number;
  /** Steps taken so far. */
  readonly t: number;
  /** One update of `params` in place from the gradient `grad`. */
  step(params: Float64Array, grad: Float64Array): void;
}

export function createAdam(size: number, options: AdamOptions = {}): Adam {
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8;
  const m = new Float64Array(size);
  const v = new Float64Array(size);
  let t = 0;
  return {
    lr: options.lr ?? 1e-3,
    get t() {
      return t;
    },
    step(params, grad) {
      const lr = this.lr;
      if (params.length !== size || grad.length !== size) {
        // Internal invariant, not user input: the optimiser is built for the network it updates.
        throw new Error(`adam: ${params.length} params / ${grad.length} grads for size ${size}`);
      }
      t++;
      const c1 = 1 - beta1 ** t;
      const c2 = 1 - beta2 ** t;
      for (let i = 0; i < size; i++) {
        const g = grad[i];
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        params[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
      }
    },
  };
}
