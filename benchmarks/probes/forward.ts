/**
 * Where the time of one CLIPSeg forward goes on tfjs (rd64-refined geometry, 352x352, random weights from
 * `tools/reference/gen_bench_model.py`): loading, the vision tower up to the deepest extract layer, the text
 * tower, the decoder and head, and whole forwards for 1 and 8 prompts. Fastest of 3 runs after a warm-up.
 * Usage: node --import tsx benchmarks/probes/forward.ts [wasm|cpu] [model folder]
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend.js';
import { loadModelFolder } from '../../src/io/model_files.js';
import { disposeOutput } from '../../src/models/tidy.js';
import { MODEL_DIR } from '../cases.js';

async function best(name: string, fn: () => tf.TensorContainer | object, runs = 3): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i <= runs; i++) {
    const start = performance.now();
    const out = fn();
    for (const t of tensorsIn(out)) await t.data();
    if (i > 0) fastest = Math.min(fastest, performance.now() - start);
    disposeOutput(out as object);
  }
  console.log(`${name.padEnd(52)} ${fastest.toFixed(0)} ms`);
  return fastest;
}

function tensorsIn(value: unknown, into: tf.Tensor[] = []): tf.Tensor[] {
  if (value instanceof tf.Tensor) into.push(value);
  else if (Array.isArray(value)) value.forEach((v) => tensorsIn(v, into));
  else if (value !== null && typeof value === 'object') Object.values(value).forEach((v) => tensorsIn(v, into));
  return into;
}

const backend = await selectBackend(process.argv[2] ?? 'wasm');
const start = performance.now();
const model = await loadModelFolder(process.argv[3] ?? MODEL_DIR);
console.log(`backend ${backend}; load ${(performance.now() - start).toFixed(0)} ms`);

const pixels = tf.randomNormal([1, 3, 352, 352]) as tf.Tensor4D;
const ids = [[49406, 320, 2368, 49407, 49407, 49407, 49407]];
const ids8 = Array.from({ length: 8 }, (_, i) => [49406, 320 + i, 2368, 539, 320, 1125, 49407]);
const depth = model.decoderDepth;
const vision = await best(`vision tower, ${depth} layers (1 image)`, () => model.visionActivations(pixels));
console.log(`${'  per vision layer'.padEnd(52)} ${(vision / depth).toFixed(0)} ms`);
await best('text tower + projection (8 prompts of 7 tokens)', () => model.conditionalEmbeddings({ inputIds: ids8 }));
const activations = model.visionActivations(pixels);
const conditional = model.conditionalEmbeddings({ inputIds: ids8 });
await best('decoder + refined head (8 prompts)', () => model.decoder.forward(activations, conditional));
await best('forward, 1 prompt, computePooled false', () => model.forward({ pixelValues: pixels, inputIds: ids }, { computePooled: false }));
await best('forward, 8 prompts on 1 image, computePooled false', () => model.forward({ pixelValues: pixels, inputIds: ids8 }, { computePooled: false }));
await best('forward, 1 prompt, all 12 layers and pooled output', () => model.forward({ pixelValues: pixels, inputIds: ids }));
tf.dispose([pixels, conditional, ...activations]);
model.dispose();
