/**
 * A queue worker's thread: runs the units the main thread hands it, one at a time, so the main
 * thread stays free to keep BullMQ's job locks alive while a unit computes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LmdynError } from '../errors.js';
import { startKernelThreads } from '../tensor/wasm/threads.js';
import { UnitRunner, type QueueUnit } from './units.js';

export type ToThread = { id: number; unit: QueueUnit };
export type FromThread =
  | { kind: 'ready' }
  | { kind: 'log'; line: string }
  | { kind: 'done'; id: number }
  | { kind: 'error'; id: number; code: string | null; message: string };

const { kernelThreads, maxBytes } = workerData as {
  kernelThreads: boolean;
  maxBytes: number | undefined;
};
const port = parentPort!;
const runner = new UnitRunner(maxBytes);

async function start(): Promise<void> {
  // A worker with a single thread lends the other cores to its matmuls, as a local run does.
  if (kernelThreads) await startKernelThreads();
  port.on('message', (msg: ToThread) => {
    runner
      .run(msg.unit, (line) => port.postMessage({ kind: 'log', line } satisfies FromThread))
      .then(
        () => port.postMessage({ kind: 'done', id: msg.id } satisfies FromThread),
        (err: unknown) =>
          port.postMessage({
            kind: 'error',
            id: msg.id,
            code: err instanceof LmdynError ? err.code : null,
            message: err instanceof Error ? err.message : String(err),
          } satisfies FromThread),
      );
  });
  port.postMessage({ kind: 'ready' } satisfies FromThread);
}

void start();
