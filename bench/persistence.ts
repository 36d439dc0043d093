/**
 * Speed of Vietoris–Rips persistence (H0 + H1, threshold = enclosing radius) against Debian's
 * ripser 1.2.1 (C++), on 500 seeded standard-normal points in R² and in R⁶⁴. Ours is timed in
 * process from the points (distance matrix included); ripser is spawned on the same points
 * written to a temporary CSV file and timed by wall clock (its process start, ~1 ms, is
 * included and printed separately). Each side: median of 5 runs after one warm-up. CPU seconds
 * (ours: process.cpuUsage; ripser: /usr/bin/time) are printed too, being steadier under load.
 * Goal (issue 5): within 2× of ripser.
 *
 * Run alone: `node dist/bench/persistence.js` (after `npx tsc -p .`), or call benchPersistence().
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ripsPersistence } from '../src/stats/rips.js';
import { createRng } from '../src/tensor/rng.js';

const RIPSER = '/usr/bin/ripser';
const TIME = '/usr/bin/time'; // for ripser's CPU seconds: steadier than wall time on a loaded machine

export interface PersistenceBenchRow {
  points: number;
  dim: number;
  seed: number;
  h1Intervals: number;
  /** Median seconds of ripsPersistence after a warm-up run. */
  oursSeconds: number;
  /** The first (cold, unoptimised JIT) run. */
  oursFirstSeconds: number;
  /** Median wall seconds of `ripser --format point-cloud --dim 1 FILE`; null if not installed. */
  ripserSeconds: number | null;
  /** ours / ripser; below 2 meets the goal. */
  ratio: number | null;
  /** Median CPU seconds (user + system) of ours and of ripser (via /usr/bin/time), and their ratio. */
  oursCpuSeconds: number;
  ripserCpuSeconds: number | null;
  cpuRatio: number | null;
}

export function benchPersistence(
  cases: [number, number][] = [
    [500, 2],
    [500, 64],
  ],
  runs = 5,
): PersistenceBenchRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-bench-rips-'));
  const rows: PersistenceBenchRow[] = [];
  try {
    for (const [n, dim] of cases) {
      const seed = 42;
      const rng = createRng(seed);
      const points = new Float64Array(n * dim);
      for (let i = 0; i < points.length; i++) points[i] = rng.normal();
      const file = join(dir, `points-${n}x${dim}.csv`);
      let csv = '';
      // 17 significant digits: ripser reads (and rounds to float32) the very same numbers
      for (let i = 0; i < n; i++)
        csv +=
          Array.from(points.subarray(i * dim, (i + 1) * dim), (v) => v.toPrecision(17)).join(',') +
          '\n';
      writeFileSync(file, csv);

      let start = performance.now();
      const result = ripsPersistence(points, n, dim, { maxDim: 1 });
      const oursFirstSeconds = (performance.now() - start) / 1000;
      const ours: number[] = [];
      const oursCpu: number[] = [];
      for (let r = 0; r < runs; r++) {
        start = performance.now();
        const cpu = process.cpuUsage();
        ripsPersistence(points, n, dim, { maxDim: 1 });
        const used = process.cpuUsage(cpu);
        ours.push((performance.now() - start) / 1000);
        oursCpu.push((used.user + used.system) / 1e6);
      }
      let ripserSeconds: number | null = null;
      let ripserCpuSeconds: number | null = null;
      if (existsSync(RIPSER)) {
        const theirs: number[] = [];
        const theirsCpu: number[] = [];
        const timed = existsSync(TIME);
        for (let r = 0; r <= runs; r++) {
          const args = ['--format', 'point-cloud', '--dim', '1', file];
          start = performance.now();
          const run = timed
            ? spawnSync(TIME, ['-f', 'cpu %U %S', RIPSER, ...args], { encoding: 'utf8' })
            : spawnSync(RIPSER, args, { encoding: 'utf8' });
          const t = (performance.now() - start) / 1000;
          if (run.status !== 0) throw new Error(`ripser failed: ${run.stderr}`);
          if (r === 0) continue;
          theirs.push(t);
          const cpu = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(run.stderr);
          if (cpu) theirsCpu.push(Number(cpu[1]) + Number(cpu[2]));
        }
        ripserSeconds = median(theirs);
        if (theirsCpu.length > 0) ripserCpuSeconds = median(theirsCpu);
      }
      const oursCpuSeconds = median(oursCpu);
      const oursSeconds = median(ours);
      rows.push({
        points: n,
        dim,
        seed,
        h1Intervals: result.pairs.filter((p) => p.dim === 1).length,
        oursSeconds,
        oursFirstSeconds,
        ripserSeconds,
        ratio: ripserSeconds === null ? null : oursSeconds / ripserSeconds,
        oursCpuSeconds,
        ripserCpuSeconds,
        cpuRatio: ripserCpuSeconds === null ? null : oursCpuSeconds / ripserCpuSeconds,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Wall seconds of spawning ripser on 3 points: the process overhead inside ripserSeconds. */
export function ripserStartupSeconds(): number | null {
  if (!existsSync(RIPSER)) return null;
  const t: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = performance.now();
    spawnSync(RIPSER, ['--format', 'point-cloud', '--dim', '1'], { input: '0,0\n1,0\n0,1\n' });
    t.push((performance.now() - start) / 1000);
  }
  return median(t);
}

export function printPersistenceTable(
  rows: readonly PersistenceBenchRow[],
  startup: number | null,
): void {
  const head = [
    'points',
    'dim',
    'H1',
    'ours s',
    'ours 1st s',
    'ripser s',
    'ours/ripser',
    'ours cpu s',
    'ripser cpu s',
    'cpu ratio',
  ];
  const cells = rows.map((r) => [
    String(r.points),
    String(r.dim),
    String(r.h1Intervals),
    r.oursSeconds.toFixed(3),
    r.oursFirstSeconds.toFixed(3),
    r.ripserSeconds === null ? 'n/a' : r.ripserSeconds.toFixed(3),
    r.ratio === null ? 'n/a' : r.ratio.toFixed(2),
    r.oursCpuSeconds.toFixed(3),
    r.ripserCpuSeconds === null ? 'n/a' : r.ripserCpuSeconds.toFixed(3),
    r.cpuRatio === null ? 'n/a' : r.cpuRatio.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padStart(widths[i])).join('  ');
  console.log(
    '\npersistence: Vietoris–Rips H0+H1 at the enclosing radius, standard-normal points (seed 42), median of 5',
  );
  console.log(line(head));
  for (const c of cells) console.log(line(c));
  if (startup !== null)
    console.log(
      `(ripser process start on 3 points: ${startup.toFixed(3)} s, included in its times)`,
    );
  else console.log(`(${RIPSER} not installed: no ratio)`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  printPersistenceTable(benchPersistence(), ripserStartupSeconds());
}
