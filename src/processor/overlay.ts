/**
 * Overlay of several prompts' masks on the image, each in its own colour, with a legend naming the prompts.
 * Legend text is drawn with a jimp bitmap font (`loadLegendFont` in `src/io/image_io.ts` loads the one jimp ships);
 * without a font the legend is left out.
 */
import { Jimp, type loadFont, measureText } from 'jimp';
import { InvalidArgumentError } from '../errors.js';
import { type RawImage, toRGB, toRGBA } from './image.js';
import { DEFAULT_MASK_THRESHOLD, type ProbabilityMap, resizeProbabilityMap } from './postprocess.js';

export type LegendFont = Awaited<ReturnType<typeof loadFont>>;
export type RGB = readonly [number, number, number];

/** Distinct, colour-blind-aware hues (Okabe-Ito order), reused cyclically beyond eight prompts. */
export const OVERLAY_COLORS: readonly RGB[] = [
  [230, 159, 0],
  [86, 180, 233],
  [0, 158, 115],
  [240, 228, 66],
  [0, 114, 178],
  [213, 94, 0],
  [204, 121, 167],
  [255, 255, 255],
];

export interface OverlayLayer {
  readonly label: string;
  /** probabilities in [0, 1]; resized (bilinear) to the image size when it differs */
  readonly map: ProbabilityMap;
}

export interface OverlayOptions {
  /** foreground where p > threshold; default 0.3 */
  readonly threshold?: number;
  /** opacity of the colour over foreground pixels; default 0.5 */
  readonly alpha?: number;
  readonly colors?: readonly RGB[];
  /** when given, a legend with one colour swatch and label per layer is drawn */
  readonly font?: LegendFont;
  /**
   * 'over' (default): a translucent box in the top-left corner, the image keeps its size; 'right': a white strip
   * added on the right, so no pixel of the image is covered (the output is wider, and taller if the legend is).
   */
  readonly legend?: LegendPlacement;
}

export type LegendPlacement = 'over' | 'right';

function blendPixel(data: Uint8Array, offset: number, color: RGB, alpha: number): void {
  for (let c = 0; c < 3; c++) data[offset + c] = Math.round(data[offset + c]! * (1 - alpha) + color[c]! * alpha);
}

function fillRect(img: RawImage, x0: number, y0: number, w: number, h: number, color: RGB, alpha: number): void {
  const x1 = Math.min(img.width, x0 + w);
  const y1 = Math.min(img.height, y0 + h);
  for (let y = Math.max(0, y0); y < y1; y++) {
    for (let x = Math.max(0, x0); x < x1; x++) blendPixel(img.data, (y * img.width + x) * 3, color, alpha);
  }
}

/** Tints each layer's foreground over an RGB copy of `image` (later layers on top) and draws the legend. */
export function overlayMasks(image: RawImage, layers: readonly OverlayLayer[], options: OverlayOptions = {}): RawImage {
  const rgb = toRGB(image);
  const out: RawImage = { ...rgb, data: rgb.data.slice() };
  const threshold = options.threshold ?? DEFAULT_MASK_THRESHOLD;
  const alpha = options.alpha ?? 0.5;
  const colors = options.colors ?? OVERLAY_COLORS;
  if (!(threshold >= 0 && threshold <= 1)) throw new InvalidArgumentError(`options.threshold: expected a number in [0, 1], got ${threshold}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new InvalidArgumentError(`options.alpha: expected a number in [0, 1], got ${alpha}`);
  if (colors.length === 0) throw new InvalidArgumentError('options.colors: expected at least one colour');
  if (!Array.isArray(layers)) throw new InvalidArgumentError('layers: expected an array of {label, map}');
  const placement = options.legend ?? 'over';
  if (placement !== 'over' && placement !== 'right') throw new InvalidArgumentError(`options.legend: expected 'over' or 'right', got ${String(placement)}`);
  layers.forEach((layer, i) => {
    const color = colors[i % colors.length]!;
    const map =
      layer.map.width === out.width && layer.map.height === out.height
        ? layer.map
        : resizeProbabilityMap(layer.map, { width: out.width, height: out.height });
    const t = Math.fround(threshold);
    for (let p = 0; p < map.data.length; p++) if (map.data[p]! > t) blendPixel(out.data, p * 3, color, alpha);
  });
  if (options.font === undefined || layers.length === 0) return out;
  return drawLegend(out, layers.map((l, i) => ({ label: l.label, color: colors[i % colors.length]! })), options.font, placement);
}

/** `image` copied into the top-left of a white canvas of the given size. */
function onWhiteCanvas(image: RawImage, width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 3).fill(255);
  for (let y = 0; y < image.height; y++) data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), y * width * 3);
  return { data, width, height, channels: 3 };
}

/**
 * Draws a legend (swatch + label per entry) on an RGB image: on a translucent white box in its top-left corner
 * ('over'), or in a white strip added on its right ('right').
 */
export function drawLegend(image: RawImage, entries: readonly { label: string; color: RGB }[], font: LegendFont, placement: LegendPlacement = 'over'): RawImage {
  const rgb = toRGB(image);
  const line = font.common.lineHeight;
  const pad = Math.max(2, Math.round(line / 4));
  const swatch = Math.round(line * 0.75);
  const textWidth = Math.max(...entries.map((e) => measureText(font, e.label)));
  const boxW = pad * 3 + swatch + textWidth;
  const boxH = pad + entries.length * (line + pad);
  const beside = placement === 'right';
  const out: RawImage = beside ? onWhiteCanvas(rgb, rgb.width + boxW, Math.max(rgb.height, boxH)) : { ...rgb, data: rgb.data.slice() };
  const x0 = beside ? rgb.width : 0;
  if (!beside) fillRect(out, 0, 0, boxW, boxH, [255, 255, 255], 0.75);
  entries.forEach((e, i) => {
    const y = pad + i * (line + pad);
    fillRect(out, x0 + pad, y + Math.round((line - swatch) / 2), swatch, swatch, e.color, 1);
  });
  const rgba = toRGBA(out);
  const canvas = Jimp.fromBitmap({ data: new Uint8Array(rgba.data), width: out.width, height: out.height });
  entries.forEach((e, i) => {
    canvas.print({ font, x: x0 + pad * 2 + swatch, y: pad + i * (line + pad), text: e.label });
  });
  return toRGB({ data: new Uint8Array(canvas.bitmap.data), width: out.width, height: out.height, channels: 4 });
}
