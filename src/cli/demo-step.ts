/**
 * What a demo step is (demo-steps.ts lists them): a name and a function of the demo's context.
 */
import type { Model } from '../model/model.js';

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
