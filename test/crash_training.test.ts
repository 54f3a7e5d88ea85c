/**
 * Crash-safe training: `clipseg train --resume` (tiny model, a checkpoint every step) is killed with SIGKILL
 * CRASH_KILLS times (default 4), alternately at a random moment (startup, a step, a save) and while a checkpoint
 * file is being written. After every kill the checkpoint `latest` names must load, every checkpoint file must load,
 * and the latest step may never go back. Relaunching with --resume then finishes the run, and the result is the
 * uninterrupted run's, bit for bit: final weights, optimizer moments and the loss of every logged step.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { type Checkpoint, latestCheckpoint, listCheckpoints, readCheckpoint } from '../src/train/checkpoint.js';
import { Rng } from '../src/train/rng.js';
import { makeSynthetic } from '../src/train/synthetic.js';
import { runNode, tinyTrainArgs } from './helpers/child_node.js';

const STEPS = 6;
const KILLS = Number(process.env.CRASH_KILLS ?? 4);
const SEED = Number(process.env.CRASH_SEED ?? 1);

const scratch = await mkdtemp(path.join(tmpdir(), 'clipseg-crash-'));
after(() => rm(scratch, { recursive: true, force: true }));

/** Temporary checkpoint files (`.ckpt-NNNNNN.safetensors.tmp-...`) in the folder. */
async function checkpointTemporaries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.startsWith('.ckpt-') && n.includes('.tmp-'));
  } catch {
    return [];
  }
}

async function finalCheckpoint(out: string): Promise<Checkpoint> {
  const latest = await latestCheckpoint(path.join(out, 'checkpoints'));
  assert.ok(latest !== undefined, `${out} has no checkpoint`);
  return readCheckpoint(latest);
}

async function loggedLosses(out: string): Promise<[number, number][]> {
  const text = await readFile(path.join(out, 'log.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { step: number; loss: number })
    .map((r) => [r.step, r.loss]);
}

function assertSameTensors(got: ReadonlyMap<string, Float32Array | { data: Float32Array }>, want: ReadonlyMap<string, Float32Array | { data: Float32Array }>, what: string): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: keys`);
  for (const [key, value] of want) {
    const a = got.get(key)!;
    const x = a instanceof Float32Array ? a : a.data;
    const y = value instanceof Float32Array ? value : value.data;
    assert.ok(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)), `${what}: '${key}' differs`);
  }
}

test(`training killed ${KILLS} times (SIGKILL, also mid-checkpoint) resumes to the uninterrupted result`, async (t) => {
  const data = path.join(scratch, 'data');
  await makeSynthetic({ out: data, images: 4, size: 64, seed: 7 });

  const reference = path.join(scratch, 'reference');
  const uninterrupted = await runNode(tinyTrainArgs(data, reference, STEPS));
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const out = path.join(scratch, 'crashed');
  const checkpoints = path.join(out, 'checkpoints');
  const args = tinyTrainArgs(data, out, STEPS);
  const rng = Rng.derive(SEED, 'crash-training');
  const events: string[] = [];
  let lastStep = 0;
  for (let i = 0; i < KILLS; i++) {
    const duringWrite = i % 2 === 0;
    const delay = Math.round(rng.uniform(1500, 9000));
    const stale = new Set(await checkpointTemporaries(checkpoints));
    let pid = 0;
    const kill = (): void => {
      if (pid === 0) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // It exited on its own a moment ago; the exit status tells.
      }
      pid = 0;
    };
    const started = Date.now();
    // Either a random moment, or the first sign of a new checkpoint file being written.
    const timer = duringWrite ? undefined : setTimeout(kill, delay);
    const watcher = duringWrite
      ? setInterval(() => void checkpointTemporaries(checkpoints).then((names) => names.some((n) => !stale.has(n)) && kill()), 2)
      : undefined;
    const exit = await runNode(args, { onSpawn: (p) => (pid = p) });
    clearTimeout(timer);
    clearInterval(watcher);
    if (exit.code === 0) {
      events.push(`run ${i + 1} finished before its kill`);
      break;
    }
    assert.equal(exit.signal, 'SIGKILL', `run ${i + 1} ended by itself: ${exit.stderr}`);

    const latest = await latestCheckpoint(checkpoints);
    if (latest !== undefined) {
      const checkpoint = await readCheckpoint(latest);
      assert.ok(checkpoint.step >= lastStep, `the latest checkpoint went back from step ${lastStep} to ${checkpoint.step}`);
      lastStep = checkpoint.step;
    }
    for (const entry of await listCheckpoints(checkpoints)) await readCheckpoint(entry.path);
    events.push(`${duringWrite ? 'mid-write' : `random (${delay} ms)`} kill after ${Date.now() - started} ms: latest step ${lastStep}`);
  }

  const finish = await runNode(args);
  assert.equal(finish.code, 0, finish.stderr);
  const [got, want] = [await finalCheckpoint(out), await finalCheckpoint(reference)];
  assert.equal(got.step, STEPS);
  assertSameTensors(got.params, want.params, 'weights');
  assertSameTensors(got.optimizer.m, want.optimizer.m, 'first moments');
  assertSameTensors(got.optimizer.v, want.optimizer.v, 'second moments');
  assert.deepEqual(await loggedLosses(out), await loggedLosses(reference), 'every step logged once, with the same loss');
  events.push(`${(await checkpointTemporaries(checkpoints)).length} temporary files of killed writes left in checkpoints/`);
  t.diagnostic(events.join('; '));
});
