/**
 * Segmentation metrics of the CLIPSeg paper (clipseg `metrics.py`, `FixedIntervalMetrics`; training recipe §2.1)
 * and of PhraseCut's official evaluator (PhraseCutDataset `utils/evaluator.py`, `utils/iou.py`). Browser-safe.
 *
 * Paper protocol: a pixel is positive when p > t for each t of a 49-value grid (numpy `linspace(0, 1, 51)[1:-1]`);
 * TP/FP/FN/TN are counted per sample and threshold. The comparison runs in float32 (torch compares a float32
 * tensor with a Python scalar in float32), so probabilities and thresholds are rounded to float32 first.
 * Every IoU and precision/recall denominator carries the reference's "+1".
 */
import { InvalidArgumentError } from '../errors.js';
import { simpsonAvg } from './simpson.js';

/** 0.02, 0.04, ..., 0.98: `np.linspace(0, 1, 51)[1:-1]`, i.e. i * 0.02 in float64. */
export const PAPER_THRESHOLDS: readonly number[] = Object.freeze(Array.from({ length: 49 }, (_, i) => (i + 1) * 0.02));

/** Accuracy thresholds of the official evaluator (a task counts when its IoU is strictly above). */
export const OFFICIAL_ACCURACY_THRESHOLDS: readonly number[] = Object.freeze([0.5, 0.6, 0.7, 0.8, 0.9]);

export interface ConfusionCounts {
  tp: Float64Array;
  fp: Float64Array;
  fn: Float64Array;
  tn: Float64Array;
}

function zeroCounts(n: number): ConfusionCounts {
  return { tp: new Float64Array(n), fp: new Float64Array(n), fn: new Float64Array(n), tn: new Float64Array(n) };
}

function addInto(target: ConfusionCounts, source: ConfusionCounts): void {
  for (let j = 0; j < target.tp.length; j++) {
    target.tp[j] += source.tp[j];
    target.fp[j] += source.fp[j];
    target.fn[j] += source.fn[j];
    target.tn[j] += source.tn[j];
  }
}

/**
 * Per-threshold counts for one sample. `probabilities` are compared as float32 with the float32-rounded thresholds;
 * a ground-truth pixel is positive when its value is > 0.5.
 */
export function sampleCounts(
  probabilities: ArrayLike<number>,
  groundTruth: ArrayLike<number>,
  thresholds: readonly number[] = PAPER_THRESHOLDS,
): ConfusionCounts {
  if (probabilities.length !== groundTruth.length) {
    throw new InvalidArgumentError(
      `groundTruth: expected ${probabilities.length} values (one per probability), got ${groundTruth.length}`,
    );
  }
  const t = thresholds.map((v) => Math.fround(v));
  for (let j = 1; j < t.length; j++) {
    if (!((t[j]) > (t[j - 1]))) throw new InvalidArgumentError('thresholds: expected strictly increasing values');
  }
  const m = t.length;
  // hist[k] counts pixels whose probability exceeds exactly the k lowest thresholds.
  const posHist = new Float64Array(m + 1);
  const negHist = new Float64Array(m + 1);
  for (let i = 0; i < probabilities.length; i++) {
    const p = Math.fround(probabilities[i]);
    if (Number.isNaN(p)) throw new InvalidArgumentError(`probabilities: NaN at index ${i}`);
    let lo = 0;
    let hi = m;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (p > t[mid]) lo = mid + 1;
      else hi = mid;
    }
    if ((groundTruth[i]) > 0.5) posHist[lo]++;
    else negHist[lo]++;
  }
  const counts = zeroCounts(m);
  let positives = 0;
  let negatives = 0;
  for (let k = 0; k <= m; k++) {
    positives += posHist[k];
    negatives += negHist[k];
  }
  let tp = positives;
  let fp = negatives;
  for (let j = 0; j < m; j++) {
    tp -= posHist[j];
    fp -= negHist[j];
    counts.tp[j] = tp;
    counts.fp[j] = fp;
    counts.fn[j] = positives - tp;
    counts.tn[j] = negatives - fp;
  }
  return counts;
}

/**
 * Foreground IoU with the reference's +1 at threshold index `j`: TP / (1 + TP + FP + FN). On one sample's counts it
 * is the term mIoU averages; on summed counts it is IoU_FG.
 */
export function paperIou(c: ConfusionCounts, j: number): number {
  return c.tp[j] / (1 + c.tp[j] + c.fp[j] + c.fn[j]);
}

function iouBin(c: ConfusionCounts, j: number): number {
  return 0.5 * paperIou(c, j) + 0.5 * (c.tn[j] / (1 + c.tn[j] + c.fn[j] + c.fp[j]));
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let j = 1; j < values.length; j++) if ((values[j]) > (values[best])) best = j;
  return best;
}

export interface PaperMetricsResult {
  samples: number;
  classes: number;
  threshold: number;
  /** Mean over classes of the class IoU at `threshold` (PhraseCut: each sample is its own class). */
  miou: number;
  /** Cumulative foreground IoU at `threshold`. */
  fgiou: number;
  /** Mean of foreground and background cumulative IoU at `threshold`. */
  biniou: number;
  /** Pixel-level average precision (Simpson's rule over the precision-recall points). */
  ap: number;
  best: {
    miou: number;
    miouThreshold: number;
    fgiou: number;
    fgiouThreshold: number;
    biniou: number;
    biniouThreshold: number;
  };
  thresholds: number[];
  miouScores: number[];
  fgiouScores: number[];
  biniouScores: number[];
  /** Deduplicated (recall, precision) pairs sorted by recall, then precision. */
  precisionRecall: Array<[number, number]>;
  summed: { tp: number[]; fp: number[]; fn: number[]; tn: number[] };
}

/** Accumulates the paper's statistics sample by sample. */
export class PaperMetrics {
  readonly thresholds: readonly number[];
  private readonly summed: ConfusionCounts;
  private readonly byClass = new Map<string | number, ConfusionCounts>();
  private count = 0;

  constructor(thresholds: readonly number[] = PAPER_THRESHOLDS) {
    if (thresholds.length === 0) throw new InvalidArgumentError('thresholds: expected at least one threshold');
    this.thresholds = [...thresholds];
    this.summed = zeroCounts(thresholds.length);
  }

  get samples(): number {
    return this.count;
  }

  /**
   * Adds one sample; `classId` defaults to the sample's running index, which makes mIoU a per-sample mean.
   * Returns the sample's own counts (per-task reports read them at one threshold).
   */
  add(probabilities: ArrayLike<number>, groundTruth: ArrayLike<number>, classId?: string | number): ConfusionCounts {
    const counts = sampleCounts(probabilities, groundTruth, this.thresholds);
    this.addCounts(counts, classId);
    return counts;
  }

  addCounts(counts: ConfusionCounts, classId?: string | number): void {
    if (counts.tp.length !== this.thresholds.length) {
      throw new InvalidArgumentError(`counts: expected ${this.thresholds.length} thresholds, got ${counts.tp.length}`);
    }
    const key = classId ?? this.count;
    let cls = this.byClass.get(key);
    if (cls === undefined) {
      cls = zeroCounts(this.thresholds.length);
      this.byClass.set(key, cls);
    }
    addInto(cls, counts);
    addInto(this.summed, counts);
    this.count++;
  }

  thresholdIndex(threshold: number): number {
    const j = this.thresholds.findIndex((t) => Math.abs(t - threshold) < 1e-9);
    if (j < 0) {
      throw new InvalidArgumentError(
        `threshold: expected one of the grid values ${this.thresholds[0]}..${this.thresholds[this.thresholds.length - 1]}, got ${threshold}`,
      );
    }
    return j;
  }

  result(threshold = 0.3): PaperMetricsResult {
    const j = this.thresholdIndex(threshold);
    const m = this.thresholds.length;
    const s = this.summed;
    const idx = Array.from({ length: m }, (_, k) => k);
    const fgiouScores = idx.map((k) => paperIou(s, k));
    const biniouScores = idx.map((k) => iouBin(s, k));
    const classes = [...this.byClass.values()];
    const miouScores = idx.map((k) =>
      classes.length === 0 ? 0 : classes.reduce((acc, c) => acc + paperIou(c, k), 0) / classes.length,
    );
    const precisionRecall = this.precisionRecall();
    const ap = precisionRecall.length === 0 ? 0 : simpsonAvg(precisionRecall.map((p) => p[1]), precisionRecall.map((p) => p[0]));
    const bestM = argmax(miouScores);
    const bestF = argmax(fgiouScores);
    const bestB = argmax(biniouScores);
    return {
      samples: this.count,
      classes: classes.length,
      threshold: this.thresholds[j],
      miou: miouScores[j],
      fgiou: fgiouScores[j],
      biniou: biniouScores[j],
      ap,
      best: {
        miou: miouScores[bestM],
        miouThreshold: this.thresholds[bestM],
        fgiou: fgiouScores[bestF],
        fgiouThreshold: this.thresholds[bestF],
        biniou: biniouScores[bestB],
        biniouThreshold: this.thresholds[bestB],
      },
      thresholds: [...this.thresholds],
      miouScores,
      fgiouScores,
      biniouScores,
      precisionRecall,
      summed: { tp: [...s.tp], fp: [...s.fp], fn: [...s.fn], tn: [...s.tn] },
    };
  }

  /**
   * (recall, precision) at every threshold where something is predicted, deduplicated and sorted by recall.
   * The reference sorts a Python set by recall only, leaving ties in set-iteration order; ties are broken by
   * precision here so the order (and Simpson's result on repeated recalls) is defined.
   */
  private precisionRecall(): Array<[number, number]> {
    const s = this.summed;
    const seen = new Set<string>();
    const pairs: Array<[number, number]> = [];
    for (let k = 0; k < this.thresholds.length; k++) {
      const tp = s.tp[k];
      const fp = s.fp[k];
      if (tp + fp <= 0) continue;
      const pair: [number, number] = [tp / (1 + tp + s.fn[k]), tp / (1 + tp + fp)];
      const key = `${pair[0]},${pair[1]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      pairs.push(pair);
    }
    return pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  }
}

export interface OfficialMetricsResult {
  samples: number;
  /** Mean per-task IoU (0 when the intersection is empty). */
  meanIou: number;
  /** Sum of intersections over sum of unions. */
  cumIou: number;
  /** Fraction of tasks whose IoU is strictly above each threshold, keyed by the threshold ("0.5" ... "0.9"). */
  accuracy: Record<string, number>;
  ious: number[];
}

/** Foreground pixel counts of a binary prediction and ground truth (non-zero = foreground). */
export interface MaskOverlap {
  predicted: number;
  target: number;
  intersection: number;
  union: number;
}

export function maskOverlap(prediction: ArrayLike<number>, groundTruth: ArrayLike<number>): MaskOverlap {
  if (prediction.length !== groundTruth.length) {
    throw new InvalidArgumentError(`groundTruth: expected ${prediction.length} values (one per predicted pixel), got ${groundTruth.length}`);
  }
  let predicted = 0;
  let target = 0;
  let intersection = 0;
  for (let k = 0; k < prediction.length; k++) {
    const p = (prediction[k]) !== 0;
    const g = (groundTruth[k]) !== 0;
    if (p) predicted++;
    if (g) target++;
    if (p && g) intersection++;
  }
  return { predicted, target, intersection, union: predicted + target - intersection };
}

/** The official evaluator's task IoU: 0 when the intersection is empty (so also when both masks are). */
function officialIou(o: MaskOverlap): number {
  return o.intersection === 0 ? 0 : o.intersection / o.union;
}

/** PhraseCut's official mask evaluation: binary masks at the original resolution, no smoothing. */
export class OfficialMetrics {
  private readonly ious: number[] = [];
  private intersections = 0;
  private unions = 0;

  get samples(): number {
    return this.ious.length;
  }

  /** Adds one task; both masks are binary (non-zero = foreground) and of equal length. Returns the task IoU. */
  add(prediction: ArrayLike<number>, groundTruth: ArrayLike<number>): number {
    return this.addOverlap(maskOverlap(prediction, groundTruth));
  }

  /** Adds one task from its pixel counts (`maskOverlap`). Returns the task IoU. */
  addOverlap(overlap: MaskOverlap): number {
    const iou = officialIou(overlap);
    this.ious.push(iou);
    this.intersections += overlap.intersection;
    this.unions += overlap.union;
    return iou;
  }

  result(): OfficialMetricsResult {
    const n = this.ious.length;
    const accuracy: Record<string, number> = {};
    for (const t of OFFICIAL_ACCURACY_THRESHOLDS) {
      accuracy[t.toFixed(1)] = n === 0 ? 0 : this.ious.filter((v) => v > t).length / n;
    }
    return {
      samples: n,
      meanIou: n === 0 ? 0 : this.ious.reduce((a, b) => a + b, 0) / n,
      cumIou: this.unions === 0 ? 0 : this.intersections / this.unions,
      accuracy,
      ious: [...this.ious],
    };
  }
}
