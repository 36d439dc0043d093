/**
 * A training worker thread (engine.ts): owns a TrainGraph in its own wasm arena and computes the
 * micro-batches it is sent, reading parameters and the batch from shared memory and writing
 * each micro-batch's gradient into its slot.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runJobs, type Job, type WorkerSetup } from './engine.js';
import { paramLayout, paramViews, TrainGraph } from './model.js';
import { allocVec } from './tensor.js';

const setup = workerData as WorkerSetup;
const total = paramLayout(setup.shape).total;
const graph = new TrainGraph(setup.shape, 'f32', setup.microBatch, setup.T);
const params = allocVec('f32', total) as Float32Array;
const scratch = allocVec('f32', total) as Float32Array;
const pv = paramViews(params, setup.shape);
const shared = {
  params: new Float32Array(setup.params),
  tokens: new Int32Array(setup.tokens),
  targets: new Int32Array(setup.targets),
  slots: new Float32Array(setup.slots),
};

parentPort?.on('message', (msg: { jobs: Job[]; scale: number; grad: boolean }) => {
  params.set(shared.params);
  const losses = new Float64Array(shared.slots.length / total);
  runJobs(
    graph,
    pv,
    scratch,
    shared.tokens,
    shared.targets,
    msg.jobs,
    msg.scale,
    msg.grad ? shared.slots : null,
    losses,
  );
  parentPort?.postMessage({ losses });
});
