/**
 * The demo is a list of steps; each capability adds one (in `demo-<name>.ts`) and a line to
 * DEMO_STEPS. A step gets the model, the demo's folders and two printers, and returns nothing:
 * it calls `record(title, body)` for each section of the report it wants.
 */
import type { Model } from '../model/model.js';
import { couplingDemo } from './demo-coupling.js';
import { gravityDemo } from './demo-gravity.js';
import { simplexDemo } from './demo-simplex.js';
import { sdeDemo } from './demo-sde.js';
import { dmetDemo } from './demo-dmet.js';
import { trainDemo } from './demo-train.js';

export interface DemoContext {
  model: Model;
  /** How the model was named (path or hub id). */
  label: string;
  /** The demo's output folder (absolute); each step writes under `join(out, '<name>')`. */
  out: string;
  /** A trace folder written earlier in the demo (4 samples × 48 tokens, T = 0.8). */
  traceDir: string;
  /** A sweep folder written earlier (T ∈ {0.3, 1.0, 1.5} × top-p ∈ {0.5, 1.0}, 4 × 40 tokens). */
  sweepDir: string;
  /** One line on the terminal (progress). */
  say: (line?: string) => void;
  /** A section of the report (markdown body; printed to the terminal too). */
  record: (title: string, body: string) => void;
}

export interface DemoStep {
  name: string;
  run: (ctx: DemoContext) => Promise<void>;
}

export const DEMO_STEPS: readonly DemoStep[] = [
  dmetDemo,
  gravityDemo,
  couplingDemo,
  simplexDemo,
  sdeDemo,
  trainDemo,
];
