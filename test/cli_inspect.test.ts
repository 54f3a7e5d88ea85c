/**
 * `clipseg inspect` writes what transformers computes: its output file for a fixture's inputs.safetensors equals
 * the fixture's outputs.safetensors, key for key, within 1e-4 (gradients relative).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { runInspect } from '../src/cli/inspect.js';
import { InvalidArgumentError } from '../src/errors.js';
import { readSafetensors, type SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import { assertClose } from './helpers/assert_close.js';
import { fixturePath, readFixture } from './helpers/fixtures.js';
import { gradientErrors, MODEL_CASES } from './helpers/model_fixtures.js';

const ROOT = path.resolve(fixturePath('..', '..'));

function compareFiles(actual: SafetensorsFile, expected: SafetensorsFile): void {
  assert.deepEqual(actual.keys().sort(), expected.keys().sort(), 'the same tensors');
  const grads: Record<string, Float32Array> = {};
  for (const key of expected.keys()) {
    assert.deepEqual(actual.info(key).shape, expected.info(key).shape, key);
    if (key.startsWith('grad.')) grads[key] = actual.getFloat32(key);
    else assertClose(actual.getFloat32(key), expected.getFloat32(key), key);
  }
  for (const [key, err] of Object.entries(gradientErrors(grads, expected))) assert.ok(err <= 1e-4, `${key}: relative error ${err}`);
}

/** The flags that reproduce a fixture's outputs file. */
function flagsFor(expected: SafetensorsFile) {
  const keys = expected.keys();
  return {
    hiddenStates: keys.some((k) => k.includes('.hidden_states.')),
    attentions: keys.some((k) => k.includes('.attentions.')),
    grads: keys.some((k) => k.startsWith('grad.')),
  };
}

describe('clipseg inspect', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'clipseg-inspect-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const caseName of MODEL_CASES) {
    test(`runInspect reproduces ${caseName}/outputs.safetensors`, async () => {
      const expected = readFixture('model', caseName, 'outputs.safetensors');
      const out = path.join(tmp, `${caseName}.safetensors`);
      const summary = await runInspect({
        model: fixturePath('model', caseName),
        inputs: fixturePath('model', caseName, 'inputs.safetensors'),
        out,
        backend: 'wasm',
        ...flagsFor(expected),
      });
      assert.equal(summary.backend, 'wasm');
      assert.equal(summary.prompt, 'input_ids');
      compareFiles(await readSafetensors(out), expected);
    });
  }

  test('a visual-prompt inputs file selects the image prompt', async () => {
    const out = path.join(tmp, 'visual.safetensors');
    const expected = readFixture('model', 'plain_eos', 'outputs_visual.safetensors');
    const summary = await runInspect({
      model: fixturePath('model', 'plain_eos'),
      inputs: fixturePath('model', 'plain_eos', 'inputs_visual.safetensors'),
      out,
      backend: 'cpu',
      ...flagsFor(expected),
    });
    assert.equal(summary.prompt, 'conditional_pixel_values');
    compareFiles(await readSafetensors(out), expected);
  });

  test('as a command in a separate process (backend from CLIPSEG_BACKEND)', async () => {
    const out = path.join(tmp, 'spawned.safetensors');
    const script = [
      "import { Command } from 'commander';",
      "import { registerInspect } from './src/cli/commands/inspect.ts';",
      "const program = new Command('clipseg');",
      'registerInspect(program);',
      "await program.parseAsync(process.argv.slice(2), { from: 'user' });",
    ].join('\n');
    // A leading program name: node itself would take a first argument 'inspect' as its debugger command.
    const args = ['--import', 'tsx', '--input-type=module', '-e', script, 'clipseg', 'inspect', '--model', fixturePath('model', 'refined_rd12'), '--inputs', fixturePath('model', 'refined_rd12', 'inputs.safetensors'), '--out', out, '--hidden-states', '--attentions', '--grads'];
    const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: ROOT, env: { ...process.env, CLIPSEG_BACKEND: 'cpu' }, timeout: 120_000 });
    assert.match(stdout, /^logits \[2, 4, 4\]$/m);
    assert.match(stdout, /tensors \(prompt: input_ids, backend cpu\) -> /);
    compareFiles(await readSafetensors(out), readFixture('model', 'refined_rd12', 'outputs.safetensors'));
  });

  test('inputs it cannot use are InvalidArgumentErrors naming the file and tensor', async () => {
    const model = fixturePath('model', 'refined_rd12');
    const source = readFixture('model', 'refined_rd12', 'inputs.safetensors');
    const write = async (name: string, keys: string[], extra: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {}) => {
      const file = path.join(tmp, name);
      const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
      for (const key of keys) tensors[key] = { dtype: 'F32', shape: [...source.info(key).shape], data: source.getFloat32(key) };
      await writeSafetensors(file, { ...tensors, ...extra });
      return file;
    };
    const out = path.join(tmp, 'unused.safetensors');
    const unknown = await write('unknown.safetensors', ['pixel_values', 'input_ids'], { pixel_mask: { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    await assert.rejects(runInspect({ model, inputs: unknown, out, backend: 'cpu' }), (e: unknown) => e instanceof InvalidArgumentError && /unknown\.safetensors: unknown input tensor 'pixel_mask' \(expected some of pixel_values, input_ids/.test(e.message));
    const noLabels = await write('nolabels.safetensors', ['pixel_values', 'input_ids']);
    await assert.rejects(runInspect({ model, inputs: noLabels, out, grads: true, backend: 'cpu' }), (e: unknown) => e instanceof InvalidArgumentError && /--grads needs a 'labels' tensor in .*nolabels\.safetensors/.test(e.message));
    const noPixels = await write('nopixels.safetensors', ['input_ids']);
    await assert.rejects(runInspect({ model, inputs: noPixels, out, backend: 'cpu' }), (e: unknown) => e instanceof InvalidArgumentError && /nopixels\.safetensors: no 'pixel_values' tensor/.test(e.message));
    assert.equal(fs.existsSync(out), false);
  });
});
