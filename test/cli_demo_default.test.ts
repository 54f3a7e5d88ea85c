/**
 * The README's main command: `clipseg segment` with no --model uses the shipped demo model, offline, and its masks
 * land on the objects the prompts name (checked against the picture's own colours, not against stored outputs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadImage } from '../src/io/image_io.js';

const IMAGE = path.join('assets', 'examples', 'shapes.jpg');

/** Share of a mask's pixels whose picture colour satisfies `isColour`. */
function precision(mask: { data: Uint8Array; channels: number }, picture: { data: Uint8Array; channels: number }, isColour: (r: number, g: number, b: number) => boolean): number {
  let inside = 0;
  let hits = 0;
  for (let i = 0; i * mask.channels < mask.data.length; i++) {
    if (mask.data[i * mask.channels]! < 128) continue;
    inside++;
    const p = i * picture.channels;
    if (isColour(picture.data[p]!, picture.data[p + 1]!, picture.data[p + 2]!)) hits++;
  }
  assert.ok(inside > 0, 'the mask is not empty');
  return hits / inside;
}

test('segment without --model runs offline on the shipped demo model and finds the named shapes', async () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'clipseg-demo-'));
  try {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'segment', IMAGE, '--prompt', 'blue triangle', '--prompt', 'yellow diamond', '--out', out, '--json'],
      { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } },
    );
    assert.equal(run.status, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as { model: string; images: { overlay: string; prompts: { prompt: string; mask: string }[] }[] };
    assert.match(summary.model, /demo-model/);
    const picture = await loadImage(IMAGE);
    const [blue, yellow] = summary.images[0]!.prompts;
    await loadImage(summary.images[0]!.overlay);
    const isBlue = (r: number, g: number, b: number): boolean => b > 150 && r < 100 && g < 130;
    const isYellow = (r: number, g: number, b: number): boolean => r > 180 && g > 160 && b < 120;
    assert.ok(precision(await loadImage(blue!.mask), picture, isBlue) > 0.5, 'the blue-triangle mask lies mostly on blue pixels');
    assert.ok(precision(await loadImage(yellow!.mask), picture, isYellow) > 0.5, 'the yellow-diamond mask lies mostly on yellow pixels');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('eval runs the demo model at its own input size (its preprocessor\'s, not 352), reports the paper metrics and writes per-task scores', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'clipseg-demo-eval-'));
  try {
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
    const made = cli('make-synthetic', '--out', data, '--seed', '5', '--images', '8', '--size', '192');
    assert.equal(made.status, 0, made.stderr);
    const perTask = path.join(data, 'scores', 'train.jsonl');
    const run = cli('eval', '--model', path.join('assets', 'demo-model'), '--data', data, '--split', 'train', '--json', '--per-task', perTask, '--breakdown');
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as Record<string, number>;
    assert.ok(result.samples! > 0);
    assert.equal(result.threshold, 0.3);
    for (const key of ['miou', 'fgiou', 'ap']) assert.ok(result[key]! > 0 && result[key]! <= 1, `${key} = ${result[key]}`);
    const scores = readFileSync(perTask, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as { task_id: string; iou: number; pixels: number; target_pixels: number });
    assert.equal(scores.length, result.samples);
    const processor = JSON.parse(readFileSync(path.join('assets', 'demo-model', 'preprocessor_config.json'), 'utf8')) as { size: { height: number; width: number } };
    assert.notEqual(processor.size.height, 352);
    assert.ok(scores.every((s) => s.pixels === processor.size.height * processor.size.width), 'the paper protocol compares at the model\'s input size');
    assert.ok(Math.abs(scores.reduce((a, s) => a + s.iou, 0) / scores.length - result.miou!) < 1e-9, 'mIoU is the mean of the per-task IoUs');
    assert.ok(scores.every((s) => typeof s.task_id === 'string' && s.target_pixels > 0));
    assert.deepEqual(readdirSync(path.dirname(perTask)), ['train.jsonl'], 'no temporary file is left beside it');
    const { breakdown } = JSON.parse(run.stdout) as { breakdown: Record<'byTargetArea' | 'byDistractor', { name: string; tasks: number; share: number; miou: number }[]> & { tasks: number } };
    assert.equal(breakdown.tasks, result.samples);
    assert.equal(breakdown.byTargetArea.reduce((a, g) => a + g.tasks, 0), result.samples);
    const weighted = breakdown.byTargetArea.reduce((a, g) => a + (g.tasks === 0 ? 0 : g.share * g.miou), 0);
    assert.ok(Math.abs(weighted - result.miou!) < 1e-9, 'the area groups partition the tasks');
    const kinds = breakdown.byDistractor.map((g) => g.name);
    assert.deepEqual(kinds, ['none', 'same attribute, other name', 'same name, other attributes', 'both'], 'every synthetic task has a name and annotation ids');
    assert.equal(breakdown.byDistractor.reduce((a, g) => a + g.tasks, 0), result.samples);
    const intoFolder = cli('eval', '--model', path.join('assets', 'demo-model'), '--data', data, '--split', 'train', '--per-task', data);
    assert.equal(intoFolder.status, 2, intoFolder.stderr);
    assert.match(intoFolder.stderr, /--per-task: expected a file path, got the folder/);
    assert.equal(intoFolder.stdout, '', 'refused before evaluating, so no table is printed');
    const underFile = cli('eval', '--model', path.join('assets', 'demo-model'), '--data', data, '--per-task', path.join(perTask, 'x.jsonl'));
    assert.equal(underFile.status, 2, underFile.stderr);
    assert.match(underFile.stderr, /--per-task: cannot write to the folder .*train\.jsonl \(.*train\.jsonl is a file\)/);
    const forced = cli('eval', '--model', path.join('assets', 'demo-model'), '--data', data, '--size', '100', '--json');
    assert.notEqual(forced.status, 0, 'an input size that is not a multiple of the patch size is refused');
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
