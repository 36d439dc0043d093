/**
 * The lenses `lmdyn analyze` knows, in the order papers.md presents them. Each lens lives in
 * `analyze-<lens>.ts` and adds one line here.
 */
import type { LensRegistrar } from './analyze.js';
import { registerCouplingLens } from './analyze-coupling.js';
import { registerDmetLens } from './analyze-dmet.js';
import { registerSdeLens } from './analyze-sde.js';
import { registerSimplexLens } from './analyze-simplex.js';
import { registerGravityLens } from './analyze-gravity.js';

export const LENSES: readonly LensRegistrar[] = [registerDmetLens, registerSdeLens, registerGravityLens, registerSimplexLens, registerCouplingLens];
