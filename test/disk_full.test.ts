/**
 * Running out of space while saving. The writer runs in a child process under a file-size limit (`ulimit -f`, with
 * SIGXFSZ ignored), so the kernel really cuts writes short and then fails them with EFBIG, as a full disk does with
 * ENOSPC. The previous file or checkpoint must survive intact, nothing half-written may take its name, and a
 * training run must resume from the previous checkpoint once space is back.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { checkpointName, latestCheckpoint, listCheckpoints, readCheckpoint } from '../src/train/checkpoint.js';
import { makeSynthetic } from '../src/train/synthetic.js';
import { REPO_ROOT, runNode, tinyTrainArgs } from './helpers/child_node.js';

const scratch = await mkdtemp(path.join(tmpdir(), 'clipseg-disk-full-'));
after(() => rm(scratch, { recursive: true, force: true }));

async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.tmp-'));
}

const WRITER = `
import { writeFileAtomic } from '${path.join(REPO_ROOT, 'src', 'io', 'atomic.ts')}';
const [target, sizes] = process.argv.slice(-2);
const chunks = sizes.split(',').map((n, i) => new Uint8Array(Number(n)).fill(65 + i));
try {
  await writeFileAtomic(target, chunks);
  console.log('written');
} catch (err) {
  console.log('failed ' + err.code);
}
`;

for (const [name, sizes] of [
  ['one chunk', '262144'],
  ['the limit inside the last chunk', '32768,262144'],
  ['the limit inside an earlier chunk', '262144,4096,4096'],
] as const) {
  test(`atomic write past the file-size limit fails and keeps the previous file (${name})`, async () => {
    const dir = await mkdtemp(path.join(scratch, 'atomic-'));
    const target = path.join(dir, 'file.bin');
    await writeFile(target, 'previous content');
    const writer = path.join(dir, 'writer.mts');
    await writeFile(writer, WRITER);
    const result = await runNode([writer, target, sizes], { limitKiB: 64 });
    assert.equal(result.signal, null, 'SIGXFSZ is ignored, so the process is not killed');
    assert.equal(result.stdout.trim(), 'failed EFBIG', `the write must fail: ${result.stdout}${result.stderr}`);
    assert.equal(await readFile(target, 'utf8'), 'previous content');
    assert.deepEqual(await leftovers(dir), [], 'the temporary file is removed');
  });
}

test('disk full while saving a training checkpoint: the previous checkpoint survives, resume completes', async (t) => {
  const data = path.join(scratch, 'data');
  await makeSynthetic({ out: data, images: 4, size: 64, seed: 2 });
  const out = path.join(scratch, 'run');
  const checkpoints = path.join(out, 'checkpoints');
  const args = tinyTrainArgs(data, out, 5);

  // First run: stopped (SIGKILL) as soon as a checkpoint of step 2 or later is the latest.
  let pid = 0;
  const watcher = setInterval(() => {
    void readFile(path.join(checkpoints, 'latest'), 'utf8').then(
      (name) => {
        if (pid === 0 || Number(/ckpt-(\d+)/.exec(name)?.[1] ?? 0) < 2) return;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone; the exit status tells.
        }
        pid = 0;
      },
      () => undefined,
    );
  }, 5);
  const first = await runNode(args, { onSpawn: (p) => (pid = p) });
  clearInterval(watcher);
  assert.equal(first.signal, 'SIGKILL', `the first run was to be stopped after step 2: ${first.stderr}`);
  const previous = await latestCheckpoint(checkpoints);
  assert.ok(previous !== undefined);
  const before = await readCheckpoint(previous);
  assert.ok(before.step < 5, 'the first run was stopped before its last step');
  const size = (await stat(previous)).size;

  // Second run: a file-size limit of half a checkpoint, so the next checkpoint cannot be written.
  const limitKiB = Math.floor(size / 2 / 1024);
  const full = await runNode(args, { limitKiB });
  assert.equal(full.signal, null);
  // The documented status for file-system errors (exit 3), with one error line after the resume note.
  assert.equal(full.code, 3, `saving under the limit must fail the run as a file error: ${full.stderr}`);
  const errors = full.stderr.split('\n').filter((line) => line.startsWith('clipseg: error:'));
  assert.equal(errors.length, 1, `one error line, got: ${full.stderr}`);
  assert.match(errors[0]!, /file too large/);
  t.diagnostic(`checkpoint ${size} bytes, limit ${limitKiB} KiB; resumed from step ${before.step}, exited with ${full.code}: ${errors[0]}`);
  assert.equal(await latestCheckpoint(checkpoints), previous, 'latest still names the previous checkpoint');
  const after = await readCheckpoint(previous);
  assert.equal(after.step, before.step);
  for (const [key, value] of before.params) assert.deepEqual(after.params.get(key)!.data, value.data, key);
  for (const entry of await listCheckpoints(checkpoints)) await readCheckpoint(entry.path);
  assert.equal(existsSync(path.join(checkpoints, checkpointName(before.step + 1))), false, 'no partial checkpoint under a final name');
  assert.deepEqual(await leftovers(checkpoints), []);

  // Third run: space is back; the run resumes from the surviving checkpoint and finishes.
  const resumed = await runNode(args);
  assert.equal(resumed.code, 0, resumed.stderr);
  const final = await readCheckpoint((await latestCheckpoint(checkpoints))!);
  assert.equal(final.step, 5);
  const steps = (await readFile(path.join(out, 'log.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { step: number }).step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5], 'the log holds every step once');
});
