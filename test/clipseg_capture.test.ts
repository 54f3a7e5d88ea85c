import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend.js';
import { ClipSeg, type InspectResult } from '../src/clipseg.js';
import { type SafetensorsFile, readSafetensors } from '../src/io/safetensors.js';
import { loadImage } from '../src/io/image_io.js';
import { HEATMAP_CAPTURES, computeHeatmaps, renderHeatmap } from '../src/inspect/heatmaps.js';
import { colormapTable } from '../src/processor/colormap.js';

const FIXTURE = path.join('test', 'fixtures', 'capture');
const cases = JSON.parse(readFileSync(path.join(FIXTURE, 'cases.json'), 'utf8')) as { image: string; visual_prompt: string; prompts: string[] };
/** Model inputs and outputs stored beside the hook views; they are compared elsewhere. */
const NOT_HOOKS = new Set(['pixel_values', 'input_ids', 'attention_mask', 'conditional_pixel_values', 'logits', 'conditional_embeddings']);

let seg: ClipSeg;

before(async () => {
  await selectBackend('wasm');
  seg = await ClipSeg.fromPretrained(path.join(FIXTURE, 'model'));
});

after(() => seg?.dispose());

function disposeResult(r: InspectResult): void {
  tf.dispose([r.logits, r.pixelValues, r.conditionalEmbeddings, ...Object.values(r.captures)]);
}

/**
 * Every hook view in the fixture must be captured under the same name with the same values. PyTorch saw the image
 * once per prompt; the port shares one image pass, so an image-side capture of batch 1 stands for every row.
 */
function compareWithHooks(reference: SafetensorsFile, captures: Record<string, tf.Tensor>): { checked: number; worst: number } {
  let checked = 0;
  let worst = 0;
  for (const key of reference.keys()) {
    if (NOT_HOOKS.has(key)) continue;
    const got = captures[key];
    assert.ok(got !== undefined, `capture '${key}' is missing`);
    const wantShape = reference.info(key).shape;
    const want = reference.getFloat32(key);
    const values = got.dataSync();
    const rows = got.shape[0] === 1 && wantShape[0]! > 1 ? wantShape[0]! : 1;
    assert.deepEqual([got.shape[0]! * rows, ...got.shape.slice(1)], wantShape, `${key}: shape`);
    for (let i = 0; i < want.length; i++) {
      const diff = Math.abs(values[i % values.length]! - want[i]!);
      if (!(diff <= 1e-4)) assert.fail(`${key}[${i}]: got ${values[i % values.length]}, want ${want[i]}`);
      worst = Math.max(worst, diff);
    }
    checked++;
  }
  return { checked, worst };
}

test('captures of a text-prompt forward equal PyTorch forward hooks (outputs, inputs, attention) within 1e-4', async () => {
  const reference = await readSafetensors(path.join(FIXTURE, 'text.safetensors'));
  const result = await seg.inspect(cases.image, cases.prompts, { capture: ['clip.**', 'decoder.**'] });
  try {
    const { checked, worst } = compareWithHooks(reference, result.captures);
    assert.ok(checked > 100, `compared ${checked} hook views`);
    assert.ok(worst < 1e-4, `worst ${worst}`);
  } finally {
    disposeResult(result);
  }
});

test('captures of a visual-prompt forward, including the second vision pass (#1), equal PyTorch hooks', async () => {
  const reference = await readSafetensors(path.join(FIXTURE, 'visual.safetensors'));
  const result = await seg.inspect(cases.image, { image: cases.visual_prompt }, { capture: ['clip.**', 'decoder.**'] });
  try {
    const { checked } = compareWithHooks(reference, result.captures);
    assert.ok(reference.keys().some((k) => k.includes('#1')) && checked > 100);
  } finally {
    disposeResult(result);
  }
});

test('capture patterns select by glob: one segment per *, inputs and attention by suffix', async () => {
  const result = await seg.inspect(cases.image, cases.prompts[0]!, {
    capture: ['clip.vision_model.encoder.layers.*', 'decoder.layers.*:input', '*.*.encoder.layers.1.self_attn:attn_weights'],
  });
  try {
    const keys = Object.keys(result.captures).sort();
    const expected = [
      'clip.vision_model.encoder.layers.0',
      'clip.vision_model.encoder.layers.0:input',
      'clip.vision_model.encoder.layers.1',
      'clip.vision_model.encoder.layers.1.self_attn:attn_weights',
      'clip.text_model.encoder.layers.1.self_attn:attn_weights',
      'clip.vision_model.encoder.layers.1:input',
      'clip.vision_model.encoder.layers.2',
      'clip.vision_model.encoder.layers.2:input',
      'decoder.layers.0:input',
      'decoder.layers.1:input',
      'decoder.layers.2:input',
    ];
    assert.deepEqual(keys, expected.sort());
  } finally {
    disposeResult(result);
  }
});

test('heatmaps: CLS attention per layer and head plus mean, rollout, decoder norms per prompt', async () => {
  const before = tf.memory().numTensors;
  const result = await seg.inspect(cases.image, cases.prompts.slice(0, 2), { capture: [...HEATMAP_CAPTURES] });
  const maps = computeHeatmaps(result.captures);
  disposeResult(result);
  assert.equal(tf.memory().numTensors, before);
  const names = maps.map((m) => m.name);
  // 3 vision layers x (4 heads + mean), one rollout, 3 decoder layers x 2 prompts; grid 4x4 for 64 px / patch 16.
  assert.equal(maps.length, 3 * 5 + 1 + 3 * 2);
  assert.ok(names.includes('vision_layer0_head3') && names.includes('vision_layer2_mean') && names.includes('vision_rollout'));
  assert.ok(names.includes('decoder_layer2_prompt1'));
  assert.ok(maps.every((m) => m.side === 4 && m.data.length === 16 && m.data.every(Number.isFinite)));
  const mean = maps.find((m) => m.name === 'vision_layer0_mean')!;
  const heads = [0, 1, 2, 3].map((h) => maps.find((m) => m.name === `vision_layer0_head${h}`)!);
  mean.data.forEach((v, k) => assert.ok(Math.abs(v - heads.reduce((s, h) => s + h.data[k]!, 0) / 4) < 1e-6));
});

test('renderHeatmap normalises, upsamples over the image and blends the colour map', async () => {
  const image = await loadImage(cases.image);
  const data = new Float32Array(16).fill(2);
  data[0] = 7;
  const out = renderHeatmap({ name: 'spot', data, side: 4 }, image, { alpha: 1, colormap: 'viridis' });
  assert.equal(out.width, image.width);
  assert.equal(out.height, image.height);
  const table = colormapTable('viridis');
  assert.deepEqual([...out.data.subarray(0, 3)], [...table.subarray(255 * 3, 256 * 3)], 'the maximum patch takes the top colour');
  const last = (out.width * out.height - 1) * 3;
  assert.deepEqual([...out.data.subarray(last, last + 3)], [...table.subarray(0, 3)], 'the minimum takes the bottom colour');
  const half = renderHeatmap({ name: 'spot', data, side: 4 }, image, { alpha: 0.5 });
  assert.equal(half.data[last], Math.round(image.data[last]! * 0.5 + colormapTable('inferno')[0]! * 0.5));
});
