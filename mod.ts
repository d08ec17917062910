/**
 * Sparrow: a sparsity-aware compiler for transformer models.
 *
 * The public API. Each export is documented where it is declared; this module gathers them.
 *
 * The front door is {@link compile}: a model in (a `.sir` file, a Hugging Face folder, an ONNX
 * file or a module in memory), a pipeline of passes run over it, and a compiled artifact out, in
 * memory; {@link writeArtifact} writes it, {@link loadCompiled} runs it.
 *
 * ```ts
 * import { compile, loadCompiled } from "./mod.ts";
 * const result = await compile("../shared/models/sst2-bert-mini", {
 *   seq: 64,
 *   pipeline: "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4},canonicalize,cse,fuse,dce",
 * });
 * const model = await loadCompiled(result.artifact!, { threads: 2 });
 * ```
 *
 * @module
 */

// The compile session: every entry point calls it.
export {
  compile,
  CompileError,
  type CompileOptions,
  type CompileResult,
  DEFAULT_PIPELINE,
  passRegistry,
  pipelineOf,
  tuningLogTemp,
} from "./driver/compile.ts";
export {
  type CompileInput,
  InputError as ModelInputError,
  type InputFiles,
  inputFiles,
  type InputKind,
  inputKind,
  type InputOptions,
  type LoadedInput,
  loadInput,
  type ModuleInput,
} from "./driver/input.ts";
export { writeArtifact, type WriteArtifactOptions, writeModule } from "./driver/output.ts";
export { CalibrationError, declaredReads, prepareSentences } from "./driver/calibration.ts";
export {
  advise,
  type AdviseOptions,
  type AdvisePlan,
  type AdviseResult,
  type AppliedWeight,
  applyPlanPass,
  artifactAccuracy,
  beyondFront,
  type CalibrationOptions,
  type Candidate,
  candidateName,
  type EvalRow,
  lagrangianPath,
  type MeasuredPoint,
  paretoIndices,
  planFor,
  planMap,
  planRules,
  type Probe,
  readEvalRows,
  type RuleEntry,
  searchPath,
  sensitivityPass,
  type TargetWeight,
  timeInterleaved,
  uniformDir,
  type WeightOptions,
  type WeightSensitivity,
} from "./driver/advise.ts";

// The textual IR: parse, print, verify.
export { parse, type ParseOptions, type ParseResult } from "./ir/parse.ts";
export { formatOp, print } from "./ir/printer.ts";
export {
  bsrArrays,
  MAX_ELEMENTS,
  typeProblem,
  verify,
  type VerifyOptions,
  type WeightEntry,
} from "./ir/verifier.ts";
export {
  type Diagnostic,
  DiagnosticError,
  didYouMean,
  formatDiagnostic,
  formatDiagnostics,
} from "./ir/diagnostics.ts";
export { loadModule, type LoadResult, loadWeights, weightsPath } from "./ir/load.ts";

// The in-memory IR and the module builder.
export {
  type Comments,
  Func,
  type Loc,
  Module,
  Op,
  quoteName,
  Value,
  type ValueKind,
  Weight,
} from "./ir/module.ts";
export {
  FuncBuilder,
  type ModuleAttrs,
  ModuleBuilder,
  type ModuleOptions,
  type OpOptions,
} from "./ir/builder.ts";
export {
  type BsrEncoding,
  type DType,
  DTYPES,
  formatType,
  isDType,
  isFloat,
  numel,
  sameType,
  type TensorType,
  tensorType,
} from "./ir/types.ts";
export {
  type Attr,
  type AttrJs,
  AttrReader,
  type AttrSpec,
  type AttrType,
  type DenseLiteral,
  formatAttr,
} from "./ir/attrs.ts";

// The op registry.
export { type OpDef, type OperandSpec, OpError, OpRegistry } from "./ir/registry.ts";
export { builtinOps, builtinRegistry } from "./ir/ops/index.ts";
export { broadcastShapes, check, normalizeAxis } from "./ir/shape.ts";

// The reference interpreter and its tensors and weights.
export { interpret, InterpretError, type InterpretOptions } from "./ir/interpreter.ts";
export { BsrTensor, Tensor, type TensorData } from "./ir/tensor.ts";
export {
  memoryStore,
  safetensorsStore,
  type WeightStore,
  weightTensors,
  writeWeights,
} from "./ir/weights.ts";
export {
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  type SafetensorsDType,
  SafetensorsError,
  SafetensorsFile,
  type SafetensorsHeader,
  type TensorInfo,
  type TensorToWrite,
  writeSafetensors,
} from "./ir/safetensors.ts";

// Autodiff: reverse-mode gradients as a transformation of the IR (docs/autodiff.md).
export {
  grad,
  type GradEntry,
  GradError,
  type GradInfo,
  type GradOptions,
  type GradValues,
  runGrad,
} from "./ir/autodiff.ts";
export {
  type CrossEntropyOptions,
  type DistillationOptions,
  type HiddenDistillation,
  withCrossEntropyLoss,
  withDistillationLoss,
} from "./ir/loss.ts";
export { type ParamsInfo, weightsAsParams, type WeightsAsParamsOptions } from "./ir/params.ts";
export type { GradEmitter, GradRule } from "./ir/registry.ts";
export { gradPass } from "./passes/grad.ts";

// Passes: writing them, composing pipelines, running them, plugins.
export {
  type Analysis,
  type AnyPass,
  definePass,
  type OptionTypeValue,
  type PassContext,
  type PassDef,
  PassFailure,
  type PassFilter,
  type PassInputs,
  type PassOptions,
  type PassOptionSpec,
  type PassOptionType,
  type PassOptionValue,
  type PassResult,
  type PassWeights,
  type SentenceRequest,
  type Sentences,
} from "./passes/pass.ts";
export { type Pattern, rewrite, type RewriteOptions, Rewriter } from "./passes/rewrite.ts";
export { passProblem, PassRegistry } from "./passes/registry.ts";
export {
  entryOptions,
  formatOptionRange,
  formatOptionValue,
  type OptionValue,
  parsePipeline,
  type Pipeline,
  type PipelineEntry,
  PipelineError,
  printPipeline,
} from "./passes/pipeline.ts";
export {
  type Instrument,
  type InstrumentWeights,
  PassError,
  type PassRun,
  type PassStatistic,
  type PipelineResult,
  type RunOptions,
  runPipeline,
} from "./passes/manager.ts";
export {
  dumpDirInstrument,
  opCount,
  printIrInstrument,
  type PrintIrOptions,
  REPRODUCER_PIPELINE,
  REPRODUCER_PLUGIN,
  ReproducerInstrument,
  type ReproducerOptions,
  TimingInstrument,
  type TimingRow,
} from "./passes/instruments.ts";
export { loadPlugin, PluginError } from "./passes/plugin.ts";
export { builtinPasses, createPassRegistry } from "./passes/index.ts";
export { cloneModule } from "./ir/clone.ts";
export { bucketOf, type ShapeBucket, SpecializeError, specializeShapes } from "./ir/specialize.ts";
export { createOp, NameScope } from "./ir/builder.ts";
export { OverlayStore } from "./ir/weights.ts";
export {
  formatPatternReportJson,
  formatPatternTable,
  type PatternGroup,
  type PatternReport,
  patternReport,
  type WeightPatterns,
  type WeightSource,
} from "./passes/pattern_report.ts";
export { seededInputs, seededWeights } from "./ir/inputs.ts";
export { Random } from "./ir/random.ts";
export { writeFileAtomic } from "./ir/atomic_write.ts";

// Frontends: synthetic BERTs, Hugging Face checkpoints, ONNX export.
export {
  BERT_PRESET_NAMES,
  BERT_PRESETS,
  type BertBuildOptions,
  type BertConfig,
  bertConfig,
  type BertHead,
  bertModelName,
  type BertPresetName,
  buildBertModule,
  checkBertConfig,
  isBertPreset,
  parseSyntheticSpec,
  SYNTHETIC_PREFIX,
  syntheticBertWeights,
  writeSyntheticBert,
  type WrittenModel,
} from "./frontend/synthetic_bert.ts";
export {
  HF_ARCHITECTURES,
  type HfArchitecture,
  HfImportError,
  type HfImportOptions,
  type HfImportResult,
  importHfBert,
} from "./frontend/hf.ts";
export { exportOnnx, type ExportOptions, type OnnxExport, OnnxExportError } from "./frontend/onnx/export.ts";
export {
  importOnnx,
  type OnnxConversion,
  OnnxImportError,
  type OnnxImportOptions,
  type OnnxImportResult,
} from "./frontend/onnx/import.ts";

// Evaluation: the BERT tokenizer and SST-2.
export { type BertTokenizer, loadTokenizer, TokenizerError } from "./frontend/tokenizer.ts";
export {
  EvalError,
  type EvalModel,
  type EvalResult,
  type EvalRunner,
  evaluateSst2,
  type FittedIds,
  fitToLength,
  loadEvalModel,
  type LoadEvalOptions,
  parseSst2Tsv,
  readSst2Tsv,
  type Sst2Row,
} from "./frontend/sst2.ts";

// Codegen and the runtime.
export { CodegenError, type SparseSchedule } from "./codegen/lower/context.ts";
export {
  type Compiled,
  compileModule,
  type CompileOptions as CodegenOptions,
  type CompileReport,
  type KernelInfo,
} from "./codegen/compile.ts";
export { emitKernels } from "./codegen/artifact.ts";
export { formatReport } from "./codegen/report.ts";
export {
  type ArtifactData,
  type ArtifactReader,
  CompiledModel,
  denoHost,
  type InputData,
  loadCompiled,
  type LoadOptions,
  type RuntimeHost,
  type SizeCheck,
  type StepProfile,
  type WorkerHandle,
} from "./runtime/compiled.ts";
export {
  ArtifactError,
  InputError,
  type Plan,
  type PlanBucket,
  type PlanDType,
  type PlanStep,
  type PlanTensor,
} from "./runtime/plan.ts";
export { folderReader } from "./runtime/folder.ts";
export {
  type Classification,
  type ClassifyOptions,
  type ShapeOf,
  TEXT_FILES,
  type TextFiles,
  type TextModel,
} from "./runtime/classify.ts";
export { bertTokenizer } from "./runtime/tokenizer.ts";
export { type Manifest, type ManifestEntry } from "./runtime/manifest.ts";
export { type WorkerInit } from "./runtime/worker.ts";
export { emptyLog, readTuningLog, type TuningEntry, type TuningLog } from "./codegen/tuning_log.ts";

// Training: AdamW, sparsity objectives (masked fine-tuning, group lasso, gradual pruning), SST-2.
export { AdamW, type AdamWOptions, decays, warmupLinearLr } from "./train/adamw.ts";
export {
  applyMask,
  type Block as BlockShape,
  blockNorms,
  type CubicSchedule,
  cubicSparsity,
  groupLassoPenalty,
  isPruningStep,
  masksFromZeros,
  type Matrix as PrunableMatrix,
  parseBlock,
  proxGroupLasso,
  prunableWeights,
  pruneBlocks,
  zeroFraction,
} from "./train/sparsity.ts";
export {
  type Batch,
  Batches,
  encodeRows,
  type Example,
  makeBatch,
  readExamples,
  shuffled,
} from "./train/data.ts";
export { CheckpointError, writeHfCheckpoint, type WrittenCheckpoint } from "./train/checkpoint.ts";
export {
  type EvalPoint,
  gmpSchedule,
  type LossAndGrads,
  type Objective,
  prunableSparsity,
  type StepReport,
  train,
  type TrainOptions,
  type TrainResult,
} from "./train/trainer.ts";
export {
  type BertGradOptions,
  bertHiddenStates,
  bertLossAndGrads,
  type Distillation,
  evaluateAccuracy,
  interpretedTeacher,
  loadBert,
  predict as predictBert,
  type Teacher,
  type TeacherOptions,
  type TeacherOutput,
  teacherOutput,
  type TrainableBert,
  trainedWeights,
  withHiddenOutputs,
} from "./train/bert.ts";
export {
  compiledBertLossAndGrads,
  type CompiledGradOptions,
  type CompiledLossAndGrads,
  type CompiledPredict,
  compiledPredict,
  type CompiledTeacher,
  compiledTeacher,
} from "./train/compiled.ts";
export { type Sst2TrainOptions, type Sst2TrainResult, trainSst2 } from "./train/sst2.ts";
