/**
 * lmdyn as a library. Open a model, generate, record traces, run sweeps, and apply the lenses
 * (papers.md): each lens has an analyze function returning a JSON-ready report with every
 * metric tagged exact or proposed, and a writer that puts it on disk with its figures.
 */
export * from './errors.js';
export * from './model/types.js';
export { VERSION } from './version.js';

// Models, generation, hooks
export {
  openModel,
  fromLoaded,
  encodePrompt,
  stopIds,
  generateText,
  runWithCache,
  ActivationCache,
} from './api.js';
export type { Model, GenerateTextOptions, GenerateTextResult } from './api.js';
export { loadModel, loadTokenizer, detectFormat } from './io/load.js';
export type { LoadOptions } from './io/load.js';
export { Transformer } from './model/forward.js';
export type { SamplingConfig } from './decode/sampling.js';
export type { Tokenizer } from './tokenizer/types.js';

// Traces and sweeps
export { recordTrace, DEFAULT_HOOKS, resolveHooks } from './trace/record.js';
export type { RecordOptions } from './trace/record.js';
export { writeTrace, readTrace } from './trace/io.js';
export { runSweep, expandGrid, readSweepIndex } from './trace/sweep.js';
export type { Trace, TraceSample, TraceMeta, LogitsMode } from './trace/types.js';
export type { SweepGrid, SweepPlan, SweepConfig, SweepIndex } from './trace/sweep.js';

// Files users' notebooks read
export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export { readParquet, writeParquet } from './io/parquet.js';

// Lens: coupling (papers.md §5)
export { analyzeCoupling } from './lenses/coupling/analyze.js';
export type { CouplingOptions, CouplingReport } from './lenses/coupling/analyze.js';
export { writeCouplingRun, collectJacobians } from './lenses/coupling/io.js';
export { analyzeCouplingAcrossModels, writeAcrossModels } from './lenses/coupling/across.js';
export { randomTwin } from './lenses/coupling/twin.js';

// Numerics used by the lenses
export { createRng } from './tensor/rng.js';
export type { Rng } from './tensor/rng.js';
export { svd, topSvd, symEig, pca, singularValues } from './tensor/linalg.js';
export { startKernelThreads, stopKernelThreads } from './tensor/wasm/threads.js';
export { renderSvg, svgToPng, writePlot } from './report/plot.js';
export type { PlotSpec } from './report/plot.js';
