/**
 * Every entry of package.json's `exports` maps to a source module that exists and exports something, and the
 * `./train` entry offers the training API the README and the examples use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const root = path.join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; default: string }> };

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
  for (const name of ['runTrain', 'train', 'evaluate', 'makeSynthetic', 'segmentationLoss', 'softDiceLoss', 'rasterizePolygons', 'trainingPreset', 'tinyConfig', 'demoConfig', 'prepareSample']) {
    assert.equal(typeof mod[name], 'function', name);
  }
  for (const name of ['PhraseCutDataset', 'SamplePipeline', 'SegmentationTask', 'AdamW', 'CosineSchedule', 'FeatureCache', 'PaperMetrics', 'OfficialMetrics']) {
    assert.equal(typeof mod[name], 'function', name);
    assert.match(String(mod[name]), /^class /, `${name} is a class`);
  }
  assert.deepEqual(mod.SEGMENTATION_LOSSES, ['bce', 'bce+dice']);
  assert.ok((mod.TRAINING_PRESET_NAMES as string[]).includes('demo'));
});
