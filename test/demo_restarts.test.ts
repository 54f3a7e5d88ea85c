import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoRestarts, restartSuffix } from '../scripts/demo_restarts.js';
import { InvalidArgumentError } from '../src/errors.js';
import { DEMO_RESTARTS, type DemoRestart } from '../src/train/presets.js';

const PRESETS: DemoRestart[] = [
  { steps: 1000, imageSize: 160, lr: 5e-4, minLr: 1e-5, warmupSteps: 100, microBatches: 1 },
  { steps: 800, imageSize: 192, lr: 3e-4, minLr: 2e-5, warmupSteps: 50, microBatches: 4 },
];

test('the default restart options give the preset restarts, warm-up capped at a quarter of each run', () => {
  const runs = demoRestarts(DEMO_RESTARTS.map((r) => r.steps).join(','));
  assert.deepEqual(runs, DEMO_RESTARTS.map((r) => ({
    imageSize: r.imageSize, steps: r.steps, lr: r.lr, minLr: r.minLr, warmup: Math.min(r.warmupSteps, Math.floor(r.steps / 4)),
    batchSize: 16 / r.microBatches, accumulate: r.microBatches,
  })));
  assert.deepEqual(demoRestarts('1000,800', undefined, PRESETS), [
    { imageSize: 160, steps: 1000, lr: 5e-4, minLr: 1e-5, warmup: 100, batchSize: 16, accumulate: 1 },
    { imageSize: 192, steps: 800, lr: 3e-4, minLr: 2e-5, warmup: 50, batchSize: 4, accumulate: 4 },
  ]);
});

test('restart lengths and sizes override the preset, rates stay; restarts beyond the list take the last one\'s', () => {
  assert.deepEqual(demoRestarts('6,3,9', '72,80,88', PRESETS, 8), [
    { imageSize: 72, steps: 6, lr: 5e-4, minLr: 1e-5, warmup: 1, batchSize: 8, accumulate: 1 },
    { imageSize: 80, steps: 3, lr: 3e-4, minLr: 2e-5, warmup: 0, batchSize: 2, accumulate: 4 },
    { imageSize: 88, steps: 9, lr: 3e-4, minLr: 2e-5, warmup: 2, batchSize: 2, accumulate: 4 },
  ]);
  assert.deepEqual(demoRestarts('40,40,40', undefined, PRESETS).map((r) => r.imageSize), [160, 192, 192]);
  assert.deepEqual(demoRestarts('0', undefined, PRESETS), []);
  assert.deepEqual(demoRestarts('0', '999,1', PRESETS), []);
});

test('bad restart options are typed errors naming the option, the expectation and the value', () => {
  const cases: [string, string | undefined, RegExp][] = [
    ['x', undefined, /^--restart-steps: expected an integer, got 'x'$/],
    ['2.5', undefined, /^--restart-steps: expected an integer, got '2.5'$/],
    ['-1', undefined, /^--restart-steps: expected 0 alone \(no restart\) or lengths of 1 or more, got '-1'$/],
    ['0,3', undefined, /^--restart-steps: expected 0 alone .* got '0,3'$/],
    ['4,', undefined, /^--restart-steps: expected an integer, got ''$/],
    ['4,3', '72', /^--restart-size: expected 2 sizes, one per --restart-steps entry, got '72'$/],
    ['4', '72,80', /^--restart-size: expected 1 size, one per --restart-steps entry, got '72,80'$/],
    ['4', '0', /^--restart-size: expected positive sizes in pixels, got '0'$/],
    ['4', 'big', /^--restart-size: expected an integer, got 'big'$/],
  ];
  for (const [steps, sizes, message] of cases) {
    assert.throws(() => demoRestarts(steps, sizes, PRESETS), (e) => e instanceof InvalidArgumentError && message.test(e.message), `${steps} / ${sizes}`);
  }
  // The second restart splits each step into 4 micro-batches; the first takes any batch.
  assert.equal(demoRestarts('4', undefined, PRESETS, 6)[0]!.batchSize, 6);
  assert.throws(() => demoRestarts('4,4', undefined, PRESETS, 6),
    (e) => e instanceof InvalidArgumentError && e.message === '--batch-size: expected a multiple of 4 (restart 2 splits each step into 4 micro-batches), got 6');
  for (const batch of [2.5, 0, Number.NaN]) {
    assert.throws(() => demoRestarts('4', undefined, PRESETS, batch),
      (e) => e instanceof InvalidArgumentError && e.message === `--batch-size: expected a positive integer, got ${batch}`, String(batch));
  }
});

test('restart run folders are run-restart, run-restart-2, ...', () => {
  assert.deepEqual([0, 1, 2].map((i) => `run-restart${restartSuffix(i)}`), ['run-restart', 'run-restart-2', 'run-restart-3']);
});
