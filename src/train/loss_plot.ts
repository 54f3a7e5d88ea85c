/**
 * Draws the training loss curve as a PNG: axes with tick labels, the per-step loss in light grey and its
 * exponential moving average in blue. Drawn pixel by pixel with jimp so no plotting dependency is needed.
 */
import { Jimp, loadFont, rgbaToInt } from 'jimp';
import { SANS_10_BLACK } from 'jimp/fonts';
import { InvalidArgumentError } from '../errors.js';

export interface LossPoint {
  step: number;
  loss: number;
}

export interface LossPlotOptions {
  width?: number;
  height?: number;
  /** Smoothing factor of the moving average (weight of the newest point). */
  smoothing?: number;
  title?: string;
}

const MARGIN = { left: 56, right: 16, top: 28, bottom: 34 };
const AXIS = rgbaToInt(0, 0, 0, 255);
const GRID = rgbaToInt(225, 225, 225, 255);
const RAW = rgbaToInt(175, 175, 175, 255);
const SMOOTH = rgbaToInt(31, 96, 196, 255);

type Image = InstanceType<typeof Jimp>;

/** Renders `points` (finite losses, increasing steps) and returns the PNG bytes. */
export async function renderLossPlot(points: readonly LossPoint[], options: LossPlotOptions = {}): Promise<Uint8Array> {
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  const alpha = options.smoothing ?? 0.1;
  const finite = points.filter((p) => Number.isFinite(p.loss));
  if (finite.length === 0) throw new InvalidArgumentError('points: expected at least one finite loss value to plot');
  const image = new Jimp({ width, height, color: 0xffffffff });
  const x0 = MARGIN.left;
  const x1 = width - MARGIN.right;
  const y0 = height - MARGIN.bottom;
  const y1 = MARGIN.top;
  const minStep = finite[0]!.step;
  const maxStep = Math.max(finite[finite.length - 1]!.step, minStep + 1);
  const losses = finite.map((p) => p.loss);
  const [low, high] = niceRange(Math.min(...losses), Math.max(...losses));
  const px = (step: number): number => x0 + ((step - minStep) / (maxStep - minStep)) * (x1 - x0);
  const py = (loss: number): number => y0 - ((loss - low) / (high - low)) * (y0 - y1);

  const font = await loadFont(SANS_10_BLACK);
  const yTicks = 5;
  for (let i = 0; i <= yTicks; i++) {
    const value = low + ((high - low) * i) / yTicks;
    const y = Math.round(py(value));
    drawLine(image, x0, y, x1, y, GRID);
    image.print({ font, x: 4, y: y - 6, text: formatTick(value) });
  }
  for (let i = 0; i <= 4; i++) {
    const step = Math.round(minStep + ((maxStep - minStep) * i) / 4);
    const x = Math.round(px(step));
    drawLine(image, x, y0, x, y0 + 4, AXIS);
    image.print({ font, x: x - 10, y: y0 + 7, text: String(step) });
  }
  drawLine(image, x0, y0, x1, y0, AXIS);
  drawLine(image, x0, y0, x0, y1, AXIS);
  image.print({ font, x: x0, y: 8, text: options.title ?? 'training loss (grey: per step, blue: moving average)' });
  image.print({ font, x: x1 - 24, y: y0 + 20, text: 'step' });

  let average = finite[0]!.loss;
  for (let i = 1; i < finite.length; i++) {
    const a = finite[i - 1]!;
    const b = finite[i]!;
    drawLine(image, px(a.step), py(a.loss), px(b.step), py(b.loss), RAW);
  }
  for (let i = 1; i < finite.length; i++) {
    const next = average + alpha * (finite[i]!.loss - average);
    drawLine(image, px(finite[i - 1]!.step), py(average), px(finite[i]!.step), py(next), SMOOTH);
    average = next;
  }
  return new Uint8Array(await image.getBuffer('image/png'));
}

/** A y range padded to round numbers; a flat curve gets a small band around its value. */
function niceRange(min: number, max: number): [number, number] {
  if (max - min < 1e-12) return [min - 0.5 * Math.max(Math.abs(min), 1e-3), max + 0.5 * Math.max(Math.abs(max), 1e-3)];
  const span = max - min;
  const unit = 10 ** Math.floor(Math.log10(span / 5));
  return [Math.floor(min / unit) * unit, Math.ceil(max / unit) * unit];
}

function formatTick(value: number): string {
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e4) ? value.toExponential(1) : value.toPrecision(3);
}

/** Bresenham's line, clipped to the image. */
function drawLine(image: Image, xa: number, ya: number, xb: number, yb: number, color: number): void {
  let x = Math.round(xa);
  let y = Math.round(ya);
  const xEnd = Math.round(xb);
  const yEnd = Math.round(yb);
  const dx = Math.abs(xEnd - x);
  const dy = -Math.abs(yEnd - y);
  const sx = x < xEnd ? 1 : -1;
  const sy = y < yEnd ? 1 : -1;
  let err = dx + dy;
  const { width, height } = image.bitmap;
  for (;;) {
    if (x >= 0 && y >= 0 && x < width && y < height) image.setPixelColor(color, x, y);
    if (x === xEnd && y === yEnd) return;
    const e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y += sy;
    }
  }
}
