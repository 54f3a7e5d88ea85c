/**
 * Evaluation of a CLIPSeg model on a PhraseCut-format split.
 *
 * 'paper' (clipseg `score.py`; training recipe §2.1): each whole image is squashed to 352x352 (bilinear,
 * align_corners), the ground truth is rasterised with CLIPSeg's rule at full resolution and nearest-resized to
 * 352, the prompt is the raw phrase, and `PaperMetrics` gives mIoU, IoU_FG and IoU_BIN at the chosen threshold,
 * their best thresholds, and AP.
 * 'official' (PhraseCutDataset `utils/evaluator.py`): the probabilities are resized back to the original size
 * (bilinear, half-pixel centres), thresholded, and compared with the official (Pillow-rule) mask: mean IoU,
 * cumulative IoU and accuracy at IoU > 0.5..0.9. The protocol has no AP.
 * Tasks whose record or image cannot be used are skipped and counted, as in training.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { rethrowWasmTrap, WASM_RESTART } from '../failures.js';
import { count } from '../text.js';
import { PhraseCutDataset, nameAndAttributes, type PhraseCutTask, type SkipReason } from '../train/phrasecut.js';
import type { RasterRule } from '../train/rasterize.js';
import { prepareSample } from '../train/sample_pipeline.js';
import { OfficialMetrics, PaperMetrics, maskOverlap, paperIou, type MaskOverlap, type PaperMetricsResult } from './metrics.js';

/** What evaluation needs from a model: `CLIPSegForImageSegmentation` provides it. */
export interface SegmentationModel {
  forward(
    inputs: { pixelValues: tf.Tensor4D; inputIds: number[][]; attentionMask: number[][] },
    options?: { computePooled?: boolean },
  ): { logits: tf.Tensor };
}

/** What evaluation needs from a tokenizer: `CLIPTokenizer` provides it. */
export interface PromptTokenizer {
  encodeBatch(texts: readonly string[], options: { padding: true }): { input_ids: number[][]; attention_mask: number[][] };
}

export type Protocol = 'paper' | 'official';

export interface EvaluateOptions {
  tokenizer: PromptTokenizer;
  /** Used when `dataset` is a folder (default 'test'). */
  split?: string;
  /** Default 0.3; the paper protocol needs a value of its 0.02 grid. */
  threshold?: number;
  /**
   * Images per forward pass, default 16: with a CIDAS model at 352 px on the wasm backend a batch of 16 peaks at
   * about 2.4 GB of resident memory and one of 32 at about 4 GB, the backend's limit, for the same speed per image.
   */
  batchSize?: number;
  /** Default 'paper'. */
  protocol?: Protocol;
  /** Input side (default 352). */
  size?: number;
  /** Evaluate only the first `limit` tasks. */
  limit?: number;
  onProgress?: (done: number, total: number) => void;
  /** Called once per scored task, in task order: the per-task terms behind the means, for error analysis. */
  onTask?: (score: TaskScore) => void;
}

/**
 * One task's result at the evaluation threshold. Keys are snake_case, as in PhraseCut's files, since
 * `clipseg eval --per-task` writes these records as JSON lines.
 */
export interface TaskScore {
  task_id: string;
  image_id: number;
  phrase: string;
  /** PhraseCut's `phrase_structure.type` ('name', 'attribute', 'relation', 'verbose'), when the record has one. */
  phrase_type?: string;
  /** Number of annotated instances the phrase refers to. */
  instances: number;
  /**
   * The instances' annotation ids: tasks of one image that share one refer to the same object. Always written here;
   * optional because per-task files written before it existed lack it.
   */
  ann_ids?: number[];
  /** `phrase_structure.name` and `.attributes`, when the record has them (`breakdownScores` compares them across an image's tasks). */
  name?: string;
  attributes?: string[];
  /** The term the protocol's mean IoU averages: paper TP / (1 + TP + FP + FN); official I / U, 0 when I = 0. */
  iou: number;
  /** Pixels compared: paper the input size squared; official the image's height x width. */
  pixels: number;
  /** Pixel counts at that resolution. */
  target_pixels: number;
  predicted_pixels: number;
  intersection_pixels: number;
}

export interface EvaluationResult {
  protocol: Protocol;
  split: string;
  samples: number;
  threshold: number;
  /** Paper: mean per-task IoU (+1 smoothing). Official: mean per-task IoU. */
  miou: number;
  /** Paper: cumulative foreground IoU (+1 smoothing). Official: cumulative IoU. */
  fgiou: number;
  /** Paper: AP by Simpson's rule. Official: null. */
  ap: number | null;
  biniou?: number;
  best?: PaperMetricsResult['best'];
  /** Official: fraction of tasks with IoU above 0.5 ... 0.9. */
  accuracy?: Record<string, number>;
  skipped: Partial<Record<SkipReason, number>>;
  seconds: number;
}

type Optional = 'onProgress' | 'onTask' | 'limit';

function check(options: EvaluateOptions): Required<Omit<EvaluateOptions, Optional>> & Pick<EvaluateOptions, Optional> {
  const { tokenizer, split = 'test', threshold = 0.3, batchSize = 16, protocol = 'paper', size = 352, limit, onProgress, onTask } = options;
  if (tokenizer === undefined || typeof tokenizer.encodeBatch !== 'function') {
    throw new InvalidArgumentError('options.tokenizer: expected a tokenizer with encodeBatch (e.g. a CLIPTokenizer)');
  }
  if (protocol !== 'paper' && protocol !== 'official') throw new InvalidArgumentError(`options.protocol: expected 'paper' or 'official', got ${String(protocol)}`);
  if (!(threshold > 0 && threshold < 1)) throw new InvalidArgumentError(`options.threshold: expected a number in (0, 1), got ${String(threshold)}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError(`options.batchSize: expected a positive integer, got ${String(batchSize)}`);
  if (!Number.isSafeInteger(size) || size < 1) throw new InvalidArgumentError(`options.size: expected a positive integer, got ${String(size)}`);
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new InvalidArgumentError(`options.limit: expected a non-negative integer, got ${String(limit)}`);
  if (onTask !== undefined && typeof onTask !== 'function') throw new InvalidArgumentError(`options.onTask: expected a function, got ${typeof onTask}`);
  return { tokenizer, split, threshold, batchSize, protocol, size, limit, onProgress, onTask };
}

type Checked = ReturnType<typeof check>;

interface Pending {
  pixelValues: Float32Array;
  task: PhraseCutTask;
  /** Paper: the 352 label. Official: the full-resolution official mask. */
  target: Uint8Array;
  height: number;
  width: number;
}

/** Probabilities [B, S, S] of a batch, as host arrays; no tensor outlives the call. */
function predict(model: SegmentationModel, tokenizer: PromptTokenizer, batch: readonly Pending[], size: number): Float32Array[] {
  const tokens = tokenizer.encodeBatch(batch.map((p) => p.task.phrase), { padding: true });
  const pixels = new Float32Array(batch.length * 3 * size * size);
  batch.forEach((p, k) => pixels.set(p.pixelValues, k * 3 * size * size));
  const probs = tf.tidy(() => {
    const input = tf.tensor4d(pixels, [batch.length, 3, size, size]);
    const { logits } = model.forward({ pixelValues: input, inputIds: tokens.input_ids, attentionMask: tokens.attention_mask }, { computePooled: false });
    const expected = [batch.length, size, size];
    if (logits.shape.length !== 3 || logits.shape.some((d, i) => d !== expected[i])) {
      throw new ShapeError('model logits', `[${expected.join(', ')}] (one ${size}x${size} map per prompt)`, logits.shape);
    }
    return tf.sigmoid(logits);
  });
  try {
    const flat = probs.dataSync() as Float32Array;
    return batch.map((_, k) => flat.slice(k * size * size, (k + 1) * size * size));
  } finally {
    probs.dispose();
  }
}

/** `predict`, with a trap inside the wasm backend turned into a BackendError that names the batch and the remedy. */
function predictOrExplain(model: SegmentationModel, opts: Checked, batch: readonly Pending[]): Float32Array[] {
  try {
    return predict(model, opts.tokenizer, batch, opts.size);
  } catch (err) {
    const [first, last] = [batch[0]!.task.taskId, batch[batch.length - 1]!.task.taskId];
    const tasks = batch.length === 1 ? `task ${first}` : `tasks ${first} to ${last}`;
    rethrowWasmTrap(
      err,
      (trap) =>
        `evaluation stopped at ${tasks}: ${trap} on a batch of ${count(batch.length, 'image')} of ${opts.size}x${opts.size}; ` +
        `lower the batch size (--batch-size, options.batchSize) and run again ${WASM_RESTART}`,
    );
  }
}

/** Bilinear resize (torch align_corners=False) of one probability map back to the original size, then p > t. */
function binaryAtOriginalSize(prob: Float32Array, size: number, height: number, width: number, threshold: number): Uint8Array {
  const values = tf.tidy(() => {
    const map = tf.tensor4d(prob, [1, size, size, 1]);
    // [1, S, S, 1] -> [1, H, W, 1]
    return tf.image.resizeBilinear(map, [height, width], false, true);
  });
  try {
    const data = values.dataSync();
    const t = Math.fround(threshold);
    return Uint8Array.from(data, (p) => (p > t ? 1 : 0));
  } finally {
    values.dispose();
  }
}

function taskScore(task: PhraseCutTask, iou: number, o: MaskOverlap, pixels: number): TaskScore {
  const type = task.phraseStructure?.type;
  return {
    task_id: task.taskId,
    image_id: task.imageId,
    phrase: task.phrase,
    ...(typeof type === 'string' ? { phrase_type: type } : {}),
    instances: task.annIds.length,
    ann_ids: task.annIds,
    ...nameAndAttributes(task.phraseStructure),
    iou,
    pixels,
    target_pixels: o.target,
    predicted_pixels: o.predicted,
    intersection_pixels: o.intersection,
  };
}

/** Evaluates `model` on a PhraseCut-format folder (opened and closed here) or an opened dataset. */
export async function evaluate(model: SegmentationModel, dataset: string | PhraseCutDataset, options: EvaluateOptions): Promise<EvaluationResult> {
  const opts = check(options);
  const started = Date.now();
  const ds = typeof dataset === 'string' ? await PhraseCutDataset.open(dataset, { split: opts.split }) : dataset;
  const paper = new PaperMetrics();
  const official = new OfficialMetrics();
  const j = opts.protocol === 'paper' ? paper.thresholdIndex(opts.threshold) : -1;
  const rule: RasterRule = opts.protocol === 'paper' ? 'clipseg' : 'official';
  try {
    const total = Math.min(ds.length, opts.limit ?? ds.length);
    let pending: Pending[] = [];
    const flush = (): void => {
      if (pending.length === 0) return;
      const probs = predictOrExplain(model, opts, pending);
      pending.forEach((p, k) => {
        let overlap: MaskOverlap;
        let iou: number;
        if (opts.protocol === 'paper') {
          const c = paper.add(probs[k] as Float32Array, p.target);
          overlap = { predicted: c.tp[j]! + c.fp[j]!, target: c.tp[j]! + c.fn[j]!, intersection: c.tp[j]!, union: c.tp[j]! + c.fp[j]! + c.fn[j]! };
          iou = paperIou(c, j);
        } else {
          overlap = maskOverlap(binaryAtOriginalSize(probs[k] as Float32Array, opts.size, p.height, p.width, opts.threshold), p.target);
          iou = official.addOverlap(overlap);
        }
        opts.onTask?.(taskScore(p.task, iou, overlap, p.target.length));
      });
      pending = [];
    };
    for (let i = 0; i < total; i++) {
      const loaded = await ds.loadSample(i, rule);
      if (loaded !== null) {
        const { pixelValues, label } = prepareSample(loaded.image, loaded.mask, opts.size);
        pending.push({
          pixelValues,
          task: loaded.task,
          target: opts.protocol === 'paper' ? label : loaded.mask,
          height: loaded.image.height,
          width: loaded.image.width,
        });
      }
      if (pending.length === opts.batchSize) flush();
      opts.onProgress?.(i + 1, total);
    }
    flush();
    const base = { protocol: opts.protocol, split: ds.split, skipped: ds.summary().skipped, seconds: (Date.now() - started) / 1000 };
    if (opts.protocol === 'official') {
      const r = official.result();
      return { ...base, samples: r.samples, threshold: opts.threshold, miou: r.meanIou, fgiou: r.cumIou, ap: null, accuracy: r.accuracy };
    }
    const r = paper.result(opts.threshold);
    return { ...base, samples: r.samples, threshold: r.threshold, miou: r.miou, fgiou: r.fgiou, ap: r.ap, biniou: r.biniou, best: r.best };
  } finally {
    if (typeof dataset === 'string') await ds.close();
  }
}
