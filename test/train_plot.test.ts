import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Jimp, intToRGBA } from 'jimp';
import { renderLossPlot } from '../src/train/loss_plot.js';
import { InvalidArgumentError } from '../src/errors.js';

/** Mean row of the moving-average (blue) pixels in a column band. */
function blueRow(image: Awaited<ReturnType<typeof Jimp.read>>, x0: number, x1: number): number {
  let sum = 0;
  let count = 0;
  for (let x = x0; x < x1; x++) {
    for (let y = 0; y < image.bitmap.height; y++) {
      const { r, g, b } = intToRGBA(image.getPixelColor(x, y));
      if (b > 150 && r < 80 && g < 140) {
        sum += y;
        count++;
      }
    }
  }
  assert.ok(count > 0, `blue pixels in columns ${x0}..${x1}`);
  return sum / count;
}

test('the loss plot is a PNG of the requested size whose smoothed curve falls with a falling loss', async () => {
  const points = Array.from({ length: 120 }, (_, i) => ({ step: i + 1, loss: 0.8 * Math.exp(-i / 30) + 0.05 }));
  points.push({ step: 121, loss: Number.NaN });
  const png = await renderLossPlot(points, { width: 320, height: 200 });
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const image = await Jimp.read(Buffer.from(png));
  assert.equal(image.bitmap.width, 320);
  assert.equal(image.bitmap.height, 200);
  // Rows grow downwards: a falling loss puts the right end of the curve lower on the canvas, i.e. at a larger row.
  assert.ok(blueRow(image, 70, 100) < blueRow(image, 260, 300) - 40);
});

test('a flat or single-point curve still renders; no finite point is an error', async () => {
  await renderLossPlot([{ step: 1, loss: 0.5 }]);
  await renderLossPlot([{ step: 1, loss: 0.5 }, { step: 2, loss: 0.5 }]);
  await assert.rejects(renderLossPlot([]), InvalidArgumentError);
  await assert.rejects(renderLossPlot([{ step: 1, loss: Number.POSITIVE_INFINITY }]), (e) => e instanceof InvalidArgumentError && /finite/.test(e.message));
});
