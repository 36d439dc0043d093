/**
 * Hand-written report renderers, by result kind (the `lens` field of a lens report, or 'trace' /
 * 'sweep'). A kind that is not listed gets the generic blocks (section.ts: provenance, every
 * tagged metric, the folder's figures), so a new lens shows up in reports and in the dashboard
 * without touching this file. A lens that wants more adds one import and one entry here; the
 * renderer returns blocks (section.ts), never HTML.
 */
import { renderCoupling, renderCouplingTraining } from './render-coupling.js';
import { renderSweep, renderTrace } from './render-trace.js';
import type { SectionRenderer } from './section.js';
import { cite } from '../papers.js';

export const REPORT_RENDERERS: Readonly<Record<string, SectionRenderer>> = {
  trace: renderTrace,
  sweep: renderSweep,
  coupling: renderCoupling,
  'coupling-training': renderCouplingTraining,
};

/** How each kind is titled in the report and the dashboard (papers.md sections). */
export const KIND_TITLES: Readonly<Record<string, string>> = {
  trace: 'Trace',
  sweep: 'Decoding sweep',
  dmet: `Decoding dynamics (DMET, ${cite('dmet')})`,
  sde: `Stochastic dynamics (SDE, ${cite('sde')})`,
  gravity: `Information gravity (${cite('gravity')})`,
  simplex: `Simplex flows (${cite('simplex')})`,
  coupling: `Coupling (${cite('coupling')})`,
  'coupling-models': `Coupling across models (${cite('coupling')})`,
  'coupling-training': `Coupling over training (${cite('coupling')})`,
  training: 'Training run (lmdyn train)',
  figures: 'Figures',
};
