import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBreakdown } from '../src/cli/eval.js';
import { InvalidArgumentError } from '../src/errors.js';
import { breakdownScores, distractor, DISTRACTORS } from '../src/eval/breakdown.js';
import type { TaskScore } from '../src/eval/evaluate.js';

/** A task on a 100-pixel picture. */
function score(iou: number, target: number, predicted: number, phrase_type?: string): TaskScore {
  return {
    task_id: `t${iou}`,
    image_id: 1,
    phrase: 'x',
    ...(phrase_type === undefined ? {} : { phrase_type }),
    instances: 1,
    ann_ids: [1],
    iou,
    pixels: 100,
    target_pixels: target,
    predicted_pixels: predicted,
    intersection_pixels: Math.min(target, predicted),
  };
}

test('breakdown groups per-task IoU by phrase type, target area and spill, with hand-derived means', () => {
  const scores = [
    score(0.9, 0, 0, 'name'),
    score(0.5, 2, 3, 'name'),
    score(0.2, 2, 4, 'verbose'),
    score(0.8, 5, 5, 'attribute'),
    score(0.6, 8, 20),
    score(0.4, 50, 60, 'verbose'),
  ];
  const b = breakdownScores(scores);
  assert.equal(b.tasks, 6);
  assert.ok(Math.abs(b.miou - 3.4 / 6) < 1e-15);
  assert.deepEqual(
    b.byPhraseType.map((g) => [g.name, g.tasks, Number(g.miou.toFixed(12))]),
    [['attribute', 1, 0.8], ['name', 2, 0.7], ['unknown', 1, 0.6], ['verbose', 2, 0.3]],
  );
  // Target shares 0, 0.02, 0.02, 0.05, 0.08, 0.5: a bucket holds [lower, upper).
  assert.deepEqual(
    b.byTargetArea.map((g) => [g.name, g.tasks, Number(g.miou.toFixed(12))]),
    [['< 1 %', 1, 0.9], ['1 % - 3 %', 2, 0.35], ['3 % - 8 %', 1, 0.8], ['>= 8 %', 2, 0.5]],
  );
  // 3 > 1.5 x 2 is false (equal), 4 > 3 and 20 > 12 spill.
  assert.deepEqual(
    b.byPredictedArea.map((g) => [g.name, g.tasks, Number(g.share.toFixed(12)), Number(g.miou.toFixed(12))]),
    [['predicted <= 1.5 x target', 4, Number((4 / 6).toFixed(12)), 0.65], ['predicted > 1.5 x target', 2, Number((2 / 6).toFixed(12)), 0.4]],
  );
  const weighted = b.byPredictedArea.reduce((a, g) => a + g.share * g.miou, 0);
  assert.ok(Math.abs(weighted - b.miou) < 1e-12, 'the groups partition the tasks');
});

test('the printed breakdown has one line per group, with a dash for an empty group', () => {
  const text = formatBreakdown(breakdownScores([score(0.5, 2, 2, 'name'), score(0.25, 2, 8, 'name')]));
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], 'per-task IoU by group (2 tasks, mean   37.50)');
  assert.deepEqual(lines.filter((l) => l.startsWith('  ') && !l.startsWith('    ')).map((l) => l.trim()), ['predicted area', 'target area', 'phrase type', 'distractor']);
  assert.match(text, /predicted > 1\.5 x target\s+1 tasks\s+50\.00 %\s+mIoU\s+25\.00/);
  assert.match(text, /1 % - 3 %\s+2 tasks\s+100\.00 %\s+mIoU\s+37\.50/);
  assert.match(text, /< 1 %\s+0 tasks\s+0\.00 %\s+mIoU\s+-/);
  assert.match(text, /unknown\s+2 tasks\s+100\.00 %\s+mIoU\s+37\.50/);
  assert.equal(lines.length, 1 + 4 + 2 + 4 + 1 + 5);
});

/** A task with a phrase structure: `name` and `attributes` as PhraseCut records them. */
function structured(iou: number, image_id: number, ann_ids: number[], name?: string, attributes?: string[]): TaskScore {
  return {
    ...score(iou, 5, 5),
    task_id: `${image_id}__${ann_ids.join('_')}_${iou}`,
    image_id,
    ann_ids,
    ...(name === undefined ? {} : { name }),
    ...(attributes === undefined ? {} : { attributes }),
  };
}

test('breakdown by distractor: other objects of the picture sharing an attribute or the name, by hand', () => {
  const a = structured(0.2, 1, [1], 'circle', ['purple']);
  const b = structured(0.3, 1, [2], 'square', ['purple']);
  const c = structured(0.6, 1, [3], 'square', ['black']);
  // Another phrase for a's object: it shares a's annotation id, so neither is the other's distractor.
  const d = structured(0.4, 1, [1], 'circle', ['large', 'purple']);
  const e = structured(0.9, 2, [10], 'star', ['red']);
  // Same name, other attribute, but in another picture.
  const f = structured(0.8, 3, [11], 'star', ['blue']);
  const g = structured(0.5, 2, [12]);
  // Without annotation ids it cannot be told from e's object: unknown, and no distractor for e.
  const h = structured(0.7, 2, [], 'star', ['blue']);
  const scores = [a, b, c, d, e, f, g, h];
  const images = (t: TaskScore) => scores.filter((s) => s.image_id === t.image_id);
  assert.deepEqual(
    scores.map((t) => distractor(t, images(t))),
    ['same attribute, other name', 'both', 'same name, other attributes', 'same attribute, other name', 'none', 'none', 'unknown', 'unknown'],
  );
  assert.deepEqual(
    breakdownScores(scores).byDistractor.map((g) => [g.name, g.tasks, Number(g.miou.toFixed(12))]),
    [['none', 2, 0.85], ['same attribute, other name', 2, 0.3], ['same name, other attributes', 1, 0.6], ['both', 1, 0.3], ['unknown', 2, 0.6]],
  );
  // Tasks of other images passed in do not count: the image id is checked.
  assert.equal(distractor(e, scores), 'none');
  // A record from a per-task file written before ann_ids were recorded is 'unknown', and no distractor for others.
  const { ann_ids: _, ...old } = structured(0.1, 1, [4], 'star', ['purple']);
  assert.equal(distractor(old, [a, old]), 'unknown');
  assert.equal(distractor(a, [a, old]), 'none');
  assert.deepEqual(breakdownScores([a, b]).byDistractor.map((g) => g.name), DISTRACTORS.filter((k) => k !== 'unknown'), 'unknown is listed only when a task is');
});

test('breakdown: custom buckets, empty groups and bad options', () => {
  const b = breakdownScores([score(0.5, 10, 10)], { areaBounds: [0.5], spill: 2 });
  assert.deepEqual(b.byTargetArea.map((g) => [g.name, g.tasks]), [['< 50 %', 1], ['>= 50 %', 0]]);
  assert.ok(Number.isNaN(b.byTargetArea[1]!.miou));
  assert.equal(b.byPredictedArea[0]!.name, 'predicted <= 2 x target');
  const none = breakdownScores([]);
  assert.equal(none.tasks, 0);
  assert.ok(Number.isNaN(none.miou));
  assert.throws(() => breakdownScores([], { areaBounds: [0.03, 0.01] }), InvalidArgumentError);
  assert.throws(() => breakdownScores([], { areaBounds: [1.5] }), /options\.areaBounds: expected increasing fractions in \(0, 1\), got \[1\.5\]/);
  assert.throws(() => breakdownScores([], { spill: 0 }), /options\.spill: expected a positive ratio, got 0/);
});
