/**
 * Report blocks for a coupling run (lenses/coupling, papers.md §5): the headline numbers of the
 * trained weights and the random twin side by side with their tags, the prompts, and the
 * figures (the folder's NAME.vl.json, or the lens's own specs when the folder has none).
 */
import type { CouplingReport, WeightsReport } from '../lenses/coupling/analyze.js';
import { couplingPlots } from './lenses/coupling-plots.js';
import type { TrainingDynamicsReport } from '../lenses/coupling/training.js';
import {
  folderPlots,
  provenanceBlock,
  type Block,
  type Cell,
  type SectionRenderer,
} from './section.js';

export const renderCoupling: SectionRenderer = (result) => {
  const report = result.json as unknown as CouplingReport;
  if (!report.trained?.model_coupling) return [provenanceBlock(result), ...folderPlots(result)];
  const weights: WeightsReport[] = report.random_twin
    ? [report.trained, report.random_twin]
    : [report.trained];
  const row = (name: string, tag: string, get: (w: WeightsReport) => Cell, note?: string) => ({
    name,
    tag,
    values: weights.map((w) => {
      try {
        return get(w);
      } catch {
        return null;
      }
    }),
    ...(note ? { note } : {}),
  });
  const t = report.trained;
  const rows = [
    ...t.model_coupling.by_k.map((e, i) =>
      row(
        `model coupling m_K, K = ${e.k}`,
        t.model_coupling.tag,
        (w) => w.model_coupling.by_k[i].value,
        t.model_coupling.definition,
      ),
    ),
    ...t.model_coupling.by_k.map((e, i) =>
      row(
        `log10 model coupling, K = ${e.k}`,
        t.model_coupling.tag,
        (w) => w.model_coupling.by_k[i].log10,
      ),
    ),
    ...t.interactions.depth.by_k.map((e, i) =>
      row(
        `depth interaction, K = ${e.k}`,
        t.interactions.tag,
        (w) => w.interactions.depth.by_k[i].mean,
        t.interactions.depth.definition,
      ),
    ),
    row('line-shape score (mean)', t.lss.tag, (w) => w.lss.mean, t.lss.source),
    row('growth rate e^b per layer', t.growth.tag, (w) => w.growth.rate, t.growth.source),
    row('growth fit R² (mean)', t.growth.tag, (w) => w.growth.r2_mean),
    row(
      'norm growth factor per layer',
      t.norm_growth.tag,
      (w) => w.norm_growth.factor,
      t.norm_growth.source,
    ),
    row('norm growth R²', t.norm_growth.tag, (w) => w.norm_growth.r2),
    row(
      'linearisation fidelity (mean)',
      t.fidelity.tag,
      (w) => w.fidelity.mean,
      t.fidelity.compared_to,
    ),
    row(
      '1/s₁ against depth: slope',
      t.top_singular_value.tag,
      (w) => w.top_singular_value.slope,
      t.top_singular_value.source,
    ),
    row('1/s₁ against depth: R²', t.top_singular_value.tag, (w) => w.top_singular_value.r2),
  ];
  const blocks: Block[] = [
    provenanceBlock(result),
    { type: 'metrics', title: 'Headline numbers', columns: weights.map((w) => w.weights), rows },
    {
      type: 'table',
      title: `${report.prompts.length} prompts; blocks ${report.blocks.join(', ')}`,
      head: ['prompt', 'tokens', 'positions analysed', 'text'],
      rows: report.prompts.map((p, i) => [
        i + 1,
        p.prompt_ids.length,
        p.positions.join(' '),
        p.text,
      ]),
    },
  ];
  const figures = folderPlots(result);
  if (figures.some((b) => b.type === 'plot')) blocks.push(...figures);
  else
    blocks.push(
      ...couplingPlots(report).map(({ name, spec }) => ({ type: 'plot' as const, name, spec })),
    );
  return blocks;
};

/** Coupling over a training run's checkpoints (lenses/coupling/training.ts): rows, curve shapes, figure. */
export const renderCouplingTraining: SectionRenderer = (result) => {
  const report = result.json as unknown as TrainingDynamicsReport;
  if (!Array.isArray(report.rows)) return [provenanceBlock(result), ...folderPlots(result)];
  const pct = (v: number | null): Cell => (v === null ? null : `${(100 * v).toFixed(0)}%`);
  return [
    provenanceBlock(result),
    {
      type: 'table',
      title: `${report.rows.length} checkpoints of ${report.run} (K = ${report.headline_k}; m_K lower = more coupled; proposed)`,
      head: ['step', 'val loss', 'coupling m_K', 'LSS', 'growth rate', 'growth R²', 'fidelity'],
      rows: report.rows.map((r) => [
        r.step,
        r.val_loss,
        r.coupling,
        r.lss_mean,
        r.growth_rate,
        r.growth_r2,
        r.fidelity_mean,
      ]),
    },
    {
      type: 'table',
      title: `How each curve moves (proposed): ${report.definitions.reach}`,
      head: [
        'quantity',
        'step 0',
        'last',
        'peak',
        'peak at',
        'peak kept',
        '50% of the net change by',
        '90% by',
      ],
      rows: report.shapes.map((s) => [
        s.quantity,
        s.initial,
        s.final,
        s.peak,
        pct(s.peak_at),
        pct(s.peak_retained),
        pct(s.reach_50),
        pct(s.reach_90),
      ]),
    },
    ...folderPlots(result),
  ];
};
