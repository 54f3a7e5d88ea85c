import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../src/errors.js';
import { Rng } from '../src/train/rng.js';
import { PROMPT_TEMPLATES, applyTemplate, randomPrompt } from '../src/train/templates.js';

test('xoshiro128** matches the reference sequence from state {1, 2, 3, 4}', () => {
  // Hand-derived from the reference C code: out0 = rotl(2 * 5, 7) * 9 = 11520; the update sets s1 to 0, so out1 = 0.
  const rng = Rng.fromState([1, 2, 3, 4]);
  assert.equal(rng.nextUint32(), 11520);
  assert.equal(rng.nextUint32(), 0);
  // State after two steps, derived by hand from the update rule.
  assert.deepEqual(Rng.fromState([1, 2, 3, 4]).state(), [1, 2, 3, 4]);
  const r = Rng.fromState([1, 2, 3, 4]);
  r.nextUint32();
  assert.deepEqual(r.state(), [7, 0, 1026, 12288]);
});

test('state() / fromState() resume a stream exactly, and survive JSON', () => {
  const a = Rng.fromSeed(42);
  for (let i = 0; i < 17; i++) a.next();
  const saved = JSON.parse(JSON.stringify(a.state())) as unknown;
  const b = Rng.fromState(saved);
  for (let i = 0; i < 100; i++) assert.equal(a.nextUint32(), b.nextUint32());
});

test('derive gives reproducible, distinct streams per key path', () => {
  const first = (r: Rng) => Array.from({ length: 4 }, () => r.nextUint32());
  assert.deepEqual(first(Rng.derive(7, 'sample', 3)), first(Rng.derive(7, 'sample', 3)));
  const variants = [Rng.derive(7, 'sample', 3), Rng.derive(7, 'sample', 4), Rng.derive(8, 'sample', 3), Rng.derive(7, 'order', 3), Rng.derive(7, 'sample'), Rng.derive(7, 'samp', 'le', 3)];
  const outs = new Set(variants.map((r) => first(r).join(',')));
  assert.equal(outs.size, variants.length);
});

test('int is in range and unbiased enough; next is in [0, 1)', () => {
  const rng = Rng.fromSeed('counts');
  const counts = new Array(6).fill(0);
  const n = 60000;
  for (let i = 0; i < n; i++) counts[rng.int(6)]++;
  // Each bucket ~ Binomial(60000, 1/6): sd ~ 91, so +-500 is > 5 sd.
  for (const c of counts) assert.ok(Math.abs(c - n / 6) < 500, `bucket count ${c}`);
  fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer(), (bound, seed) => {
    const r = Rng.fromSeed(seed);
    const v = r.int(bound);
    const u = r.next();
    return Number.isInteger(v) && v >= 0 && v < bound && u >= 0 && u < 1;
  }));
});

test('uniform mean and normal moments are right', () => {
  const rng = Rng.fromSeed(1);
  let s = 0;
  let s2 = 0;
  const n = 40000;
  for (let i = 0; i < n; i++) s += rng.uniform(0, 0.5);
  assert.ok(Math.abs(s / n - 0.25) < 0.005);
  s = 0;
  for (let i = 0; i < n; i++) {
    const z = rng.normal();
    s += z;
    s2 += z * z;
  }
  assert.ok(Math.abs(s / n) < 0.03);
  assert.ok(Math.abs(s2 / n - 1) < 0.04);
});

test('permutation and shuffle are permutations', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 200 }), fc.integer(), (n, seed) => {
    const p = Rng.fromSeed(seed).permutation(n);
    return [...p].sort((a, b) => a - b).every((v, i) => v === i);
  }));
  const items = ['a', 'b', 'c', 'd', 'e'];
  assert.deepEqual(Rng.fromSeed(3).shuffle([...items]).sort(), items);
});

test('bad arguments raise InvalidArgumentError', () => {
  const rng = Rng.fromSeed(0);
  assert.throws(() => Rng.fromState([0, 0, 0, 0]), InvalidArgumentError);
  assert.throws(() => Rng.fromState([1, 2, 3]), InvalidArgumentError);
  assert.throws(() => Rng.fromState([1, 2, 3, 2 ** 32]), InvalidArgumentError);
  assert.throws(() => Rng.fromSeed(1.5), /seed: expected a safe integer/);
  assert.throws(() => rng.int(0), InvalidArgumentError);
  assert.throws(() => rng.uniform(1, 0), InvalidArgumentError);
  assert.throws(() => rng.bernoulli(2), InvalidArgumentError);
  assert.throws(() => rng.pick([]), InvalidArgumentError);
});

test('the nine mixed-training templates, applied literally', () => {
  assert.equal(PROMPT_TEMPLATES.length, 9);
  assert.deepEqual(PROMPT_TEMPLATES.map((t) => applyTemplate(t, 'red circle')), [
    'a photo of a red circle.', 'a photograph of a red circle.', 'an image of a red circle.', 'red circle.',
    'a cropped photo of a red circle.', 'a good photo of a red circle.', 'a photo of one red circle.',
    'a bad photo of a red circle.', 'a photo of the red circle.',
  ]);
  assert.equal(applyTemplate('{}.', 'a $& b'), 'a $& b.');
  const rng = Rng.fromSeed(5);
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) seen.add(randomPrompt(rng, 'x'));
  assert.equal(seen.size, 9);
});
