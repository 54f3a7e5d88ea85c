import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../src/errors.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { rasterizePolygon, rasterizePolygons, type RasterRule } from '../src/train/rasterize.js';

const DIR = new URL('./fixtures/phrasecut/raster/', import.meta.url);

interface RasterCase {
  name: string;
  height: number;
  width: number;
  polygons: number[][][];
}

const cases = (JSON.parse(readFileSync(new URL('cases.json', DIR), 'utf8')) as { cases: RasterCase[] }).cases;

function flat(polygon: number[][]): number[] {
  return polygon.flat();
}

function diff(actual: Uint8Array, expected: Uint8Array, width: number): string {
  const bad: string[] = [];
  for (let i = 0; i < expected.length && bad.length < 8; i++) {
    if (actual[i] !== expected[i]) bad.push(`(r${Math.floor(i / width)}, c${i % width}): got ${actual[i]}, want ${expected[i]}`);
  }
  return bad.join('; ');
}

for (const rule of ['clipseg', 'official'] as RasterRule[]) {
  test(`${rule} rule matches the Python reference pixel for pixel on ${cases.length} polygon sets`, async () => {
    const masks = await readSafetensors(new URL('masks.safetensors', DIR).pathname);
    for (const [i, c] of cases.entries()) {
      const polygons = c.polygons.filter((p) => rule === 'official' || p.length >= 3).map(flat);
      const got = rasterizePolygons(polygons, c.height, c.width, rule);
      const want = masks.getBytes(`${i}.${rule}`);
      assert.equal(got.length, want.length);
      assert.ok(
        got.every((v, k) => v === want[k]),
        `${c.name}: ${diff(got, want, c.width)}`,
      );
    }
  });
}

test('pixel-centre rule: a square on integer corners covers the centres inside and on its boundary', () => {
  // skimage counts points on an edge or a vertex as inside, so rows and columns 2..6 are all in.
  const mask = rasterizePolygon([2, 2, 6, 2, 6, 6, 2, 6], 8, 8, 'clipseg');
  const rows = Array.from({ length: 8 }, (_, r) => Array.from(mask.subarray(r * 8, r * 8 + 8)).join(''));
  assert.deepEqual(rows, ['00000000', '00000000', '00111110', '00111110', '00111110', '00111110', '00111110', '00000000']);
});

/** Direct per-pixel form of skimage's test (O'Rourke: inside, on an edge or on a vertex). */
function pointInOrOn(poly: number[], x: number, y: number): boolean {
  const n = poly.length / 2;
  let x1 = poly[2 * n - 2] - x;
  let y1 = poly[2 * n - 1] - y;
  let right = 0;
  let left = 0;
  for (let i = 0; i < n; i++) {
    const x0 = poly[2 * i] - x;
    const y0 = poly[2 * i + 1] - y;
    if (-1e-12 < x0 && x0 < 1e-12 && -1e-12 < y0 && y0 < 1e-12) return true;
    if (y0 > 0 !== y1 > 0 && (x0 * y1 - x1 * y0) / (y1 - y0) > 0) right++;
    if (y0 < 0 !== y1 < 0 && (x0 * y1 - x1 * y0) / (y1 - y0) < 0) left++;
    x1 = x0;
    y1 = y0;
  }
  return right % 2 === 1 || left % 2 === 1;
}

test('pixel-centre rule equals the per-pixel crossing test on random polygons (property)', () => {
  const coord = fc.oneof(fc.integer({ min: -4, max: 20 }), fc.double({ min: -4, max: 20, noNaN: true }), fc.integer({ min: -8, max: 40 }).map((v) => v / 2));
  const polygon = fc.array(fc.tuple(coord, coord), { minLength: 3, maxLength: 9 }).map((pts) => pts.flat());
  fc.assert(
    fc.property(polygon, (poly) => {
      const mask = rasterizePolygon(poly, 17, 15, 'clipseg');
      const ys = poly.filter((_, k) => k % 2 === 1);
      const xs = poly.filter((_, k) => k % 2 === 0);
      const r0 = Math.trunc(Math.max(0, Math.min(...ys)));
      const r1 = Math.min(16, Math.ceil(Math.max(...ys)));
      const c0 = Math.trunc(Math.max(0, Math.min(...xs)));
      const c1 = Math.min(14, Math.ceil(Math.max(...xs)));
      for (let r = 0; r < 17; r++) {
        for (let c = 0; c < 15; c++) {
          const want = r >= r0 && r <= r1 && c >= c0 && c <= c1 && pointInOrOn(poly, c, r) ? 1 : 0;
          assert.equal(mask[r * 15 + c], want, `pixel (${r}, ${c}) of ${JSON.stringify(poly)}`);
        }
      }
    }),
    { numRuns: 400 },
  );
});

test('official rule: the same square includes its outline (Pillow fills boundary pixels)', () => {
  const mask = rasterizePolygon([2, 2, 6, 2, 6, 6, 2, 6], 8, 8, 'official');
  const rows = Array.from({ length: 8 }, (_, r) => Array.from(mask.subarray(r * 8, r * 8 + 8)).join(''));
  assert.deepEqual(rows, ['00000000', '00000000', '00111110', '00111110', '00111110', '00111110', '00111110', '00000000']);
});

test('union is order independent and idempotent (property)', () => {
  const point = fc.tuple(fc.double({ min: -5, max: 25, noNaN: true }), fc.double({ min: -5, max: 25, noNaN: true }));
  const polygon = fc.array(point, { minLength: 3, maxLength: 7 }).map((pts) => pts.flat());
  fc.assert(
    fc.property(fc.array(polygon, { minLength: 1, maxLength: 4 }), fc.constantFrom<RasterRule>('clipseg', 'official'), (polys, rule) => {
      const a = rasterizePolygons(polys, 20, 20, rule);
      const b = rasterizePolygons([...polys].reverse(), 20, 20, rule);
      const c = rasterizePolygons([...polys, ...polys], 20, 20, rule);
      assert.deepEqual(a, b);
      assert.deepEqual(a, c);
    }),
    { numRuns: 200 },
  );
});

test('bad input is refused with InvalidArgumentError naming the argument', () => {
  assert.throws(() => rasterizePolygon([1, 2, 3], 4, 4), (e: unknown) => e instanceof InvalidArgumentError && /polygon.*even length/.test(e.message));
  assert.throws(() => rasterizePolygon([1, 2, NaN, 3, 4, 5], 4, 4), (e: unknown) => e instanceof InvalidArgumentError && /finite/.test(e.message));
  assert.throws(() => rasterizePolygon([1, 2, 3, 3, 4, 5], 0, 4), (e: unknown) => e instanceof InvalidArgumentError && /height and width/.test(e.message));
  assert.throws(() => rasterizePolygon([1, 2, 3, 3, 4, 5], 4, 4, 'clipseg', new Uint8Array(3)), (e: unknown) => e instanceof InvalidArgumentError && /out: expected 16/.test(e.message));
  assert.throws(() => rasterizePolygon([1, 2, 3, 3, 4, 5], 4, 4, 'skimage' as RasterRule), (e: unknown) => e instanceof InvalidArgumentError && /rule/.test(e.message));
});
