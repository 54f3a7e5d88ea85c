/**
 * Bounded fuzzing in CI: each target gets its `ciRuns` inputs (FUZZ_RUNS overrides it) from a fixed seed (FUZZ_SEED
 * overrides it), each target in its own watched child process. `npm run fuzz` runs the same targets much longer.
 * Allowed outcomes: a result or a ClipSegError; anything else fails the test with the seed that replays it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runIsolated } from './fuzz/isolate.js';
import { TARGETS } from './fuzz/targets.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_250_601);

for (const target of TARGETS) {
  test(`fuzz: ${target.id}`, async () => {
    const runs = process.env.FUZZ_RUNS === undefined ? target.ciRuns : Number(process.env.FUZZ_RUNS);
    const result = await runIsolated(target.id, runs, SEED);
    assert.equal(result.stats.runs, runs);
    const { ok, typedErrors } = result.stats;
    assert.equal(ok + Object.values(typedErrors).reduce((a, b) => a + b, 0), runs, 'every input has an allowed outcome');
  });
}
