import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerTrain } from '../src/cli/commands/train.js';
import { runTrain } from '../src/cli/train.js';
import { loadModelFolder } from '../src/io/model_files.js';
import { makeSynthetic } from '../src/train/synthetic.js';
import { ConfigError, InvalidArgumentError } from '../src/errors.js';

await tf.setBackend('wasm');

let root: string;
let data: string;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'clipseg-train-cli-'));
  data = path.join(root, 'data');
  await makeSynthetic({ out: data, seed: 4, images: 12, size: 96 });
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test('runTrain writes a loadable model folder, the JSONL log, the loss plot and checkpoints; --resume continues', async () => {
  const out = path.join(root, 'run');
  const notes: string[] = [];
  const options = { data, out, config: 'tiny', steps: 4, batchSize: 2, checkpointEvery: 2, evalEvery: 4, evalSplit: 'val', evalLimit: 4, progress: false, note: (l: string) => notes.push(l) };
  const before = tf.memory().numTensors;
  const summary = await runTrain({ ...options, steps: 4 });
  assert.equal(tf.memory().numTensors, before, 'the model is disposed after training');
  assert.equal(summary.steps, 4);
  assert.equal(summary.preset, 'tiny');
  assert.equal(summary.imageSize, 64);
  assert.equal(summary.parameters.trained, summary.parameters.total, 'the tiny preset trains everything');
  for (const name of ['config.json', 'model.safetensors', 'preprocessor_config.json', 'log.jsonl', 'loss.png', 'checkpoints/latest']) {
    assert.ok(existsSync(path.join(out, name)), name);
  }
  const log = (await fs.readFile(path.join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(log.filter((e) => e.eval === undefined).map((e) => e.step), [1, 2, 3, 4]);
  const evalEntry = log.find((e) => e.eval !== undefined) as { step: number; eval: { miou: number; samples: number } };
  assert.equal(evalEntry.step, 4);
  assert.ok(evalEntry.eval.samples > 0 && evalEntry.eval.miou >= 0 && evalEntry.eval.miou <= 1);
  const preprocessor = JSON.parse(await fs.readFile(path.join(out, 'preprocessor_config.json'), 'utf8')) as { size: unknown; image_mean: number[] };
  assert.deepEqual(preprocessor.size, { height: 64, width: 64 });
  assert.deepEqual(preprocessor.image_mean, [0.485, 0.456, 0.406]);

  const model = await loadModelFolder(out);
  assert.equal(model.config.vision_config.image_size, 64);
  model.dispose();

  // --init: fine-tune from that folder (its config and all its weights), decoder only by default.
  const tuned = await runTrain({ data, out: path.join(root, 'tuned'), init: out, steps: 2, batchSize: 2, checkpointEvery: 2, progress: false, note: () => undefined });
  assert.equal(tuned.preset, undefined);
  assert.ok(tuned.parameters.trained < tuned.parameters.total, 'CLIP stays frozen');
  const initial = await loadModelFolder(out);
  const result = await loadModelFolder(path.join(root, 'tuned'));
  const clipKey = 'clip.vision_model.encoder.layers.0.mlp.fc1.weight';
  const find = (m: typeof initial) => m.namedParameters().find((p) => p.name === clipKey)!.variable.dataSync();
  assert.deepEqual(find(result), find(initial), 'frozen CLIP weights come from --init unchanged');
  initial.dispose();
  result.dispose();

  // Extending is not resuming (the schedule would change), but resuming a finished run is a no-op that keeps the model.
  const again = await runTrain({ ...options, resume: true });
  assert.equal(again.startStep, 4);
  assert.ok(notes.some((l) => /resuming from .*ckpt-000004\.safetensors \(step 4 of 4\)/.test(l)), notes.join('\n'));
});

test('bad training options fail with typed errors before any work', async () => {
  const out = path.join(root, 'bad');
  await assert.rejects(runTrain({ data, out }), (e) => e instanceof InvalidArgumentError && /--config/.test(e.message) && /--init/.test(e.message));
  await assert.rejects(runTrain({ data, out, config: 'huge' }), (e) => e instanceof ConfigError && /unknown training preset 'huge'/.test(e.message));
  await assert.rejects(runTrain({ data, out, config: 'tiny', steps: 0 }), (e) => e instanceof InvalidArgumentError && /--steps/.test(e.message));
  await assert.rejects(runTrain({ data, out, config: 'tiny', negativeProb: 2 }), (e) => e instanceof InvalidArgumentError && /--negative-prob/.test(e.message));
  await assert.rejects(
    runTrain({ data, out, config: 'tiny', negatives: 'easy' as 'hard' }),
    (e) => e instanceof InvalidArgumentError && /--negatives: expected 'random' or 'hard', got 'easy'/.test(e.message),
  );
  await assert.rejects(runTrain({ data, out, config: path.join(root, 'missing.json') }), (e) => e instanceof ConfigError && /missing\.json/.test(e.message));
  await assert.rejects(runTrain({ data, out, config: 'tiny', order: 'random' as 'shuffle' }), (e) => e instanceof InvalidArgumentError && /--order/.test(e.message));
  await assert.rejects(runTrain({ data, out, config: 'tiny', loss: 'dice' as 'bce' }), (e) => e instanceof InvalidArgumentError && /--loss/.test(e.message) && /'dice'/.test(e.message));
  await assert.rejects(
    runTrain({ data, out, config: 'tiny', freeze: ['clip.text_model.*.q_proj.*'] }),
    (e) => e instanceof InvalidArgumentError && e.message.startsWith("--freeze: 'clip.text_model.*.q_proj.*' matches no parameter"),
  );
  assert.ok(!existsSync(out), 'nothing was written');
});

test('the train subcommand parses its flags and rejects malformed numbers', async () => {
  const program = new Command('clipseg').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerTrain(program);
  const train = program.commands.find((c) => c.name() === 'train')!;
  for (const flag of ['--data', '--out', '--config', '--init', '--steps', '--batch-size', '--accumulate', '--lr', '--seed', '--resume', '--eval-every', '--eval-split', '--full-finetune', '--freeze', '--feature-cache', '--order', '--loss', '--alignment', '--no-visual']) {
    assert.ok(train.options.some((o) => o.long === flag), flag);
  }
  // --freeze takes one or more globs, up to the next option.
  train.parseOptions(['--freeze', 'clip.text_model.**', 'decoder.film_add.*', '--steps', '3']);
  assert.deepEqual(train.opts().freeze, ['clip.text_model.**', 'decoder.film_add.*']);
  assert.equal(train.opts().steps, 3);
  await assert.rejects(
    program.parseAsync(['train', '--data', data, '--out', path.join(root, 'x'), '--steps', 'ten'], { from: 'user' }),
    (e) => e instanceof InvalidArgumentError && /--steps: expected an integer, got 'ten'/.test(e.message),
  );
});
