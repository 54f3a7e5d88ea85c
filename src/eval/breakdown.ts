/**
 * Per-task scores (`evaluate`'s `onTask`, `clipseg eval --per-task`) grouped the way referring-segmentation errors
 * are usually read: by phrase type, by the target's share of the picture, by whether the prediction spills well
 * beyond the target (which on a segmentation model that finds its targets means it also marks other objects), and
 * by the distractors in the picture: other objects that share the phrase's attribute or its name, which a model that
 * reads only one of the two cannot tell from the target.
 */
import { listIn } from '../collections.js';
import { InvalidArgumentError } from '../errors.js';
import type { TaskScore } from './evaluate.js';

export interface ScoreGroup {
  name: string;
  tasks: number;
  /** Fraction of all tasks in this group. */
  share: number;
  /** Mean per-task IoU of the group (NaN for an empty group, which JSON writes as null). */
  miou: number;
}

export interface ScoreBreakdown {
  tasks: number;
  miou: number;
  /** By PhraseCut's `phrase_type`, in alphabetical order; tasks without one are grouped as 'unknown'. */
  byPhraseType: ScoreGroup[];
  /** By target area over pixels compared, in the buckets of `areaBounds`. */
  byTargetArea: ScoreGroup[];
  /** Predicted area at most, then above, `spill` times the target area. */
  byPredictedArea: ScoreGroup[];
  /** By `distractor(...)` against the other scored tasks of the same image, in `DISTRACTORS` order. */
  byDistractor: ScoreGroup[];
}

/**
 * What else in the picture shares part of a task's phrase: another object (no annotation id in common) named
 * otherwise that shares one of its attributes ("red square" beside the target "red circle"), one of the same name
 * with other attributes ("blue circle"), both, or neither. 'unknown' when the task has no `name` or `ann_ids` (as in
 * per-task files written before they were recorded).
 */
export type Distractor = 'none' | 'same attribute, other name' | 'same name, other attributes' | 'both' | 'unknown';

export const DISTRACTORS: readonly Distractor[] = ['none', 'same attribute, other name', 'same name, other attributes', 'both', 'unknown'];

/** The distractor kind of `task` among `others` (the other tasks of its image; `task` itself may be among them). */
export function distractor(task: TaskScore, others: readonly TaskScore[]): Distractor {
  const ids = task.ann_ids ?? [];
  if (task.name === undefined || ids.length === 0) return 'unknown';
  const attributes = new Set(task.attributes ?? []);
  const sameAttributes = (u: TaskScore): boolean => {
    const theirs = new Set(u.attributes ?? []);
    return theirs.size === attributes.size && [...theirs].every((a) => attributes.has(a));
  };
  let byAttribute = false;
  let byName = false;
  for (const u of others) {
    const theirIds = u.ann_ids ?? [];
    if (u.image_id !== task.image_id || u.name === undefined || theirIds.length === 0) continue;
    if (theirIds.some((id) => ids.includes(id))) continue;
    if (u.name !== task.name) byAttribute ||= (u.attributes ?? []).some((a) => attributes.has(a));
    else byName ||= !sameAttributes(u);
  }
  if (byAttribute && byName) return 'both';
  return byAttribute ? 'same attribute, other name' : byName ? 'same name, other attributes' : 'none';
}

export interface BreakdownOptions {
  /** Upper bounds of the target-area buckets, as fractions of the picture, increasing (default 1 %, 3 %, 8 %). */
  areaBounds?: readonly number[];
  /** Predicted-to-target area ratio above which a prediction counts as spilling over (default 1.5). */
  spill?: number;
}

const percent = (x: number): string => `${Number((100 * x).toPrecision(6))} %`;

export function breakdownScores(scores: readonly TaskScore[], options: BreakdownOptions = {}): ScoreBreakdown {
  const { areaBounds = [0.01, 0.03, 0.08], spill = 1.5 } = options;
  if (areaBounds.some((b, i) => !(b > 0 && b < 1) || (i > 0 && !(b > areaBounds[i - 1]!)))) {
    throw new InvalidArgumentError(`options.areaBounds: expected increasing fractions in (0, 1), got [${areaBounds.join(', ')}]`);
  }
  if (!(spill > 0) || !Number.isFinite(spill)) throw new InvalidArgumentError(`options.spill: expected a positive ratio, got ${spill}`);
  const group = (name: string, members: readonly TaskScore[]): ScoreGroup => ({
    name,
    tasks: members.length,
    share: scores.length === 0 ? 0 : members.length / scores.length,
    miou: members.length === 0 ? Number.NaN : members.reduce((a, s) => a + s.iou, 0) / members.length,
  });

  const types = [...new Set(scores.map((s) => s.phrase_type ?? 'unknown'))].sort();
  const byPhraseType = types.map((t) => group(t, scores.filter((s) => (s.phrase_type ?? 'unknown') === t)));

  const edges = [0, ...areaBounds, Number.POSITIVE_INFINITY];
  const byTargetArea = edges.slice(0, -1).map((lo, i) => {
    const hi = edges[i + 1]!;
    const name = i === 0 ? `< ${percent(hi)}` : hi === Number.POSITIVE_INFINITY ? `>= ${percent(lo)}` : `${percent(lo)} - ${percent(hi)}`;
    return group(name, scores.filter((s) => s.target_pixels / s.pixels >= lo && s.target_pixels / s.pixels < hi));
  });

  const spills = (s: TaskScore): boolean => s.predicted_pixels > spill * s.target_pixels;
  const byPredictedArea = [
    group(`predicted <= ${spill} x target`, scores.filter((s) => !spills(s))),
    group(`predicted > ${spill} x target`, scores.filter(spills)),
  ];
  const images = new Map<number, TaskScore[]>();
  for (const s of scores) listIn(images, s.image_id).push(s);
  const kinds = scores.map((s) => distractor(s, images.get(s.image_id)!));
  // 'unknown' is listed only when some task is, as phrase types list 'unknown' only then.
  const byDistractor = DISTRACTORS.filter((d) => d !== 'unknown' || kinds.includes(d)).map((d) => group(d, scores.filter((_, i) => kinds[i] === d)));

  const all = group('all', scores);
  return { tasks: all.tasks, miou: all.miou, byPhraseType, byTargetArea, byPredictedArea, byDistractor };
}

/** The groupings in reading order, each with its title: what printed and Markdown reports list. */
export function breakdownTables(b: ScoreBreakdown): Array<[title: string, groups: ScoreGroup[]]> {
  return [['predicted area', b.byPredictedArea], ['target area', b.byTargetArea], ['phrase type', b.byPhraseType], ['distractor', b.byDistractor]];
}
