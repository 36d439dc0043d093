export * from './errors.js';
export * from './model/types.js';
export type { Tokenizer } from './tokenizer/types.js';
export { createRng } from './tensor/rng.js';
export type { Rng } from './tensor/rng.js';
