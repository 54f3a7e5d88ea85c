/**
 * Polygon rasterisation with the two rules PhraseCut work uses (training recipe §3.4). Browser-safe.
 *
 * - `'clipseg'`: scikit-image `polygon2mask` on float vertices, as CLIPSeg's data loader does. Pixel (r, c) is in
 *   when the point (x = c, y = r) lies inside the polygon or on its boundary (`_draw.pyx` `_polygon` +
 *   `_shared/geometry.pyx` `point_in_polygon`, scikit-image 0.26), evaluated with the same float64 expressions.
 * - `'official'`: PhraseCut's `polygons_to_mask`: Pillow `ImageDraw.polygon(fill=1, outline=1)` on int-truncated
 *   vertices. With equal fill and outline inks Pillow only runs its filled scan-line engine (`Draw.c`
 *   `polygon_generic`), whose float32 arithmetic is reproduced step by step with `Math.fround`.
 *
 * A polygon is a flat array `[x0, y0, x1, y1, ...]` in pixel coordinates (x right, y down).
 */
import { InvalidArgumentError } from '../errors.js';

export type RasterRule = 'clipseg' | 'official';

export const RASTER_RULES: readonly RasterRule[] = ['clipseg', 'official'];

export type PolygonCoords = ArrayLike<number>;

const f32 = Math.fround;

function checkCanvas(height: number, width: number): void {
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height <= 0 || width <= 0) {
    throw new InvalidArgumentError(`rasterize: expected positive integer height and width, got ${height}x${width}`);
  }
}

function checkPolygon(polygon: PolygonCoords, argument: string): void {
  if (polygon.length % 2 !== 0) {
    throw new InvalidArgumentError(`${argument}: expected a flat [x0, y0, x1, y1, ...] list of even length, got length ${polygon.length}`);
  }
  for (let i = 0; i < polygon.length; i++) {
    if (!Number.isFinite(polygon[i])) {
      throw new InvalidArgumentError(`${argument}: expected finite coordinates, got ${String(polygon[i])} at index ${i}`);
    }
  }
}

/** skimage's vertex tolerance in `point_in_polygon`. */
const VERTEX_EPS = 1e-12;

/**
 * ORs one polygon into `out` (row-major, height x width) with skimage's rule: a pixel centre is in when
 * O'Rourke's crossing test (`_shared/geometry.pyx` `point_in_polygon`) says inside, on an edge or on a vertex.
 * Per row, each edge's crossing test is a monotone step in x (its signed distance has slope -1), so the exact
 * float64 expression is evaluated only around the step to find the first column where it flips.
 */
function fillPixelCentre(polygon: PolygonCoords, height: number, width: number, out: Uint8Array): void {
  const n = polygon.length / 2;
  if (n === 0) return;
  let minX = Infinity;
  let maxX = -Infinity;
  let minY = Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = polygon[2 * i];
    const y = polygon[2 * i + 1];
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  const r0 = Math.trunc(Math.max(0, minY));
  const r1 = Math.min(height - 1, Math.ceil(maxY));
  const c0 = Math.trunc(Math.max(0, minX));
  const c1 = Math.min(width - 1, Math.ceil(maxX));
  if (c0 > c1) return;
  const rightSteps: number[] = [];
  const leftSteps: number[] = [];
  for (let r = r0; r <= r1; r++) {
    rightSteps.length = 0;
    leftSteps.length = 0;
    let j = n - 1;
    for (let i = 0; i < n; i++) {
      const xi = polygon[2 * i];
      const xj = polygon[2 * j];
      const y0 = polygon[2 * i + 1] - r;
      const y1 = polygon[2 * j + 1] - r;
      const right = y0 > 0 !== y1 > 0;
      const left = y0 < 0 !== y1 < 0;
      if (right || left) {
        const f = (x: number): number => ((xi - x) * y1 - (xj - x) * y0) / (y1 - y0);
        const guess = xi + ((xj - xi) * -y0) / (y1 - y0);
        // A right crossing counts for columns x with f(x) > 0, i.e. below the first column where f(x) <= 0.
        if (right) rightSteps.push(firstColumn(f, guess, (v) => v <= 0, c0, c1));
        // A left crossing counts for columns x with f(x) < 0, i.e. from the first such column on.
        if (left) leftSteps.push(firstColumn(f, guess, (v) => v < 0, c0, c1));
      }
      j = i;
    }
    const row = r * width;
    if (rightSteps.length > 0 || leftSteps.length > 0) {
      rightSteps.sort((a, b) => a - b);
      leftSteps.sort((a, b) => a - b);
      let kr = 0;
      let kl = 0;
      for (let c = c0; c <= c1; c++) {
        while (kr < rightSteps.length && rightSteps[kr] <= c) kr++;
        while (kl < leftSteps.length && leftSteps[kl] <= c) kl++;
        // Inside when the right count is odd, on an edge when the parities differ: either way, in.
        if ((rightSteps.length - kr) % 2 === 1 || kl % 2 === 1) out[row + c] = 1;
      }
    }
    for (let i = 0; i < n; i++) {
      const dy = polygon[2 * i + 1] - r;
      if (!(-VERTEX_EPS < dy && dy < VERTEX_EPS)) continue;
      const xv = polygon[2 * i];
      const c = Math.round(xv);
      const dx = xv - c;
      if (c >= c0 && c <= c1 && -VERTEX_EPS < dx && dx < VERTEX_EPS) out[row + c] = 1;
    }
  }
}

/**
 * The smallest integer x with `flipped(f(x))`, for f decreasing in x; `guess` is where f is about 0. Only the
 * step's place relative to the columns lo..hi matters, so the search stays within lo..hi + 1: far outside the
 * canvas, x + 1 === x in float64 and an unbounded walk would never end.
 */
function firstColumn(f: (x: number) => number, guess: number, flipped: (v: number) => boolean, lo: number, hi: number): number {
  if (!Number.isFinite(guess)) return guess > 0 ? Infinity : -Infinity;
  let c = Math.min(Math.max(Math.ceil(guess), lo), hi + 1);
  while (c <= hi && !flipped(f(c))) c++;
  while (c > lo && flipped(f(c - 1))) c--;
  return c;
}

interface Edge {
  x0: number;
  y0: number;
  xmin: number;
  xmax: number;
  ymin: number;
  ymax: number;
  dx: number;
}

function makeEdge(x0: number, y0: number, x1: number, y1: number): Edge {
  return {
    x0,
    y0,
    xmin: Math.min(x0, x1),
    xmax: Math.max(x0, x1),
    ymin: Math.min(y0, y1),
    ymax: Math.max(y0, y1),
    dx: y0 === y1 ? 0 : f32(f32(x1 - x0) / (y1 - y0)),
  };
}

/** C `roundf`: halves away from zero. */
function roundf(v: number): number {
  return v >= 0 ? Math.floor(v + 0.5) : -Math.floor(-v + 0.5);
}

function roundUp(v: number): number {
  return v >= 0 ? Math.floor(f32(v + 0.5)) : -Math.floor(f32(Math.abs(v) + 0.5));
}

function roundDown(v: number): number {
  return v >= 0 ? Math.ceil(f32(v - 0.5)) : -Math.ceil(f32(Math.abs(v) - 0.5));
}

function hline(out: Uint8Array, height: number, width: number, x0: number, y: number, x1: number): void {
  if (y < 0 || y >= height) return;
  if (x0 < 0) x0 = 0;
  else if (x0 >= width) return;
  if (x1 < 0) return;
  if (x1 >= width) x1 = width - 1;
  if (x0 <= x1) out.fill(1, y * width + x0, y * width + x1 + 1);
}

/** Pillow's edge list for a filled polygon on integer vertices (`ImagingDrawPolygon`, fill branch). */
function pillowEdges(xy: readonly number[]): Edge[] {
  const count = xy.length / 2;
  const edges: Edge[] = [];
  let i = 0;
  for (; i < count - 1; i++) {
    const x0 = xy[i * 2];
    const y0 = xy[i * 2 + 1];
    const x1 = xy[i * 2 + 2];
    const y1 = xy[i * 2 + 3];
    if (y0 === y1 && i !== 0 && y0 === xy[i * 2 - 1]) {
      // Consecutive horizontal segments running the same way are merged into the previous edge.
      const last = edges[edges.length - 1];
      const xPrev = xy[i * 2 - 2];
      if (x1 > x0 && x0 > xPrev) {
        last.xmax = x1;
        continue;
      } else if (x1 < x0 && x0 < xPrev) {
        last.xmin = x1;
        continue;
      }
    }
    edges.push(makeEdge(x0, y0, x1, y1));
  }
  if (xy[i * 2] !== xy[0] || xy[i * 2 + 1] !== xy[1]) {
    edges.push(makeEdge(xy[i * 2], xy[i * 2 + 1], xy[0], xy[1]));
  }
  return edges;
}

/** Pillow's `polygon_generic` for a single-channel image (no alpha blending path). */
function fillPillow(xy: readonly number[], height: number, width: number, out: Uint8Array): void {
  const edges = pillowEdges(xy);
  if (edges.length === 0) return;
  let ymin = height - 1;
  let ymax = 0;
  const table: Edge[] = [];
  for (const e of edges) {
    if (ymin > e.ymin) ymin = e.ymin;
    if (ymax < e.ymax) ymax = e.ymax;
    if (e.ymin === e.ymax) {
      hline(out, height, width, e.xmin, e.ymin, e.xmax);
      continue;
    }
    table.push(e);
  }
  if (ymin < 0) ymin = 0;
  if (ymax > height) ymax = height;
  const xx: number[] = [];
  const at = (e: Edge, y: number): number => f32(f32(f32(y - e.y0) * e.dx) + e.x0);
  for (let y = ymin; y <= ymax; y++) {
    xx.length = 0;
    for (let i = 0; i < table.length; i++) {
      const current = table[i];
      if (y < current.ymin || y > current.ymax) continue;
      xx.push(at(current, y));
      if (y === current.ymax && y < ymax) {
        xx.push(xx[xx.length - 1]);
      } else if ((y === current.ymin || y === current.ymax) && current.dx !== 0) {
        // Pillow's "connect discontiguous corners": widen a corner where two sloped edges meet.
        for (let k = 0; k < i; k++) {
          const other = table[k];
          if ((y !== other.ymin && y !== other.ymax) || other.dx === 0) continue;
          const last = xx[xx.length - 1];
          if (roundf(last) !== roundf(at(other, y))) continue;
          const offset = y === current.ymax ? -1 : 1;
          const adjacent = at(current, y + offset);
          if (y + offset >= other.ymin && y + offset <= other.ymax) {
            const adjacentOther = at(other, y + offset);
            if (last > f32(adjacent + 1) && last > f32(adjacentOther + 1)) {
              xx[xx.length - 1] = f32(roundf(Math.max(adjacent, adjacentOther)) + 1);
            } else if (last < f32(adjacent - 1) && last < f32(adjacentOther - 1)) {
              xx[xx.length - 1] = f32(roundf(Math.min(adjacent, adjacentOther)) - 1);
            }
            break;
          }
        }
      }
    }
    xx.sort((a, b) => a - b);
    for (let i = 1; i < xx.length; i += 2) {
      hline(out, height, width, roundUp(xx[i - 1]), y, roundDown(xx[i]));
    }
  }
}

/**
 * Rasterises one polygon into a new or given mask (values 0/1, row-major `height x width`), ORing into `out`.
 * Under the official rule polygons with fewer than 2 points draw nothing, as in `polygons_to_mask`.
 */
export function rasterizePolygon(
  polygon: PolygonCoords,
  height: number,
  width: number,
  rule: RasterRule = 'clipseg',
  out?: Uint8Array,
): Uint8Array {
  checkCanvas(height, width);
  checkPolygon(polygon, 'polygon');
  const mask = out ?? new Uint8Array(height * width);
  if (mask.length !== height * width) {
    throw new InvalidArgumentError(`out: expected ${height * width} elements for ${height}x${width}, got ${mask.length}`);
  }
  if (rule === 'clipseg') {
    fillPixelCentre(polygon, height, width, mask);
  } else if (rule === 'official') {
    if (polygon.length >= 4) {
      const xy = Array.from(polygon, (v) => Math.trunc(v));
      fillPillow(xy, height, width, mask);
    }
  } else {
    throw new InvalidArgumentError(`rule: expected one of ${RASTER_RULES.join(', ')}, got ${String(rule)}`);
  }
  return mask;
}

/** The union of several polygons (e.g. every polygon of every instance of a task). */
export function rasterizePolygons(
  polygons: Iterable<PolygonCoords>,
  height: number,
  width: number,
  rule: RasterRule = 'clipseg',
  out?: Uint8Array,
): Uint8Array {
  checkCanvas(height, width);
  const mask = out ?? new Uint8Array(height * width);
  for (const p of polygons) rasterizePolygon(p, height, width, rule, mask);
  return mask;
}
