/**
 * Composite Simpson integration of sampled points, as `scipy.integrate.simps(y, x)` computed it with its default
 * `even='avg'` (scipy < 1.11), which CLIPSeg's AP uses: for an even number of points, the mean of
 * (Simpson on the first N-1 points + trapezoid on the last interval) and
 * (trapezoid on the first interval + Simpson on the last N-1 points).
 * The irregular-spacing step is scipy's `_basic_simpson`, including its guards that turn a zero-width interval's
 * divisions into 0 instead of inf/NaN.
 */
import { InvalidArgumentError } from '../errors.js';

/** Simpson's rule over the triplets starting at start, start + 2, ... below stop (scipy's slice semantics). */
function basicSimpson(y: ArrayLike<number>, x: ArrayLike<number>, start: number, stop: number): number {
  let result = 0;
  for (let i = start; i < stop && i + 2 < y.length; i += 2) {
    const h0 = x[i + 1] - x[i];
    const h1 = x[i + 2] - x[i + 1];
    const hsum = h0 + h1;
    const hprod = h0 * h1;
    const h0divh1 = h1 !== 0 ? h0 / h1 : 0;
    const w0 = 2 - (h0divh1 !== 0 ? 1 / h0divh1 : 0);
    const w1 = hsum * (hprod !== 0 ? hsum / hprod : 0);
    const w2 = 2 - h0divh1;
    result += (hsum / 6) * (y[i] * w0 + y[i + 1] * w1 + y[i + 2] * w2);
  }
  return result;
}

export function simpsonAvg(y: ArrayLike<number>, x: ArrayLike<number>): number {
  const n = y.length;
  if (x.length !== n) throw new InvalidArgumentError(`x: expected ${n} sample positions (one per y), got ${x.length}`);
  if (n < 2) return 0;
  if (n % 2 === 1) return basicSimpson(y, x, 0, n - 2);
  let val = 0.5 * (x[n - 1] - x[n - 2]) * (y[n - 1] + y[n - 2]);
  let result = basicSimpson(y, x, 0, n - 3);
  val += 0.5 * (x[1] - x[0]) * (y[1] + y[0]);
  result += basicSimpson(y, x, 1, n - 2);
  return result / 2 + val / 2;
}
