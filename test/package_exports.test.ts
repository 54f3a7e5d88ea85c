/**
 * Every entry of package.json's `exports` maps to a source module that exists and exports something, the
 * `./train` entry offers the training API the README and the examples use, and the `clipseg` bin is runnable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const root = path.join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, { types: string; default: string }>;
  bin: Record<string, string>;
};

/** ./dist/src/train/index.js -> src/train/index.ts (the build keeps the source tree under dist/). */
function sourceOf(built: string): string {
  assert.match(built, /^\.\/dist\/.+\.js$/, built);
  return path.join(root, built.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'));
}

test('each exports entry points at an existing module with exports, types beside the code', async () => {
  assert.deepEqual(Object.keys(pkg.exports).sort(), ['.', './browser', './train', './weights-converter']);
  for (const [entry, target] of Object.entries(pkg.exports)) {
    assert.equal(target.types, target.default.replace(/\.js$/, '.d.ts'), entry);
    const source = sourceOf(target.default);
    assert.ok(existsSync(source), `${entry}: ${source}`);
    const mod = (await import(source)) as Record<string, unknown>;
    assert.ok(Object.keys(mod).length > 0, `${entry} exports nothing`);
  }
});

test('clipseg-tfjs/train exposes the training, data and evaluation API', async () => {
  const mod = (await import(sourceOf(pkg.exports['./train']!.default))) as Record<string, unknown>;
  for (const name of ['runTrain', 'train', 'evaluate', 'breakdownScores', 'distractor', 'makeSynthetic', 'segmentationLoss', 'softDiceLoss', 'rasterizePolygons', 'trainingPreset', 'tinyConfig', 'demoConfig', 'prepareSample']) {
    assert.equal(typeof mod[name], 'function', name);
  }
  for (const name of ['PhraseCutDataset', 'SamplePipeline', 'SegmentationTask', 'AdamW', 'CosineSchedule', 'FeatureCache', 'PaperMetrics', 'OfficialMetrics']) {
    assert.equal(typeof mod[name], 'function', name);
    assert.match(String(mod[name]), /^class /, `${name} is a class`);
  }
  assert.deepEqual(mod.SEGMENTATION_LOSSES, ['bce', 'bce+dice']);
  assert.ok((mod.TRAINING_PRESET_NAMES as string[]).includes('demo'));
});

// `npx clipseg` in a clone runs the bin file itself. npm sets its exec bit on some runs and not on others (seen: not
// once node_modules/.package-lock.json is out of date), so the build sets it. Install runs the build (`prepare`).
const noExecBits = process.platform === 'win32' ? 'Windows files have no exec bits (npm writes .cmd shims)' : false;

test('the clipseg bin is the built CLI: a node script with its exec bit set', { skip: noExecBits }, () => {
  assert.deepEqual(Object.keys(pkg.bin), ['clipseg']);
  const built = pkg.bin.clipseg!;
  assert.equal(sourceOf(built), path.join(root, 'src', 'cli', 'main.ts'));
  const file = path.join(root, built);
  assert.ok(existsSync(file), `${built} is missing: run npm run build`);
  assert.equal(statSync(file).mode & 0o111, 0o111, `${built} is not executable`);
  assert.match(readFileSync(file, 'utf8'), /^#!\/usr\/bin\/env node\n/);
});
