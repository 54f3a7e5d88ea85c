/**
 * The threaded SIMD wasm build as an option of backend selection. It runs in child processes: the build is chosen
 * once per process, and the test runner's own process keeps the default build.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { ClipSeg } from '../src/clipseg.js';
import { WASM_THREADS_ENV, selectBackend } from '../src/backend.js';
import { InvalidArgumentError } from '../src/errors.js';
import { runNode } from './helpers/child_node.js';

interface ChildReport {
  backend: string;
  threads: number;
  logits: number[][];
  other?: { name: string; message: string };
}

async function child(threads?: number): Promise<ChildReport> {
  const exit = await runNode(['test/helpers/wasm_threads_child.ts', ...(threads === undefined ? [] : ['--threads', String(threads)])]);
  assert.equal(exit.code, 0, exit.stderr);
  return JSON.parse(exit.stdout.trim().split('\n').pop()!) as ChildReport;
}

describe('threaded SIMD wasm build', () => {
  test('2 threads give exactly the logits of the default build, and the process ends by itself', async () => {
    const [single, threaded] = await Promise.all([child(), child(2)]);
    assert.equal(single.backend, 'wasm');
    assert.equal(single.threads, 1);
    assert.equal(threaded.backend, 'wasm');
    assert.equal(threaded.threads, 2);
    assert.equal(threaded.logits.length, 2);
    assert.equal(threaded.logits[0]!.length, single.logits[0]!.length);
    assert.ok(single.logits[0]!.length > 0);
    // XNNPACK splits the products by output tiles, each computed by one thread with the same kernel: the values
    // are bit for bit those of the default build.
    assert.deepEqual(threaded.logits, single.logits);
    // Another thread count cannot replace the build that runs.
    assert.equal(threaded.other?.name, 'BackendError');
    assert.match(threaded.other!.message, /already runs with 2 threads in this process, asked for 3/);
    assert.equal(single.other?.name, 'BackendError');
    assert.match(single.other!.message, /already runs with 1 thread in this process, asked for 2/);
  });
});

describe('clipseg --threads', () => {
  test('starts the threaded build for any subcommand, and the run ends by itself', async () => {
    const exit = await runNode(['src/cli/main.ts', '--threads', '2', '--backend', 'wasm', 'env', '--json']);
    assert.equal(exit.code, 0, exit.stderr);
    const report = JSON.parse(exit.stdout) as { backends: { chosen: string; wasmThreads?: number } };
    assert.deepEqual([report.backends.chosen, report.backends.wasmThreads], ['wasm', 2]);
  });

  test('a bad count is a usage error naming --threads', async () => {
    const exit = await runNode(['src/cli/main.ts', '--threads', '0', 'env']);
    assert.equal(exit.code, 2);
    assert.match(exit.stderr, /--threads: expected an integer from 1 to 8, got 0/);
  });
});

describe('threads argument', () => {
  const saved = process.env[WASM_THREADS_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[WASM_THREADS_ENV];
    else process.env[WASM_THREADS_ENV] = saved;
  });

  const rejectsNaming = (promise: Promise<unknown>, message: string) =>
    assert.rejects(promise, (e: unknown) => e instanceof InvalidArgumentError && e.message === message);

  test('bad values are InvalidArgumentErrors naming threads, before any backend starts', async () => {
    await rejectsNaming(selectBackend('wasm', { threads: 0 }), 'threads: expected an integer from 1 to 8, got 0');
    await rejectsNaming(selectBackend('wasm', { threads: 9 }), 'threads: expected an integer from 1 to 8, got 9');
    await rejectsNaming(selectBackend('wasm', { threads: 1.5 }), 'threads: expected an integer from 1 to 8, got 1.5');
    await rejectsNaming(selectBackend('wasm', { threads: '2' as unknown as number }), "threads: expected an integer from 1 to 8, got '2'");
    await rejectsNaming(ClipSeg.fromPretrained(undefined, { threads: -1 }), 'threads: expected an integer from 1 to 8, got -1');
    await rejectsNaming(selectBackend('cpu', { threads: 2 }), "threads: applies to the wasm backend only, got backend 'cpu'");
  });

  test('CLIPSEG_WASM_THREADS is read when no option is passed, and named when bad', async () => {
    process.env[WASM_THREADS_ENV] = 'two';
    await rejectsNaming(selectBackend('wasm'), "CLIPSEG_WASM_THREADS: expected an integer from 1 to 8, got 'two'");
    process.env[WASM_THREADS_ENV] = '12';
    await rejectsNaming(selectBackend('wasm'), 'CLIPSEG_WASM_THREADS: expected an integer from 1 to 8, got 12');
    process.env[WASM_THREADS_ENV] = '1';
    assert.equal(await selectBackend('wasm'), 'wasm');
  });
});
