/**
 * lmdyn as a library. Open a model, generate, record traces, run sweeps, and apply the lenses
 * (papers.md): each lens has an analyze function returning a JSON-ready report with every
 * metric tagged exact or proposed, and a writer that puts it on disk with its figures.
 */
export * from './errors.js';
export * from './model/types.js';
export { VERSION } from './version.js';

// Models, generation, hooks
export { openModel, generateText } from './api.js';
export { fromLoaded, encodePrompt, stopIds } from './model/model.js';
export {
  runWithCache,
  runWithHooks,
  toHooks,
  ActivationCache,
  Tensor,
  patchActivation,
  residPatchingGrid,
  steeringHook,
  unembed,
  applyFinalNorm,
  logitLens,
  toTokens,
  toStrTokens,
  toString,
  actName,
} from './hooked.js';
export type { FwdHook, FwdHookFn, HookPoint, ModelInput, RunOptions, PatchOptions, LogitLensLayer } from './hooked.js';
export type { GenerateTextOptions, GenerateTextResult } from './api.js';
export type { Model } from './model/model.js';
export { loadModel, loadTokenizer, detectFormat } from './io/load.js';
export type { LoadOptions } from './io/load.js';
export { convertToGguf, writeGgufModel } from './io/gguf-write.js';
export type { ConvertOptions, GgufWriteOptions, GgufWriteResult } from './io/gguf-write.js';
export { BLOCK_FORMATS, blockFormatNamed, dequantize, quantize } from './io/gguf-quants.js';
export type { GgmlBlockFormat, GgmlTypeName } from './io/gguf-quants.js';
export { weightsSha256, fileSha256 } from './io/fingerprint.js';
export { Transformer } from './model/forward.js';
export type { SamplingConfig } from './decode/sampling.js';
export type { Tokenizer } from './tokenizer/types.js';
export { applyChatTemplate, loadChatTemplate, renderChat } from './tokenizer/chat.js';
export type { ChatMessage, ChatTemplate, ChatOptions } from './tokenizer/chat.js';

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
export { writeCouplingRun, collectJacobians } from './report/lenses/coupling.js';
export { analyzeCouplingAcrossModels } from './lenses/coupling/across.js';
export { writeAcrossModels } from './report/lenses/coupling.js';
export { analyzeCouplingOverTraining, curveShape } from './lenses/coupling/training.js';
export { listCheckpoints, readTrainingRun } from './io/training-run.js';
export { writeTrainingDynamics } from './report/lenses/coupling.js';
export type { TrainingDynamicsReport, CurveShape } from './lenses/coupling/training.js';
export { randomTwin } from './model/init.js';

// Lens: DMET (papers.md §1)
export { analyzeDmet, DEFAULT_HOOK as DMET_DEFAULT_HOOK } from './lenses/dmet/analyze.js';
export type { DmetOptions, DmetReport, DmetResult, DmetSource } from './lenses/dmet/analyze.js';
export { openDmetSource, writeDmetRun } from './report/lenses/dmet.js';
export { sequenceDynamics, stateContinuity } from './lenses/dmet/dynamics.js';
export { loadDictionary } from './io/dictionary.js';
export {
  textQuality,
  spellingScore,
  distinctN,
  grammarScore,
  perplexity,
  coherence,
} from './lenses/dmet/text.js';

// Lens: SDE (papers.md §2)
export { analyzeSde } from './lenses/sde/analyze.js';
export type { SdeOptions, SdeReport } from './lenses/sde/analyze.js';
export { writeSdeRun, readSdeModel } from './report/lenses/sde.js';
export { fitSde, evaluateSde } from './lenses/sde/model.js';
export type { SdeFit, FitOptions as SdeFitOptions } from './lenses/sde/model.js';
export { eulerMaruyama, networkSde } from './lenses/sde/simulate.js';
export { kramersMoyal } from './lenses/sde/km.js';
export { simulateOu, simulateDoubleWell } from './lenses/sde/synthetic.js';

// Lens: simplex (papers.md §4)
export { analyzeSimplex, analyzeSweepLoops } from './lenses/simplex/analyze.js';
export type {
  SimplexOptions,
  SimplexReport,
  SimplexSweepReport,
} from './lenses/simplex/analyze.js';
export { writeSimplexRun, writeSweepLoops } from './report/lenses/simplex.js';
export { integrateReplicator, closedFormLogp } from './lenses/simplex/flows.js';
export { detectLoop, loopSummary } from './lenses/simplex/loops.js';

// Lens: gravity (papers.md §3)
export { analyzeGravity } from './lenses/gravity/analyze.js';
export type { GravityOptions, GravityReport } from './lenses/gravity/analyze.js';
export { writeGravityRun } from './report/lenses/gravity.js';
export { potential, informationMass, fisher, jensenShannon } from './lenses/gravity/field.js';

// Statistics
export {
  ripsPersistence,
  ripsPersistenceFromDistances,
  bettiCurve,
  largestLifetime,
  enclosingRadius,
} from './stats/rips.js';
export type { PersistencePair, PersistenceResult, RipsOptions } from './stats/rips.js';
export { kmeans, silhouetteScore } from './stats/cluster.js';
export { benjaminiHochberg } from './stats/multiple.js';
export { ols, randomInterceptModel } from './stats/regression.js';
export { readNpy, encodeNpy } from './io/npy.js';

// Reports, dashboard, training
export { writeReport } from './report/report.js';
export type { ReportOptions } from './report/report.js';
export { startServer } from './server/server.js';
export type { ServeOptions, RunningServer } from './server/server.js';
export { train } from './train/loop.js';
export type { TrainOptions, TrainResult } from './train/loop.js';
export { distillCorpus, readCorpus } from './train/data.js';
export { resolveHubModel } from './io/hub.js';
export { castWeightsH16, quantizeWeightsQ80 } from './model/quantize.js';
export {
  f32ToBf16Bits,
  f32ToF16Bits,
  newH16Matrix,
  widenH16,
  type H16Format,
} from './tensor/half.js';
export {
  chooseWeights,
  residentSizes,
  WEIGHTS_CHOICES,
  type ResidentSizes,
  type WeightsChoice,
  type WeightsDecision,
} from './io/resident.js';
export { planWeights } from './io/load.js';
export {
  KNOWN_MODELS,
  knownModelCounts,
  knownModelRows,
  type KnownModel,
  type KnownModelRow,
} from './io/known-models.js';

// Numerics used by the lenses
export { createRng } from './tensor/rng.js';
export type { Rng } from './tensor/rng.js';
export { svd, topSvd, symEig, pca, singularValues } from './tensor/linalg.js';
export { startKernelThreads, stopKernelThreads } from './tensor/wasm/threads.js';
export { renderSvg, svgToPng, writePlot } from './report/plot.js';
export type { PlotSpec } from './report/plot.js';
