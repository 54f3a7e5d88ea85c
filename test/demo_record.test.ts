import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readStoredTraining } from '../scripts/demo_record.js';
import { ClipSegError, FileFormatError, FileNotFoundError, InvalidArgumentError } from '../src/errors.js';
import { scratchFolders } from './helpers/scratch.js';

const scratch = scratchFolders('clipseg-demo-record-');
const DATA = { generator: 'makeSynthetic', seed: 2024, images: 40, size: 192, splits: { train: 32, val: 3 }, tasks: { train: 140, val: 12 } };
const TRAINING = { config: 'demo', steps: 4500, restarts: [{ steps: 1800, imageSize: 160 }], final_loss: 0.25 };

async function report(content: string): Promise<string> {
  const file = path.join(await scratch(), 'report.json');
  await fs.writeFile(file, content);
  return file;
}

test('an evaluate-only run takes the training record and parameter count of the report it re-evaluates', async () => {
  const file = await report(JSON.stringify({ model: { config: 'demo', parameters: 3492930 }, data: DATA, training: TRAINING, evaluation: { miou: 0.5 } }));
  assert.deepEqual(await readStoredTraining(file, structuredClone(DATA)), { training: TRAINING, parameters: 3492930 });
});

test('a missing, malformed or foreign report is refused by name before anything is evaluated', async () => {
  const folder = await scratch();
  const missing = path.join(folder, 'report.json');
  await assert.rejects(readStoredTraining(missing, DATA), (e) => e instanceof FileNotFoundError && e.message === `--evaluate-only: the model's report not found: ${missing}`);
  await fs.mkdir(missing);
  await assert.rejects(readStoredTraining(missing, DATA), (e) => e instanceof FileNotFoundError && e.path === missing, 'a folder where the report should be');
  const cases: [string, new (...args: never[]) => ClipSegError, RegExp][] = [
    ['{"model":', FileFormatError, /: --evaluate-only: expected the JSON report train:demo writes \(/],
    ['null', FileFormatError, /: --evaluate-only: expected a report with a training object and model.parameters/],
    [JSON.stringify({ model: { parameters: 1 }, data: DATA }), FileFormatError, /expected a report with a training object/],
    [JSON.stringify({ model: {}, data: DATA, training: TRAINING }), FileFormatError, /expected a report with a training object and model.parameters/],
    [JSON.stringify({ model: { parameters: 1 }, data: { ...DATA, images: 41 }, training: TRAINING }), InvalidArgumentError, /records other data \(.*"images":41.*\) than this run's \(.*"images":40/],
    [JSON.stringify({ model: { parameters: 1 }, training: TRAINING }), InvalidArgumentError, /records other data \(undefined\)/],
  ];
  for (const [content, kind, message] of cases) {
    const file = await report(content);
    await assert.rejects(readStoredTraining(file, DATA), (e) => e instanceof kind && e.message.includes(file) && message.test(e.message), content);
  }
});
