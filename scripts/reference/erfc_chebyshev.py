#!/usr/bin/env python3
"""Chebyshev coefficients of the erfc fit in src/tensor/special.ts (run with /usr/bin/python3).

For z >= 0 write t = 2/(2 + z) in (0, 1] and u = 2t - 1 in (-1, 1]. Then
    erfc(z) = t * exp(-z^2 + g(u)),   g(u) = ln(erfc(z) e^{z^2} / t),
and g is smooth on [-1, 1] (as z -> inf, erfc(z) e^{z^2} has an expansion in 1/z, analytic in t).
g is interpolated at N Chebyshev nodes in 50-digit arithmetic (mpmath) and the series is cut where
the coefficients fall below 1e-19, far under double rounding. Prints the TypeScript array.
"""
import mpmath as mp

mp.mp.dps = 50
N = 60


def g(t):
    z = 2 / t - 2
    return mp.log(mp.erfc(z) * mp.exp(z * z) / t)


nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / N) for k in range(N)]
vals = [g((u + 1) / 2) for u in nodes]
coef = []
for j in range(N):
    s = mp.fsum(vals[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / N) for k in range(N))
    coef.append(2 * s / N)
coef[0] /= 2  # so that g(u) = sum_j coef[j] T_j(u)
last = max(j for j, c in enumerate(coef) if abs(c) > 1e-19)
print('const ERFC_CHEBYSHEV = [')
for c in coef[: last + 1]:
    print(f'  {mp.nstr(c, 17, min_fixed=0, max_fixed=0)},')
print('];')
