/** PyTorch bicubic resizing (align_corners=False, A=-0.75) against torch.nn.functional.interpolate. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../src/errors.js';
import { bicubicMatrix, resizeBicubic } from '../src/layers/bicubic.js';
import { assertClose } from './helpers/assert_close.js';
import { TEST_BACKENDS, useBackend } from './helpers/backends.js';
import { fixtureTensor, readFixture } from './helpers/fixtures.js';
import { assertNoLeak } from './helpers/memory.js';

const fixture = readFixture('model', 'bicubic.safetensors');
const pairs = fixture.keys().filter((k) => k.endsWith('.input')).map((k) => k.slice(0, -'.input'.length));

for (const backend of TEST_BACKENDS) {
  describe(`resizeBicubic matches torch (${backend})`, () => {
    for (const name of pairs) {
      test(name, async () => {
        await useBackend(backend);
        const input = fixtureTensor(fixture, `${name}.input`);
        const [outH, outW] = fixture.info(`${name}.output`).shape as [number, number];
        const resized = assertNoLeak(() => resizeBicubic(input, outH, outW));
        assertClose(resized, fixture.getFloat32(`${name}.output`), name, { atol: 1e-5, shape: fixture.info(`${name}.output`).shape });
        tf.dispose([input, resized]);
      });
    }
  });
}

describe('bicubicMatrix', () => {
  test('rows sum to one (edge taps fold onto the border)', () => {
    for (const [inSize, outSize] of [[14, 22], [7, 13], [14, 4], [2, 5], [1, 3]] as const) {
      const m = bicubicMatrix(inSize, outSize);
      for (let o = 0; o < outSize; o++) {
        const sum = m.subarray(o * inSize, (o + 1) * inSize).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-6, `${inSize}->${outSize} row ${o}: ${sum}`);
      }
    }
  });

  test('the same size is the identity', () => {
    const m = bicubicMatrix(5, 5);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) assert.equal(m[i * 5 + j], i === j ? 1 : 0);
  });

  test('doubling: the Keys weights at distances 0.25 and 0.75', () => {
    // Output 2 of 4 (from 2) sits at source 0.75: f=0, t=0.75, taps -1,0,1,2 clamp to 0,0,1,1.
    const m = bicubicMatrix(2, 4);
    const w = (x: number) => {
      const a = -0.75;
      const d = Math.abs(x);
      return d <= 1 ? ((a + 2) * d - (a + 3)) * d * d + 1 : ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
    };
    assert.ok(Math.abs(m[2 * 2 + 0]! - (w(1.75) + w(0.75))) < 1e-7);
    assert.ok(Math.abs(m[2 * 2 + 1]! - (w(0.25) + w(1.25))) < 1e-7);
  });

  test('sizes must be positive integers', () => {
    assert.throws(() => bicubicMatrix(0, 4), (e: unknown) => e instanceof InvalidArgumentError && /inSize must be a positive integer, got 0/.test(e.message));
    assert.throws(() => bicubicMatrix(4, 2.5), (e: unknown) => e instanceof InvalidArgumentError && /outSize must be a positive integer, got 2\.5/.test(e.message));
  });
});
