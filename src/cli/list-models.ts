/**
 * `lmdyn models`: the hub models people start from, with parameter counts, resident sizes per
 * weight format, and whether this build's loader accepts each one's config.json (io/known-models).
 */
import type { Command } from 'commander';
import { knownModelRows } from '../io/known-models.js';
import { formatBytes } from '../io/resident.js';
import { addJsonFlag, printResult } from './common.js';

export function registerModels(program: Command): void {
  addJsonFlag(
    program
      .command('models')
      .description(
        'list the hub models known to work per architecture, with parameter counts and resident sizes (f32 / f16·bf16 / q8_0)',
      ),
    'the table',
  ).action((flags: { json?: boolean }) => {
    const rows = knownModelRows();
    const head = ['hub id', 'architecture', 'parameters', 'f32', 'f16/bf16', 'q8_0', 'supported'];
    const lines = rows.map((r) => [
      r.hubId,
      r.architecture,
      r.parameters >= 1e9 ? `${(r.parameters / 1e9).toFixed(2)}B` : `${(r.parameters / 1e6).toFixed(1)}M`,
      formatBytes(r.bytes.f32),
      formatBytes(r.bytes['16-bit']),
      formatBytes(r.bytes.q8_0),
      r.supported ? 'yes' : 'no',
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
    const fmt = (cells: string[]) =>
      cells.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
    const unsupported = rows.filter((r) => !r.supported).map((r) => `  ${r.hubId}: ${r.why}`);
    const text = [
      fmt(head),
      ...lines.map(fmt),
      '',
      'supported: this build’s loader accepts the model’s config.json (its architecture has float64-reference tests on random-weight models); the real weights were not run to make this table. Sizes: weights resident in memory (norms and biases stay f32). Config numbers: src/io/known-models.ts cites where each was read.',
      ...(unsupported.length ? ['', 'not yet:', ...unsupported] : []),
    ].join('\n');
    printResult(flags.json, { models: rows }, text);
  });
}
