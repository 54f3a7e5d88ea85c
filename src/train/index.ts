/**
 * `clipseg-tfjs/train`: training, fine-tuning and evaluation from code.
 *
 * `runTrain` is what `clipseg train` runs (data, model, pipeline, loop, final model folder in one call); the pieces
 * below it compose for variants: a `PhraseCutDataset` feeds a `SamplePipeline`, a `SegmentationTask` turns its
 * batches into losses, and `train` runs any `TrainingTask` with AdamW, the cosine schedule and exact checkpoints.
 */
export { runTrain, type TrainCommandOptions, type TrainSummary } from '../cli/train.js';
export { evaluate, type EvaluateOptions, type EvaluationResult, type Protocol, type TaskScore } from '../eval/evaluate.js';
export { breakdownScores, distractor, DISTRACTORS, type BreakdownOptions, type Distractor, type ScoreBreakdown, type ScoreGroup } from '../eval/breakdown.js';
export { PaperMetrics, OfficialMetrics, PAPER_THRESHOLDS, type PaperMetricsResult, type OfficialMetricsResult } from '../eval/metrics.js';
export { AdamW, type AdamWOptions, type AdamWState } from './adamw.js';
export { latestCheckpoint, readCheckpoint, restoreCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint.js';
export { FeatureCache } from './feature_cache.js';
export { SEGMENTATION_LOSSES, segmentationLoss, softDiceLoss, type SegmentationLoss } from './losses.js';
export {
  BAD_IMAGE_IDS,
  PHRASECUT_SPLITS,
  PhraseCutDataset,
  type DatasetSummary,
  type LoadedSample,
  type OpenOptions,
  type PhraseCutTask,
} from './phrasecut.js';
export { demoConfig, tinyConfig, TRAINING_PRESET_NAMES, trainingPreset, type TrainingPreset } from './presets.js';
export { RASTER_RULES, rasterizePolygons, type RasterRule } from './rasterize.js';
export { PAPER_PIPELINE, prepareSample, SamplePipeline, type PipelineOptions, type TrainingBatch } from './sample_pipeline.js';
export { CosineSchedule, type ScheduleOptions } from './schedule.js';
export { SegmentationTask, type SegmentationTaskOptions } from './segmentation_task.js';
export { makeSynthetic, type MakeSyntheticOptions, type SyntheticSummary } from './synthetic.js';
export { PROMPT_TEMPLATES } from './templates.js';
export { train, type MicroBatch, type StepRecord, type TrainerOptions, type TrainingTask, type TrainResult } from './trainer.js';
