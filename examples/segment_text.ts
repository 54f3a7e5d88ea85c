/**
 * Segment a photo with text prompts and save a mask and a probability map per prompt, plus an overlay.
 *
 *   npx tsx examples/segment_text.ts [IMAGE] [MODEL] [OUT] [PROMPT...]
 *
 * Defaults: the synthetic shapes picture and the demo model shipped with the package (no download; it knows only
 * coloured shapes), `out/`. For photographs pass the published model, e.g. `CIDAS/clipseg-rd64-refined`, with
 * your own prompts after it.
 * In your own project import from 'clipseg-tfjs' instead of '../src/index.js'.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ClipSeg, EXAMPLES_DIR, binaryMask, loadImage, loadLegendFont, overlayMasks, probabilityImage, savePng } from '../src/index.js';

const imagePath = process.argv[2] ?? path.join(EXAMPLES_DIR, 'shapes.jpg');
const model = process.argv[3] || undefined; // '' also means the shipped demo model
const out = process.argv[4] ?? 'out';
const prompts = process.argv.length > 5 ? process.argv.slice(5) : ['blue triangle', 'yellow diamond', 'green circle'];

const seg = await ClipSeg.fromPretrained(model);
console.log(`model loaded on the ${seg.backend} backend`);
try {
  const image = await loadImage(imagePath);
  const results = await seg.segment(image, prompts, { threshold: 0.3 });
  await fs.mkdir(out, { recursive: true });
  for (const r of results) {
    const map = { data: r.probabilities, width: r.width, height: r.height };
    const stem = r.prompt.replaceAll(' ', '-');
    await savePng(path.join(out, `${stem}_mask.png`), binaryMask(map, 0.3));
    await savePng(path.join(out, `${stem}_prob.png`), probabilityImage(map, 'viridis'));
    console.log(`${r.prompt}: ${((100 * r.area) / (r.width * r.height)).toFixed(1)}% of the image, max probability ${r.maxProbability.toFixed(3)}`);
  }
  const layers = results.map((r) => ({ label: r.prompt, map: { data: r.probabilities, width: r.width, height: r.height } }));
  await savePng(path.join(out, 'overlay.png'), overlayMasks(image, layers, { font: await loadLegendFont(image.height) }));
  console.log(`wrote ${out}/`);
} finally {
  seg.dispose();
}
