import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { selectBackend } from '../src/backend.js';
import { ClipSeg } from '../src/clipseg.js';
import { DEMO_MODEL_DIR } from '../src/pipeline/assets.js';
import { PhraseCutDataset } from '../src/train/phrasecut.js';
import { makeSynthetic } from '../src/train/synthetic.js';

/** Synthetic images the demo model never saw: its training data used other seeds. */
const SEED = 90210;
const work = mkdtempSync(path.join(os.tmpdir(), 'clipseg-demo-'));
let dataset: PhraseCutDataset;

before(async () => {
  await selectBackend('wasm');
  await makeSynthetic({ out: work, seed: SEED, images: 12 });
  dataset = await PhraseCutDataset.open(work, { split: 'train_val_test_miniv' });
});

after(async () => {
  await dataset?.close();
  rmSync(work, { recursive: true, force: true });
});

function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    union += a[i]! | b[i]!;
  }
  return union === 0 ? 1 : inter / union;
}

test('the shipped demo model (the default) finds the shape a phrase names in unseen synthetic scenes', async () => {
  const seg = await ClipSeg.fromPretrained();
  try {
    const samples = [];
    for (let i = 0; i < Math.min(dataset.length, 40); i++) {
      const sample = await dataset.loadSample(i);
      if (sample !== null) samples.push(sample);
    }
    assert.ok(samples.length >= 30, `loaded ${samples.length} tasks`);
    let right = 0;
    let other = 0;
    let others = 0;
    for (const sample of samples) {
      const [result] = await seg.segment(sample.image, sample.task.phrase);
      assert.deepEqual([result!.width, result!.height], [sample.image.width, sample.image.height]);
      right += iou(result!.mask, sample.mask);
      // The same mask scored against what another phrase of the same picture names: the prompt must matter.
      const rival = samples.find((s) => s.task.imageId === sample.task.imageId && s.task.phrase !== sample.task.phrase);
      if (rival !== undefined) {
        other += iou(result!.mask, rival.mask);
        others++;
      }
    }
    const mean = right / samples.length;
    const rivalMean = other / others;
    // Measured: 0.65 against 0.05 (the model's own held-out test split gives mIoU 0.70, see assets/demo-model/REPORT.md).
    assert.ok(mean > 0.3, `mean IoU ${mean.toFixed(3)} over ${samples.length} phrases`);
    assert.ok(others >= 10 && mean > 4 * rivalMean, `IoU ${mean.toFixed(3)} with the named shape, ${rivalMean.toFixed(3)} with another phrase's`);
  } finally {
    seg.dispose();
  }
});

test('clipseg segment runs offline on the demo model when no --model is given', async () => {
  const sample = (await dataset.loadSample(0))!;
  const image = path.join(work, 'images', `${sample.task.imageId}.jpg`);
  const out = path.join(work, 'out');
  const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join('src', 'cli', 'main.ts'), 'segment', image, '-p', sample.task.phrase, '-o', out, '--json'],
      { env: { ...process.env, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' } },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr }),
    );
  });
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { model: string; images: { prompts: { prompt: string; area: number }[] }[] };
  assert.match(summary.model, /demo model/);
  assert.equal(summary.images[0]!.prompts[0]!.prompt, sample.task.phrase);
  assert.ok(summary.images[0]!.prompts[0]!.area > 0);
  assert.ok(DEMO_MODEL_DIR.endsWith(path.join('assets', 'demo-model')));
});
