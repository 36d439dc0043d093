/** Worker thread of a sweep: records the configurations the main thread sends, one at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import { openModel } from '../api.js';
import { LmdynError } from '../errors.js';
import { recordSweepConfig } from './sweep.js';
import type { SweepConfig, SweepPlan } from './types.js';

const { plan, dir, maxBytes } = workerData as {
  plan: SweepPlan;
  dir: string;
  maxBytes?: number;
};
const port = parentPort!;

async function start(): Promise<void> {
  const model = await openModel(plan.model, plan.tokenizer ? { tokenizer: plan.tokenizer } : {});
  port.on('message', (config: SweepConfig | null) => {
    if (config === null) {
      port.close();
      return;
    }
    try {
      recordSweepConfig(model, plan, dir, config, maxBytes);
      port.postMessage({ kind: 'done', config });
    } catch (err) {
      fail(err);
    }
  });
  port.postMessage({ kind: 'ready' });
}

function fail(err: unknown): void {
  const code = err instanceof LmdynError ? err.code : 'io';
  const message = err instanceof Error ? err.message : String(err);
  port.postMessage({ kind: 'error', code, message });
}

start().catch(fail);
