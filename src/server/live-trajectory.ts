/**
 * A trajectory that grows while the model generates, shown through a PCA of the states so far.
 * New states are projected on the current components at once; the PCA is refitted on all
 * states now and then (never more often than its own cost allows), and the page then redraws
 * every point. Coordinates are for pictures: 5 significant digits.
 */
import { projectPca, projectRow } from '../trace/trajectory.js';
import type { EngineEvent } from './engine.js';

export class LiveTrajectory {
  private data: Float64Array; // [capacity, d]
  private n = 0;
  private readonly positions: number[] = [];
  private fit: { mean: Float64Array; components: Float64Array; k: number } | null = null;
  private fittedAt = 0; // performance.now() of the last fit
  private fitMs = 0;
  private fittedN = 0;

  constructor(
    private readonly d: number,
    private readonly k: number,
    private readonly minIntervalMs = 150,
  ) {
    this.data = new Float64Array(64 * d);
  }

  /** Adds rows act [rows, d] at `positions`; returns what the page should draw now, if anything. */
  add(act: Float32Array, positions: readonly number[]): EngineEvent | null {
    const d = this.d;
    if (this.data.length < (this.n + positions.length) * d) {
      const bigger = new Float64Array(
        Math.max(this.data.length * 2, (this.n + positions.length) * d),
      );
      bigger.set(this.data);
      this.data = bigger;
    }
    const start = this.n;
    positions.forEach((p, r) => {
      for (let j = 0; j < d; j++) this.data[this.n * d + j] = act[r * d + j];
      this.positions.push(p);
      this.n++;
    });
    const now = performance.now();
    const due =
      now - this.fittedAt > Math.max(this.minIntervalMs, 5 * this.fitMs) && this.n > this.fittedN;
    if ((this.fit === null && this.n >= 3) || (this.fit !== null && due)) return this.refit();
    if (this.fit === null) return null;
    const { mean, components, k } = this.fit;
    const coords: number[] = [];
    const row = new Array<number>(k);
    for (let i = start; i < this.n; i++) {
      projectRow(this.data, i * d, d, mean, components, k, row);
      coords.push(...row.map(round));
    }
    return { type: 'points', positions: this.positions.slice(start), k, coords };
  }

  /** Refits the PCA on every state so far and returns all of them in the new coordinates. */
  refit(): EngineEvent | null {
    if (this.n < 2) return null;
    const t0 = performance.now();
    const p = projectPca(this.data.subarray(0, this.n * this.d), this.n, this.d, this.k);
    // keep each axis pointing the way it did, so a refit does not mirror the picture
    const previous = this.fit;
    for (let c = 0; previous && c < Math.min(p.k, previous.k); c++) {
      let dot = 0;
      for (let j = 0; j < this.d; j++)
        dot += p.components[c * this.d + j] * previous.components[c * this.d + j];
      if (dot >= 0) continue;
      for (let j = 0; j < this.d; j++) p.components[c * this.d + j] *= -1;
      for (let i = 0; i < this.n; i++) p.coords[i * p.k + c] *= -1;
    }
    this.fit = { mean: p.mean, components: p.components, k: p.k };
    this.fittedAt = performance.now();
    this.fitMs = this.fittedAt - t0;
    this.fittedN = this.n;
    return {
      type: 'trajectory',
      positions: [...this.positions],
      k: p.k,
      coords: Array.from(p.coords, round),
      explained: p.explained.map(round),
    };
  }
}

function round(x: number): number {
  return Number(x.toPrecision(5));
}
