/**
 * A decoding sweep through the queue: one job per configuration still missing from the folder.
 * The folder is the local sweep's (sweep.json by prepareSweep, each configuration by
 * recordSweepConfig on a worker), so the result is the same file for file, byte for byte.
 */
import { resolve } from 'node:path';
import { prepareSweep, sealSweep } from '../trace/sweep.js';
import type { SweepIndex, SweepPlan } from '../trace/types.js';
import { connectQueue } from './connection.js';
import { runKey, runUnitsOnQueue, type QueueRunOptions } from './coordinator.js';

export async function runSweepOnQueue(
  plan: SweepPlan,
  outDir: string,
  url: string,
  options: QueueRunOptions & { force?: boolean } = {},
): Promise<SweepIndex> {
  const conn = await connectQueue(url); // before anything is written
  const dir = resolve(outDir);
  const { index, todo } = prepareSweep(plan, dir, options.force ?? false);
  await runUnitsOnQueue(
    conn,
    runKey(dir, JSON.stringify(index)),
    todo.map((config) => ({ index: config.index, unit: { kind: 'sweep', dir, plan, config } })),
    index.configs.length,
    options,
  );
  sealSweep(dir, index); // readers accept the sweep once every configuration is committed
  return index;
}
