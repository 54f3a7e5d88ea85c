/**
 * Look inside the model: capture intermediate activations by their Hugging Face module names during a normal
 * forward, then draw attention heatmaps over the image.
 *
 *   npx tsx examples/capture_activations.ts [IMAGE] [MODEL] [OUT] [PROMPT]
 *
 * Keys are what a PyTorch forward hook on the same module sees: `<name>` (output), `<name>:input`,
 * `<name>:attn_weights` (attention probabilities). The FiLM-modulated tokens are the input of the decoder layer at
 * `config.conditional_layer`, hence `decoder.layers.0:input` below.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ClipSeg, EXAMPLES_DIR, HEATMAP_CAPTURES, computeHeatmaps, loadImage, renderHeatmap, savePng } from '../src/index.js';

const imagePath = process.argv[2] ?? path.join(EXAMPLES_DIR, 'shapes.jpg');
const model = process.argv[3];
const out = process.argv[4] ?? path.join('out', 'heatmaps');
const prompt = process.argv[5] ?? 'yellow diamond';

const seg = await ClipSeg.fromPretrained(model);
try {
  const image = await loadImage(imagePath);
  const { captures, logits, pixelValues, conditionalEmbeddings } = await seg.inspect(image, [prompt], {
    capture: ['clip.vision_model.encoder.layers.*', 'decoder.reduces.*', 'decoder.layers.0:input', ...HEATMAP_CAPTURES],
  });
  for (const [name, tensor] of Object.entries(captures)) console.log(`${name.padEnd(62)} [${tensor.shape.join(', ')}]`);

  await fs.mkdir(out, { recursive: true });
  for (const map of computeHeatmaps(captures)) {
    if (map.name.endsWith('_mean') || map.name.includes('rollout') || map.name.startsWith('decoder')) {
      await savePng(path.join(out, `${map.name}.png`), renderHeatmap(map, image));
    }
  }
  console.log(`heatmaps in ${out}/`);
  // Everything inspect returns belongs to the caller.
  tf.dispose([logits, pixelValues, conditionalEmbeddings, ...Object.values(captures)]);
} finally {
  seg.dispose();
}
