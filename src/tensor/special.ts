/**
 * Special functions the kernels and the statistics share (one copy of each): the GELU kernel and
 * its JVP call erfc per element, and stats/special.ts builds the normal law on it.
 */

/**
 * erfc(x) to double precision (relative error about 1e-15 for |x| < 6, checked against
 * scipy.special.erfc in test/tensor/special.test.ts). For z = |x|, t = 2/(2 + z) and u = 2t − 1:
 * erfc(z) = t·exp(−z² + g(u)), where g is a Chebyshev series fitted in 50-digit arithmetic by
 * scripts/reference/erfc_chebyshev.py (the form of Numerical Recipes 3rd ed. §6.2.2); erfc(−z) = 2 − erfc(z).
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 2 / (2 + z);
  const u = 2 * t - 1;
  // Clenshaw: g(u) = Σ_j c_j T_j(u)
  let b1 = 0;
  let b2 = 0;
  for (let j = ERFC_CHEBYSHEV.length - 1; j >= 1; j--) {
    const b0 = 2 * u * b1 - b2 + ERFC_CHEBYSHEV[j];
    b2 = b1;
    b1 = b0;
  }
  const g = u * b1 - b2 + ERFC_CHEBYSHEV[0];
  const r = t * Math.exp(-z * z + g);
  return x >= 0 ? r : 2 - r;
}

const ERFC_CHEBYSHEV: readonly number[] = [
  -6.5132685989085472e-1, 6.4196979235649026e-1, 1.9476473204185836e-2, -9.5615147868086316e-3,
  -9.4659534448203687e-4, 3.6683949785276145e-4, 4.2523324806907772e-5, -2.0278578112534243e-5,
  -1.6242900046470255e-6, 1.3036558355805232e-6, 1.5626441722066143e-8, -8.5238095914926543e-8,
  6.5290544390988515e-9, 5.0593434955514689e-9, -9.9136415649303309e-10, -2.2736512229318359e-10,
  9.6467911020155268e-11, 2.3940380830391147e-12, -6.8860275264975534e-12, 8.9448792730907257e-13,
  3.1309213993429581e-13, -1.1270822361367252e-13, 3.8109052551892321e-16, 7.106097613609237e-15,
  -1.5230282014571043e-15, -9.457494571291234e-17, 1.210237189224279e-16, -2.816663087747177e-17,
  5.0030055594459017e-20, 2.3281042579529253e-18, -8.4460776825090066e-19,
];
