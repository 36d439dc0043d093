/**
 * The units of work a queue carries — one configuration of a sweep; one model (or training
 * checkpoint) of a coupling study — and how a worker runs one. Each unit calls the very library
 * functions the local path calls (recordSweepConfig, analyzeOneModel, writeCouplingRun), so a
 * queued run writes the same bytes as a local one.
 *
 * A unit writes its result into the output folder (storage every worker must see) through
 * temporary file + rename, its completion marker last; a retried unit overwrites what an
 * interrupted attempt left.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { openModel } from '../api.js';
import type { Model } from '../model/model.js';
import { writeFileAtomic } from '../io/atomic.js';
import { analyzeOneModel, type AcrossOptions } from '../lenses/coupling/across.js';
import type { CouplingReport } from '../lenses/coupling/analyze.js';
import { writeCouplingRun } from '../report/lenses/coupling.js';
import { recordSweepConfig } from '../trace/sweep.js';
import { isComplete } from '../trace/store.js';
import type { SweepConfig, SweepPlan } from '../trace/types.js';
import { LmdynError } from '../errors.js';

export interface SweepUnit {
  kind: 'sweep';
  /** The sweep folder (absolute; the same path on every worker). */
  dir: string;
  plan: SweepPlan;
  config: SweepConfig;
}

/** The coupling options a unit carries (everything of AcrossOptions but the callbacks and scores). */
export type CouplingUnitOptions = Omit<AcrossOptions, 'log' | 'scores'>;

export interface CouplingUnit {
  kind: 'coupling';
  /** The output folder (absolute; the same path on every worker). */
  dir: string;
  /** Position of the model in the study (0-based). */
  index: number;
  /** The model as the user named it (the report's label) … */
  spec: string;
  /** … and the file or folder (or hf: id) a worker opens. */
  open: string;
  options: CouplingUnitOptions;
  /** Where the model's coupling run goes inside `dir`, or null when the study keeps none. */
  runDir: string | null;
  png: boolean;
}

export type QueueUnit = SweepUnit | CouplingUnit;

/** Where a coupling unit keeps its report until the coordinator has assembled the study. */
export const PENDING_DIR = '.lmdyn-queue';

export function couplingUnitFile(dir: string, index: number): string {
  return join(dir, PENDING_DIR, `unit-${String(index).padStart(5, '0')}.json`);
}

/** Short name of a unit for progress lines and error messages. */
export function unitLabel(unit: QueueUnit): string {
  return unit.kind === 'sweep' ? unit.config.dir : unit.spec;
}

/** Whether the unit's result is in the output folder (its completion marker is written last). */
export function isUnitDone(unit: QueueUnit): boolean {
  return unit.kind === 'sweep'
    ? isComplete(join(unit.dir, unit.config.dir))
    : existsSync(couplingUnitFile(unit.dir, unit.index));
}

/**
 * Runs units one after another in one thread. A sweep's model stays open between its units (as a
 * local sweep's worker thread keeps it); a coupling unit opens, analyses and frees its model.
 */
export class UnitRunner {
  private model: { key: string; model: Model } | null = null;

  /**
   * `maxBytes`: a sweep configuration whose recording is estimated (estimateTraceBytes) to need
   * more is refused before anything is allocated — the worker's --max-memory; the job fails with
   * the estimate, the limit and the worker's name as its reason.
   */
  constructor(private readonly maxBytes?: number) {}

  async run(unit: QueueUnit, log: (line: string) => void): Promise<void> {
    if (unit.kind === 'sweep') {
      const model = await this.sweepModel(unit.plan);
      try {
        recordSweepConfig(model, unit.plan, unit.dir, unit.config, this.maxBytes);
      } catch (err) {
        if (err instanceof LmdynError && err.code === 'bad_argument')
          throw new LmdynError(
            err.code,
            `worker ${hostname()} (pid ${process.pid}): ${err.message}`,
          );
        throw err;
      }
      return;
    }
    this.release();
    const report = await analyzeOneModel(unit.spec, () => openModel(unit.open), {
      ...unit.options,
      log,
    });
    if (unit.runDir !== null)
      await writeCouplingRun(join(unit.dir, unit.runDir), report, { png: unit.png });
    const file = couplingUnitFile(unit.dir, unit.index);
    mkdirSync(join(unit.dir, PENDING_DIR), { recursive: true });
    writeFileAtomic(file, encodeReport(report));
  }

  private async sweepModel(plan: SweepPlan): Promise<Model> {
    const key = JSON.stringify([plan.model, plan.tokenizer]);
    if (this.model?.key !== key) {
      this.release();
      const model = await openModel(
        plan.model,
        plan.tokenizer ? { tokenizer: plan.tokenizer } : {},
      );
      this.model = { key, model };
    }
    return this.model.model;
  }

  private release(): void {
    if (this.model) this.model.model.dispose();
    this.model = null;
  }
}

/**
 * A coupling report as JSON that gives back the same numbers: NaN, ±Infinity and −0 (which
 * JSON.stringify turns into null or 0) are written as {"$num": "NaN"} and so on.
 */
export function encodeReport(report: CouplingReport): string {
  return JSON.stringify(report, (_key, v: unknown) => {
    if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0)))
      return { $num: Object.is(v, -0) ? '-0' : String(v) };
    return v;
  });
}

export function readUnitReport(dir: string, index: number): CouplingReport {
  const text = readFileSync(couplingUnitFile(dir, index), 'utf8');
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === '$num') return Number((v as { $num: string }).$num);
    }
    return v;
  }) as CouplingReport;
}
