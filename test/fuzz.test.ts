/**
 * Bounded fuzzing in CI: each target gets FUZZ_RUNS inputs (default below); `npm run fuzz` runs the same
 * targets much longer. Allowed outcomes: a result or a ClipSegError; anything else fails the test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzz } from './fuzz/harness.js';
import { safetensorsBytesTarget, safetensorsHeaderTarget } from './fuzz/safetensors_target.js';
import { tokenizerArgumentTarget, tokenizerTarget } from './fuzz/tokenizer_target.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

for (const target of [safetensorsBytesTarget, safetensorsHeaderTarget]) {
  test(`fuzz: ${target.name}`, async () => {
    const stats = await fuzz(target, RUNS);
    assert.equal(stats.runs, RUNS);
    // Mutations must reach the decoder both ways, or the harness is not testing anything.
    assert.ok(Object.keys(stats.typedErrors).length > 0, 'no input was rejected');
  });
}

test(`fuzz: ${tokenizerTarget.name}`, async () => {
  const stats = await fuzz(tokenizerTarget, RUNS);
  assert.equal(stats.ok, RUNS, 'every string must tokenize');
});

test(`fuzz: ${tokenizerArgumentTarget.name}`, async () => {
  const stats = await fuzz(tokenizerArgumentTarget, RUNS);
  assert.equal(stats.ok + (stats.typedErrors.INVALID_ARGUMENT ?? 0), RUNS);
  assert.ok((stats.typedErrors.INVALID_ARGUMENT ?? 0) > 0);
});
