/** The model reference fixtures (`tools/reference/gen_model.py`): cases, prompt modes, inputs and gradients. */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { SafetensorsFile } from '../../src/io/safetensors.js';
import type { CLIPSegForImageSegmentation, SegmentationInputs } from '../../src/models/clipseg_segmentation.js';
import { tfjsToHf } from '../../src/models/layout.js';
import { fixturePath, fixtureTensor } from './fixtures.js';
import { maxAbs, maxAbsDiff } from './assert_close.js';

export const MODEL_CASES = ['refined_argmax', 'plain_eos', 'refined_rd12', 'narrow352'] as const;

/** Prompt modes of a case: '' is the text prompt (inputs.safetensors / outputs.safetensors). */
export function modesOf(caseName: string): string[] {
  return fs
    .readdirSync(fixturePath('model', caseName))
    .map((f) => /^inputs(?:_(\w+))?\.safetensors$/.exec(f)?.[1] ?? (f === 'inputs.safetensors' ? '' : undefined))
    .filter((m): m is string => m !== undefined)
    .sort();
}

export function modeFile(kind: 'inputs' | 'outputs', mode: string): string {
  return mode === '' ? `${kind}.safetensors` : `${kind}_${mode}.safetensors`;
}

/** Segmentation inputs from an inputs file (HF names -> option names); the caller disposes the tensors. */
export function segmentationInputs(file: SafetensorsFile): SegmentationInputs {
  const get = (key: string) => (file.has(key) ? fixtureTensor(file, key) : undefined);
  const inputs: Record<string, tf.Tensor | undefined> = {
    pixelValues: get('pixel_values'),
    inputIds: get('input_ids'),
    attentionMask: get('attention_mask'),
    conditionalPixelValues: get('conditional_pixel_values'),
    conditionalEmbeddings: get('conditional_embeddings'),
    labels: get('labels'),
  };
  for (const key of Object.keys(inputs)) if (inputs[key] === undefined) delete inputs[key];
  return inputs as unknown as SegmentationInputs;
}

export function disposeInputs(inputs: object): void {
  tf.dispose(Object.values(inputs).filter((v) => v instanceof tf.Tensor));
}

/** Gradients of the BCE loss w.r.t. the model's trainable parameters, keyed `grad.<key>` in HF layout. */
export function lossGradients(model: CLIPSegForImageSegmentation, inputs: SegmentationInputs): { loss: number; grads: Record<string, Float32Array> } {
  const params = model.parameters().filter((p) => p.trainable);
  const byName = new Map(params.map((p) => [p.variable.name, p]));
  const { value, grads } = tf.variableGrads(() => model.forward(inputs).loss!, params.map((p) => p.variable));
  const out: Record<string, Float32Array> = {};
  for (const [name, grad] of Object.entries(grads)) {
    const p = byName.get(name)!;
    out[`grad.${p.key}`] = tfjsToHf(p.key, p.shape, grad.dataSync() as Float32Array).data;
  }
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, grads: out };
}

/**
 * Gradient error relative to the tensor's largest reference value. Tensors whose true gradient is zero (e.g. a
 * key bias, which softmax ignores) hold only rounding noise; their scale is floored at 1e-3 of the largest
 * gradient in the file.
 */
export function gradientErrors(actual: Record<string, Float32Array>, expected: SafetensorsFile): Record<string, number> {
  const keys = expected.keys().filter((k) => k.startsWith('grad.'));
  const globalMax = Math.max(...keys.map((k) => maxAbs(expected.getFloat32(k))));
  const errors: Record<string, number> = {};
  for (const key of keys) {
    const ref = expected.getFloat32(key);
    const got = actual[key];
    errors[key] = got === undefined ? Infinity : maxAbsDiff(got, ref) / Math.max(maxAbs(ref), 1e-3 * globalMax);
  }
  for (const key of Object.keys(actual)) if (!(key in errors)) errors[key] = Infinity;
  return errors;
}
