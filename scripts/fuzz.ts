/**
 * The long fuzzing run: every target (or those named with --target) for `ciRuns x --scale` inputs each (default
 * scale 50: 100,000 inputs for most targets) from a random seed, two targets at a time in watched child processes.
 * Prints one line per target and the seed to replay a failure with:
 *   FUZZ_SEED=<seed> FUZZ_RUNS=<n> node --import tsx --test --test-name-pattern=<target> test/fuzz.test.ts
 */
import { parseArgs } from 'node:util';
import { runIsolated } from '../test/fuzz/isolate.js';
import { TARGETS, targetById } from '../test/fuzz/targets.js';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '50' },
    seed: { type: 'string' },
    target: { type: 'string', multiple: true },
    parallel: { type: 'string', default: '2' },
  },
});
const scale = Number(values.scale);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const selected = values.target === undefined ? [...TARGETS] : values.target.map(targetById);
const queue = [...selected];
let failures = 0;

async function worker(): Promise<void> {
  for (let target = queue.shift(); target !== undefined; target = queue.shift()) {
    const runs = target.ciRuns * scale;
    try {
      const r = await runIsolated(target.id, runs, seed);
      const rejected = Object.entries(r.stats.typedErrors).map(([code, n]) => `${code} ${n}`).join(', ');
      console.log(
        `ok   ${target.id}: ${r.stats.runs} inputs in ${(r.ms / 1000).toFixed(1)} s, ${r.stats.ok} accepted, rejected: ${rejected || 'none'}; peak RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
    } catch (err) {
      failures++;
      console.log(`FAIL ${target.id} (${runs} inputs): ${(err as Error).message}`);
    }
  }
}

console.log(`fuzzing ${selected.length} targets, seed ${seed}`);
await Promise.all(Array.from({ length: Math.max(1, Number(values.parallel)) }, worker));
console.log(`${selected.length - failures} passed, ${failures} failed`);
process.exitCode = failures === 0 ? 0 : 1;
