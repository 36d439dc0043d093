import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root: this file runs as dist/test/helpers/paths.js. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The repository's test models (test/fixtures/models; origins and reference values in its MANIFEST.md). */
export const MODELS = resolve(ROOT, 'test', 'fixtures', 'models');
export const model = (...parts: string[]): string => resolve(MODELS, ...parts);
/** A small reference file under test/fixtures (each folder's README says which script made it). */
export const fixture = (...parts: string[]): string => resolve(ROOT, 'test', 'fixtures', ...parts);
/** MANIFEST.md §1: the first 64 greedy ids of stories260K after BOS. */
export const STORIES_GREEDY_64 =
  '403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415 426 13 438 310'
    .split(' ')
    .map(Number);

/** MANIFEST.md §1: the top 5 logits at position 0 (input [BOS]) and their logsumexp. */
export const STORIES_TOP5: [number, number][] = [
  [403, 17.0235],
  [385, 15.4062],
  [410, 13.1083],
  [317, 12.7692],
  [407, 12.4181],
];
export const STORIES_LSE0 = 17.26726;
