import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { InvalidArgumentError } from '../src/errors.js';
import { OfficialMetrics, PAPER_THRESHOLDS, PaperMetrics, sampleCounts } from '../src/eval/metrics.js';
import { simpsonAvg } from '../src/eval/simpson.js';
import { readSafetensors } from '../src/io/safetensors.js';

const DIR = new URL('./fixtures/phrasecut/metrics/', import.meta.url);

interface ExpectedSet {
  samples: number;
  ap: number;
  fgiou_scores: number[];
  biniou_scores: number[];
  miou_scores: number[];
  best_fgiou: number;
  best_fgiou_t: number;
  best_miou: number;
  best_miou_t: number;
  best_biniou: number;
  best_biniou_t: number;
  pr_curve: Array<[number, number]>;
  summed: { tp: number[]; fp: number[]; fn: number[]; tn: number[] };
  per_sample_tp: number[][];
  per_sample_fp: number[][];
}

const expected = JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8')) as {
  thresholds: number[];
  sets: Record<string, ExpectedSet>;
  simpson: Array<{ x: number[]; y: number[]; value: number }>;
};

function close(actual: number, want: number, what: string, tol = 1e-12): void {
  assert.ok(Math.abs(actual - want) <= tol * Math.max(1, Math.abs(want)), `${what}: got ${actual}, want ${want}`);
}

test('the threshold grid is numpy linspace(0, 1, 51)[1:-1] exactly', () => {
  assert.deepEqual([...PAPER_THRESHOLDS], expected.thresholds);
  assert.equal(PAPER_THRESHOLDS[14], 0.3);
});

test("Simpson's rule equals old scipy simps(even='avg'), incl. 1-2 points and repeated x", () => {
  for (const c of expected.simpson) close(simpsonAvg(c.y, c.x), c.value, `n=${c.x.length}`);
  // Hand-derived: two points give the trapezoid; three evenly spaced points give (h/3)(y0 + 4y1 + y2).
  assert.equal(simpsonAvg([1, 3], [0, 2]), 4);
  close(simpsonAvg([1, 2, 5], [0, 1, 2]), (1 / 3) * (1 + 8 + 5), 'three points');
});

for (const name of ['random', 'coarse']) {
  test(`paper metrics on the '${name}' set equal CLIPSeg's FixedIntervalMetrics computed in Python`, async () => {
    const inputs = await readSafetensors(new URL('inputs.safetensors', DIR).pathname);
    const want = expected.sets[name] as ExpectedSet;
    const metrics = new PaperMetrics();
    for (let i = 0; i < want.samples; i++) {
      const prob = inputs.getFloat32(`${name}.${i}.prob`);
      const gt = inputs.getFloat32(`${name}.${i}.gt`);
      const counts = sampleCounts(prob, gt);
      assert.deepEqual([...counts.tp], want.per_sample_tp[i], `sample ${i} tp`);
      assert.deepEqual([...counts.fp], want.per_sample_fp[i], `sample ${i} fp`);
      metrics.add(prob, gt);
    }
    const r = metrics.result(0.3);
    assert.equal(r.samples, want.samples);
    assert.deepEqual(r.summed, want.summed);
    r.fgiouScores.forEach((v, j) => close(v, want.fgiou_scores[j] as number, `fgiou[${j}]`));
    r.biniouScores.forEach((v, j) => close(v, want.biniou_scores[j] as number, `biniou[${j}]`));
    r.miouScores.forEach((v, j) => close(v, want.miou_scores[j] as number, `miou[${j}]`));
    close(r.fgiou, want.fgiou_scores[14] as number, 'fgiou@0.3');
    close(r.miou, want.miou_scores[14] as number, 'miou@0.3');
    assert.deepEqual(r.precisionRecall, want.pr_curve);
    close(r.ap, want.ap, 'ap');
    close(r.best.fgiou, want.best_fgiou, 'best fgiou');
    close(r.best.miou, want.best_miou, 'best miou');
    close(r.best.biniou, want.best_biniou, 'best biniou');
    assert.equal(r.best.fgiouThreshold, want.best_fgiou_t);
    assert.equal(r.best.miouThreshold, want.best_miou_t);
    assert.equal(r.best.biniouThreshold, want.best_biniou_t);
  });
}

test('hand-derived counts: p > t strictly, in float32, with +1 smoothing', () => {
  const t = Math.fround(0.3);
  // 0.3 itself rounds up to float32 0.30000001..., so a pixel at exactly float32(0.3) is not above t = 0.3.
  const counts = sampleCounts([t, 0.31, 0.29, 0.9], [1, 1, 0, 0]);
  const j = 14;
  assert.deepEqual([counts.tp[j], counts.fp[j], counts.fn[j], counts.tn[j]], [1, 1, 1, 1]);
  const m = new PaperMetrics();
  m.add([t, 0.31, 0.29, 0.9], [1, 1, 0, 0]);
  const r = m.result(0.3);
  assert.equal(r.fgiou, 1 / (1 + 1 + 1 + 1));
  assert.equal(r.miou, 1 / 4);
  assert.equal(r.biniou, 0.5 * 0.25 + 0.5 * (1 / 4));
});

test('mIoU averages per class; the default class is the sample', () => {
  const perfect = { p: [0.9, 0.1], g: [1, 0] };
  const wrong = { p: [0.1, 0.9], g: [1, 0] };
  const bySample = new PaperMetrics();
  bySample.add(perfect.p, perfect.g);
  bySample.add(wrong.p, wrong.g);
  // Sample IoUs at 0.5: 1/(1+1) = 0.5 and 0/(1+0+1+1) = 0.
  assert.equal(bySample.result(0.5).miou, 0.25);
  const oneClass = new PaperMetrics();
  oneClass.add(perfect.p, perfect.g, 'cat');
  oneClass.add(wrong.p, wrong.g, 'cat');
  assert.equal(oneClass.result(0.5).miou, 1 / (1 + 1 + 1 + 1));
  assert.equal(oneClass.result(0.5).classes, 1);
});

test('no positive prediction at any threshold gives AP 0', () => {
  const m = new PaperMetrics();
  m.add([0, 0, 0], [1, 0, 0]);
  assert.equal(m.result().ap, 0);
});

test('bad arguments raise InvalidArgumentError', () => {
  assert.throws(() => sampleCounts([0.1, 0.2], [1]), InvalidArgumentError);
  assert.throws(() => sampleCounts([NaN], [1]), /NaN at index 0/);
  assert.throws(() => new PaperMetrics().result(0.31), /threshold: expected one of the grid values/);
  assert.throws(() => new PaperMetrics([0.5, 0.4]).add([0.1], [0]), /strictly increasing/);
  assert.throws(() => new OfficialMetrics().add([1], [1, 0]), InvalidArgumentError);
});

test('official protocol: mean IoU (0 on empty intersection), cumulative IoU and strict accuracy thresholds', () => {
  const m = new OfficialMetrics();
  assert.equal(m.add([1, 1, 0, 0], [1, 1, 0, 0]), 1);
  assert.equal(m.add([1, 1, 1, 0], [1, 0, 0, 0]), 1 / 3);
  assert.equal(m.add([0, 0, 0, 0], [0, 0, 1, 1]), 0);
  assert.equal(m.add([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]), 0.6);
  const r = m.result();
  assert.equal(r.samples, 4);
  close(r.meanIou, (1 + 1 / 3 + 0 + 0.6) / 4, 'mean');
  close(r.cumIou, (2 + 1 + 0 + 6) / (2 + 3 + 2 + 10), 'cum');
  // 0.6 is not strictly above 0.6.
  assert.deepEqual(r.accuracy, { '0.5': 0.5, '0.6': 0.25, '0.7': 0.25, '0.8': 0.25, '0.9': 0.25 });
});
