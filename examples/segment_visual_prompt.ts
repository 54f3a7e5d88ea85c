/**
 * Segment with an image prompt: "find things like the region in this box" instead of a text. The region is
 * prepared as CLIPSeg was trained (background darkened and blurred, cropped around the region), then its CLIP
 * image embedding conditions the decoder exactly as a text embedding would.
 *
 *   npx tsx examples/segment_visual_prompt.ts [QUERY_IMAGE] [PROMPT_IMAGE] [x,y,w,h] [MODEL] [TEXT]
 *
 * Defaults: in the example shapes picture, look for what the box marks (the blue triangle), and compare with the
 * text prompt naming it. The shipped demo model was trained with text prompts only, so there the image prompt runs
 * but finds little; image prompts are meant for checkpoints trained with them, such as the published
 * CIDAS/clipseg-rd64-refined (pass it as MODEL).
 */
import * as path from 'node:path';
import { ClipSeg, EXAMPLES_DIR, type PromptBox } from '../src/index.js';

const query = process.argv[2] ?? path.join(EXAMPLES_DIR, 'shapes.jpg');
const promptImage = process.argv[3] ?? path.join(EXAMPLES_DIR, 'shapes.jpg');
const box = (process.argv[4] ?? '20,20,56,51').split(',').map(Number) as unknown as PromptBox;
const model = process.argv[5];
const text = process.argv[6] ?? 'blue triangle';

const seg = await ClipSeg.fromPretrained(model);
try {
  const [byBox, byText] = await seg.segment(query, [{ image: promptImage, box, label: 'the boxed region' }, text]);
  for (const r of [byBox!, byText!]) {
    console.log(`${r.prompt}: ${r.area} pixels above the threshold, max probability ${r.maxProbability.toFixed(3)}`);
  }
  // Agreement of the two masks (intersection over union): both prompts describe the same object.
  let both = 0;
  let either = 0;
  byBox!.mask.forEach((m, i) => {
    both += m & byText!.mask[i]!;
    either += m | byText!.mask[i]!;
  });
  console.log(`IoU between the visual and the text prompt: ${(either === 0 ? 0 : both / either).toFixed(3)}`);
} finally {
  seg.dispose();
}
