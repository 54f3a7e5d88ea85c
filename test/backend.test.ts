/** Backend selection: explicit names, the CLIPSEG_BACKEND variable, auto, and the native backend's install hint. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { afterEach, describe, test } from 'node:test';
import { BACKEND_ENV, currentBackend, selectBackend } from '../src/backend.js';
import { BackendError, InvalidArgumentError } from '../src/errors.js';

const require = createRequire(import.meta.url);
const nativeInstalled = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((name) => {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
});

describe('selectBackend', () => {
  const saved = process.env[BACKEND_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[BACKEND_ENV];
    else process.env[BACKEND_ENV] = saved;
  });

  test('explicit names activate that backend', async () => {
    assert.equal(await selectBackend('cpu'), 'cpu');
    assert.equal(currentBackend(), 'cpu');
    assert.equal(await selectBackend('wasm'), 'wasm');
    assert.equal(currentBackend(), 'wasm');
  });

  test('without a name, CLIPSEG_BACKEND decides; an explicit name wins over it', async () => {
    process.env[BACKEND_ENV] = 'cpu';
    assert.equal(await selectBackend(), 'cpu');
    assert.equal(await selectBackend('wasm'), 'wasm');
  });

  test('auto takes native TensorFlow when installed, else wasm', async () => {
    delete process.env[BACKEND_ENV];
    assert.equal(await selectBackend(), nativeInstalled ? 'tensorflow' : 'wasm');
    assert.equal(await selectBackend('auto'), nativeInstalled ? 'tensorflow' : 'wasm');
  });

  test('unknown names are InvalidArgumentErrors naming where they came from', async () => {
    await assert.rejects(selectBackend('gpu'), (e: unknown) => e instanceof InvalidArgumentError && e.message === "backend: expected one of auto, tensorflow, wasm, cpu, got 'gpu'");
    process.env[BACKEND_ENV] = 'webgl';
    await assert.rejects(selectBackend(), (e: unknown) => e instanceof InvalidArgumentError && e.message === "CLIPSEG_BACKEND: expected one of auto, tensorflow, wasm, cpu, got 'webgl'");
  });

  test('tensorflow: native when its package is installed, otherwise a BackendError with the install command', async () => {
    if (nativeInstalled) {
      assert.equal(await selectBackend('tensorflow'), 'tensorflow');
      return;
    }
    await assert.rejects(selectBackend('tensorflow'), (e: unknown) => e instanceof BackendError && /the 'tensorflow' backend is not available .*npm install @tensorflow\/tfjs-node/.test(e.message));
    assert.notEqual(currentBackend(), 'tensorflow');
  });
});
