/**
 * `clipseg inspect`: run CLIPSegForImageSegmentation on tensors from a safetensors file and write every output
 * under transformers' field names (`logits`, `vision_model_output.hidden_states.3`, `grad.decoder.film_mul.weight`,
 * ...), so that a run can be compared tensor by tensor with PyTorch.
 */
import * as tf from '@tensorflow/tfjs';
import { type BackendName, selectBackend } from '../backend.js';
import { InvalidArgumentError } from '../errors.js';
import '../io/pretrained.js';
import { readSafetensors, type SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import { CLIPSegForImageSegmentation, type SegmentationInputs } from '../models/clipseg_segmentation.js';
import { tfjsToHf } from '../models/layout.js';
import { segmentationOutputNames } from '../models/output_names.js';
import { disposeOutput } from '../models/tidy.js';
import { INSPECT_INPUTS } from './commands/inspect.js';

export interface InspectOptions {
  /** Model folder (HF or tfjs layout) or hub id. */
  model: string;
  /** Safetensors file of inputs, named as in transformers. */
  inputs: string;
  /** Where to write the outputs (safetensors, written atomically). */
  out: string;
  hiddenStates?: boolean;
  attentions?: boolean;
  /** Also write `grad.<key>` for every trainable parameter (HF layout); needs `labels`. */
  grads?: boolean;
  backend?: BackendName;
}

export interface InspectSummary {
  out: string;
  backend: string;
  /** Which input conditioned the decoder. */
  prompt: 'input_ids' | 'conditional_pixel_values' | 'conditional_embeddings';
  tensors: { name: string; shape: number[] }[];
}

const INTEGER_DTYPES = new Set(['I64', 'I32', 'U8', 'BOOL']);

/** The model inputs stored in a tensor file under transformers' names; unknown names and a missing `pixel_values` are errors. */
export function readInputs(file: SafetensorsFile): SegmentationInputs {
  const accepted = Object.keys(INSPECT_INPUTS);
  for (const key of file.keys()) {
    if (!accepted.includes(key)) {
      throw new InvalidArgumentError(`${file.source}: unknown input tensor '${key}' (expected some of ${accepted.join(', ')})`);
    }
  }
  if (!file.has('pixel_values')) throw new InvalidArgumentError(`${file.source}: no 'pixel_values' tensor`);
  const inputs: Record<string, tf.Tensor> = {};
  for (const key of file.keys()) {
    const { dtype, shape } = file.info(key);
    const name = INSPECT_INPUTS[key as keyof typeof INSPECT_INPUTS];
    // Token ids may be stored as floats; the model checks that they are whole numbers.
    inputs[name] = INTEGER_DTYPES.has(dtype) ? tf.tensor(file.getInt32(key), [...shape], 'int32') : tf.tensor(file.getFloat32(key), [...shape], 'float32');
  }
  return inputs as unknown as SegmentationInputs;
}

function promptOf(inputs: SegmentationInputs): InspectSummary['prompt'] {
  if (inputs.conditionalEmbeddings !== undefined) return 'conditional_embeddings';
  if (inputs.inputIds !== undefined) return 'input_ids';
  return 'conditional_pixel_values';
}

/** Gradients of the loss w.r.t. the trainable parameters, in HF layout under `grad.<key>`. */
function lossGradients(model: CLIPSegForImageSegmentation, inputs: SegmentationInputs): Record<string, { shape: number[]; data: Float32Array }> {
  const params = model.parameters().filter((p) => p.trainable);
  const { value, grads } = tf.variableGrads(() => model.forward(inputs, { computePooled: false }).loss!, params.map((p) => p.variable));
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const p of params) {
    const grad = grads[p.variable.name];
    if (grad !== undefined) out[`grad.${p.key}`] = tfjsToHf(p.key, p.shape, grad.dataSync() as Float32Array);
  }
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

export async function runInspect(options: InspectOptions): Promise<InspectSummary> {
  for (const key of ['model', 'inputs', 'out'] as const) {
    if (typeof options[key] !== 'string' || options[key].length === 0) throw new InvalidArgumentError(`inspect: --${key} is required`);
  }
  const backend = await selectBackend(options.backend);
  const file = await readSafetensors(options.inputs);
  const inputs = readInputs(file);
  if (options.grads && inputs.labels === undefined) {
    tf.dispose(Object.values(inputs));
    throw new InvalidArgumentError(`inspect: --grads needs a 'labels' tensor in ${options.inputs}`);
  }
  const model = await CLIPSegForImageSegmentation.fromPretrained(options.model).catch((err: unknown) => {
    tf.dispose(Object.values(inputs));
    throw err;
  });
  try {
    const output = model.forward({ ...inputs, outputHiddenStates: options.hiddenStates ?? false, outputAttentions: options.attentions ?? false });
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [name, t] of Object.entries(segmentationOutputNames(output))) {
      tensors[name] = { dtype: 'F32', shape: [...t.shape], data: t.dataSync() as Float32Array };
    }
    disposeOutput(output);
    if (options.grads) {
      for (const [name, g] of Object.entries(lossGradients(model, inputs))) tensors[name] = { dtype: 'F32', ...g };
    }
    await writeSafetensors(options.out, tensors, { producer: 'clipseg inspect', backend });
    return {
      out: options.out,
      backend,
      prompt: promptOf(inputs),
      tensors: Object.entries(tensors).map(([name, t]) => ({ name, shape: t.shape })),
    };
  } finally {
    tf.dispose(Object.values(inputs));
    model.dispose();
  }
}

export function formatInspectSummary(summary: InspectSummary): string {
  const lines = summary.tensors.map((t) => `${t.name} [${t.shape.join(', ')}]`);
  lines.push(`${summary.tensors.length} tensors (prompt: ${summary.prompt}, backend ${summary.backend}) -> ${summary.out}`);
  return `${lines.join('\n')}\n`;
}
