/**
 * The demo is a list of steps; each capability adds one (in `demo-<name>.ts`) and a line to
 * DEMO_STEPS. A step gets the model, the demo's folders and two printers, and returns nothing:
 * it calls `record(title, body)` for each section of the report it wants.
 */
import type { DemoStep } from './demo-step.js';
import { couplingDemo } from './demo-coupling.js';
import { gravityDemo } from './demo-gravity.js';
import { simplexDemo } from './demo-simplex.js';
import { sdeDemo } from './demo-sde.js';
import { dmetDemo } from './demo-dmet.js';
import { trainDemo } from './demo-train.js';

export const DEMO_STEPS: readonly DemoStep[] = [
  dmetDemo,
  gravityDemo,
  couplingDemo,
  simplexDemo,
  sdeDemo,
  trainDemo,
];
