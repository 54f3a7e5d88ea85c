/**
 * What is measured, shared by the orchestrator and the JavaScript sides (`pytorch_side.py` mirrors the prompts
 * and file names). Paths point at what `tools/reference/gen_bench_model.py` writes into `benchmarks/models/`.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CASES = ['segment_1x1', 'segment_1x8', 'segment_4x1', 'train_step_b8', 'load'] as const;
export type CaseName = (typeof CASES)[number];

export const IMPLS = ['clipseg-tfjs', 'pytorch', 'transformers.js'] as const;
export type ImplName = (typeof IMPLS)[number];

/** Cases an implementation cannot run at all, with the reason the report gives; no process is started for them. */
export const NOT_APPLICABLE: Partial<Record<ImplName, Partial<Record<CaseName, string>>>> = {
  'transformers.js': { train_step_b8: 'transformers.js runs inference only (no training API)' },
};

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const MODELS_DIR = path.join(BENCH_DIR, 'models');
export const MODEL_DIR = path.join(MODELS_DIR, 'clipseg-rd64-refined-random');
export const IMAGES_DIR = path.join(MODELS_DIR, 'images');
export const TRAIN_BATCH = path.join(MODELS_DIR, 'train_batch.safetensors');

/** The eight prompts of `segment_1x8`; the single-prompt cases use the first. */
export const PROMPTS = [
  'a cat',
  'a white plate on the table',
  'the man wearing a black hat',
  'red car parked on the street',
  'large window',
  'tree behind the fence',
  'a glass of water',
  'sky',
] as const;

export interface CaseSpec {
  /** Image files (one per pixel batch row; `segment_1x8` has one image shared by eight prompts). */
  images: number;
  prompts: number;
}

export const SEGMENT_CASES: Record<Exclude<CaseName, 'train_step_b8' | 'load'>, CaseSpec> = {
  segment_1x1: { images: 1, prompts: 1 },
  segment_1x8: { images: 1, prompts: 8 },
  segment_4x1: { images: 4, prompts: 4 },
};

export function isSegmentCase(name: CaseName): name is keyof typeof SEGMENT_CASES {
  return name in SEGMENT_CASES;
}

export function imagePath(index: number): string {
  return path.join(IMAGES_DIR, `bench_${index}.jpg`);
}

/** Timed runs and untimed warm-up runs per case. */
export interface RunPlan {
  warmup: number;
  runs: number;
}

export function runPlan(name: CaseName, quick: boolean): RunPlan {
  if (quick) return { warmup: 1, runs: 5 };
  return name === 'train_step_b8' ? { warmup: 2, runs: 8 } : { warmup: 2, runs: 10 };
}

export const TRAIN_BATCH_SIZE = 8;
/** AdamW as the training recipe: lr 1e-3, weight decay 0.01, torch's betas and eps. */
export const TRAIN_OPTIMIZER = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 } as const;
