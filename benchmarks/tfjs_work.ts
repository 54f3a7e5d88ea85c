/**
 * The work clipseg-tfjs does in each case, shared by the timed side (`tfjs_side.ts`) and the kernel profile
 * (`profile.ts`). Segmentation shares one vision pass between the prompts of an image and skips the vision layers
 * the decoder does not read (`computePooled: false`), as a logits-only caller would. The training step runs the
 * frozen CLIP outside the gradient tape and trains the decoder with AdamW.
 */
import * as tf from '@tensorflow/tfjs';
import { ShapeError, TrainingError } from '../src/errors.js';
import { loadImage } from '../src/io/image_io.js';
import { loadModelFolder } from '../src/io/model_files.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { bceWithLogits } from '../src/models/losses.js';
import { loadProcessorFrom } from '../src/pipeline/sources.js';
import { AdamW } from '../src/train/adamw.js';
import { MODEL_DIR, PROMPTS, SEGMENT_CASES, TRAIN_BATCH, TRAIN_OPTIMIZER, imagePath } from './cases.js';
import type { RunTiming } from './side_io.js';
import { tensorsIn } from './tensors.js';

export interface Work {
  /** One run: image files to logits on the host, or one optimizer step. */
  run(): Promise<RunTiming>;
  /** Releases the model and everything prepared. */
  dispose(): void;
  notes: string[];
}

export async function segmentWork(name: keyof typeof SEGMENT_CASES): Promise<Work> {
  const spec = SEGMENT_CASES[name];
  const model = await loadModelFolder(MODEL_DIR);
  const processor = await loadProcessorFrom(MODEL_DIR);
  const files = Array.from({ length: spec.images }, (_, i) => imagePath(i));
  const texts = PROMPTS.slice(0, spec.prompts);
  return {
    async run() {
      const images = await Promise.all(files.map((f) => loadImage(f)));
      const inputs = processor.call({ text: [...texts], images, padding: true });
      const start = performance.now();
      const out = model.forward(
        { pixelValues: inputs.pixelValues!, inputIds: inputs.inputIds!, attentionMask: inputs.attentionMask! },
        { computePooled: false },
      );
      const logits = await out.logits.data();
      const modelS = (performance.now() - start) / 1000;
      if (logits.length !== spec.prompts * 352 * 352) throw new ShapeError('logits', `[${spec.prompts}, 352, 352]`, out.logits.shape);
      tf.dispose(tensorsIn([out, inputs]));
      return { modelS };
    },
    dispose: () => model.dispose(),
    notes: ['logits only (computePooled: false): vision layers 10-11 are skipped'],
  };
}

export async function trainWork(): Promise<Work> {
  const model = await loadModelFolder(MODEL_DIR);
  const file = await readSafetensors(TRAIN_BATCH);
  const floats = (key: string) => tf.tensor(file.getFloat32(key), [...file.info(key).shape], 'float32');
  const ints = (key: string) => tf.tensor(file.getInt32(key), [...file.info(key).shape], 'int32');
  const pixels = floats('pixel_values') as tf.Tensor4D;
  const inputIds = ints('input_ids') as tf.Tensor2D;
  const attentionMask = ints('attention_mask') as tf.Tensor2D;
  const labels = floats('labels') as tf.Tensor3D;
  const trainable = model.namedParameters().filter((p) => p.trainable);
  const keyOf = new Map(trainable.map((p) => [p.variable.name, p.name]));
  const varList = trainable.map((p) => p.variable);
  const { lr, ...adam } = TRAIN_OPTIMIZER;
  const optimizer = new AdamW(
    trainable.map((p): [string, tf.Variable] => [p.name, p.variable]),
    adam,
  );
  return {
    async run() {
      // CLIP is frozen: its features are computed outside the tape, so the tape holds the decoder alone.
      const activations = model.visionActivations(pixels);
      const conditional = model.conditionalEmbeddings({ inputIds, attentionMask });
      const { value, grads } = tf.variableGrads(
        () => bceWithLogits(model.decoder.forward(activations, conditional).logits, labels),
        varList,
      );
      optimizer.applyGradients(Object.fromEntries(Object.entries(grads).map(([name, g]) => [keyOf.get(name)!, g])), lr);
      const loss = (await value.data())[0]!;
      tf.dispose([value, ...Object.values(grads), ...activations, conditional]);
      if (!Number.isFinite(loss)) throw new TrainingError(`loss: expected a finite value, got ${loss}`);
      return {};
    },
    dispose() {
      optimizer.dispose();
      tf.dispose([pixels, inputIds, attentionMask, labels]);
      model.dispose();
    },
    notes: [`trainable parameters: ${varList.reduce((n, v) => n + v.size, 0)}`],
  };
}

/** One load: the model folder and the processor, ready to run; the model is released afterwards. */
export async function loadOnce(): Promise<RunTiming> {
  const model = await loadModelFolder(MODEL_DIR);
  await loadProcessorFrom(MODEL_DIR);
  model.dispose();
  return {};
}
