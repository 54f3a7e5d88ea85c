import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withRelease } from '../src/failures.js';
import { wasmTrapError } from './helpers/wasm_trap.js';

test('withRelease: the body\'s error wins over an error from the release, which still runs once', async () => {
  const failure = new Error('evaluation stopped at task 7');
  let releases = 0;
  const echo = (): void => {
    releases++;
    throw wasmTrapError('memory access out of bounds');
  };
  await assert.rejects(withRelease(() => Promise.reject(failure), echo), (e) => e === failure);
  assert.equal(releases, 1);
  await assert.rejects(
    withRelease(() => Promise.reject(failure), () => Promise.reject(new Error('close failed'))),
    (e) => e === failure,
  );
});

test('withRelease: on success the result comes back after the release, and a release error is not hidden', async () => {
  const order: string[] = [];
  const result = await withRelease(
    async () => {
      order.push('body');
      return 42;
    },
    async () => {
      order.push('release');
    },
  );
  assert.equal(result, 42);
  assert.deepEqual(order, ['body', 'release']);
  const closeFailed = new Error('close failed');
  await assert.rejects(withRelease(async () => 1, () => { throw closeFailed; }), (e) => e === closeFailed);
  let released = false;
  await assert.rejects(withRelease(() => Promise.reject(new RangeError('x')), () => { released = true; }), RangeError);
  assert.equal(released, true);
});
