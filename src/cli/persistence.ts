/**
 * `lmdyn persistence`: Vietoris–Rips barcodes of a point cloud (.csv or .npy), the computation
 * behind DMET's topological persistence P (papers.md §1.4 item 4, exact: code). Same defaults
 * as ripser: H0 and H1, threshold = enclosing radius, Z/2 coefficients.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { LmdynError } from '../errors.js';
import { readNpy } from '../io/npy.js';
import { largestLifetime, ripsPersistence, type PersistenceResult } from '../stats/rips.js';
import { parseInteger, parseNumber } from './args.js';
import { cite } from '../papers.js';
import { rounded } from '../report/format.js';

interface PersistenceFlags {
  points: string;
  maxdim: number;
  threshold?: number;
  json?: boolean;
}

export interface PointCloud {
  rows: number;
  cols: number;
  /** Row-major [rows, cols]. */
  data: Float64Array | Float32Array;
}

export function registerPersistence(program: Command): void {
  program
    .command('persistence')
    .description('Vietoris–Rips persistence barcodes of a point cloud (H0, H1; as ripser)')
    .requiredOption('-p, --points <FILE>', 'points, one per row: .csv (optional header line) or .npy (2-D float32/float64)')
    .option('--maxdim <K>', 'highest homology dimension', parseInteger('--maxdim', 0, 4), 1)
    .option('--threshold <R>', 'largest edge length (default: the enclosing radius, above which nothing changes)', parseNumber('--threshold', 0, Number.MAX_VALUE))
    .option('--json', 'print JSON {"pairs":[{"dim","birth","death"}], "threshold", ...}; death null = essential')
    .action((flags: PersistenceFlags) => {
      const cloud = readPoints(flags.points);
      const result = ripsPersistence(cloud.data, cloud.rows, cloud.cols, { maxDim: flags.maxdim, threshold: flags.threshold });
      if (flags.json) {
        process.stdout.write(JSON.stringify({ pairs: result.pairs, threshold: result.threshold, maxdim: result.maxDim, points: cloud.rows, dim: cloud.cols }) + '\n');
        return;
      }
      process.stdout.write(barcodeSummary(result, cloud.cols, flags.threshold === undefined));
    });
}

/** Reads a point cloud from a .npy file or a CSV of numeric rows (commas or whitespace). */
export function readPoints(path: string): PointCloud {
  if (!existsSync(path)) throw new LmdynError('not_found', `${path}: no such file`);
  if (statSync(path).isDirectory()) throw new LmdynError('bad_argument', `${path}: is a folder, want a .csv or .npy file`);
  if (path.toLowerCase().endsWith('.npy')) {
    const m = readNpy(path);
    return { rows: m.rows, cols: m.cols, data: m.data };
  }
  return parseCsvPoints(readFileSync(path, 'utf8'), path);
}

/** Numeric rows separated by commas, semicolons or whitespace; a first line that is not numeric is a header. */
export function parseCsvPoints(text: string, name = 'csv'): PointCloud {
  const lines = text.split(/\r?\n/);
  const values: number[] = [];
  let cols = -1;
  let rows = 0;
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l].trim();
    if (line === '') continue;
    const fields = line.split(/\s*[,;]\s*|\s+/);
    const nums = fields.map((f) => (f === '' ? NaN : Number(f)));
    if (nums.some((v) => Number.isNaN(v))) {
      const header = fields.some((f) => f !== '' && Number.isNaN(Number(f)));
      if (header && rows === 0 && cols === -1) {
        cols = -2; // header seen
        continue;
      }
      const bad = fields.find((f) => f === '' || Number.isNaN(Number(f)));
      throw new LmdynError('bad_format', `${name}:${l + 1}: '${bad ?? ''}' is not a number`);
    }
    if (nums.some((v) => !Number.isFinite(v))) throw new LmdynError('bad_format', `${name}:${l + 1}: coordinates must be finite`);
    if (cols < 0) cols = nums.length;
    else if (nums.length !== cols) throw new LmdynError('bad_format', `${name}:${l + 1}: ${nums.length} values, the rows above have ${cols}`);
    for (const v of nums) values.push(v);
    rows++;
  }
  if (rows === 0) throw new LmdynError('bad_format', `${name}: no numeric rows`);
  return { rows, cols, data: Float64Array.from(values) };
}

/** A readable barcode: counts per dimension and the longest intervals. */
export function barcodeSummary(result: PersistenceResult, dim: number, defaultThreshold: boolean): string {
  const out: string[] = [];
  const t = rounded(result.threshold, 6);
  out.push(`Vietoris–Rips persistence of ${result.n} points in R^${dim}, Z/2, threshold ${t}${defaultThreshold ? ' (enclosing radius)' : ''}`);
  for (let k = 0; k <= result.maxDim; k++) {
    const pairs = result.pairs.filter((p) => p.dim === k);
    const essential = pairs.filter((p) => p.death === null).length;
    const finite = pairs.filter((p) => p.death !== null).sort((a, b) => (b.death as number) - b.birth - ((a.death as number) - a.birth));
    const longest = largestLifetime(pairs, k);
    const tag = k === 1 ? `  (= DMET P, ${cite('dmet')})` : '';
    out.push(`H${k}: ${pairs.length} interval${pairs.length === 1 ? '' : 's'} (${essential} essential), longest finite lifetime ${rounded(longest, 6)}${tag}`);
    const shown = finite.slice(0, 10);
    if (shown.length > 0) {
      out.push(`  ${'birth'.padStart(12)} ${'death'.padStart(12)} ${'lifetime'.padStart(12)}`);
      for (const p of shown) out.push(`  ${rounded(p.birth, 6).padStart(12)} ${rounded(p.death as number, 6).padStart(12)} ${rounded((p.death as number) - p.birth, 6).padStart(12)}`);
      if (finite.length > shown.length) out.push(`  … ${finite.length - shown.length} shorter (--json lists all)`);
    }
  }
  return out.join('\n') + '\n';
}
