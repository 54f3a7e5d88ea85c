/**
 * Where `load` spends its time: reading model.safetensors, converting HF-layout weights to the tfjs layout on the
 * host, building the variables, and reading the tokenizer and image processor. Compares loading the HF folder with
 * loading the same weights saved once in the library's tfjs layout (which needs no transposes).
 *
 *   node --import tsx benchmarks/probes/load_breakdown.ts [--rounds N]
 *
 * Writes the tfjs-layout copy to benchmarks/models/clipseg-rd64-refined-random-tfjs/ (git-ignored) on first use.
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { selectBackend } from '../../src/backend.js';
import { loadModelFolder, saveModelFolder } from '../../src/io/model_files.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { convertLayout } from '../../src/models/layout.js';
import { loadProcessorFrom } from '../../src/pipeline/sources.js';
import { MODEL_DIR, MODELS_DIR } from '../cases.js';
import { runSide } from '../side_io.js';

const TFJS_DIR = path.join(MODELS_DIR, 'clipseg-rd64-refined-random-tfjs');

/** [rows, cols] -> [cols, rows] in 32x32 tiles, so reads and writes both stay within a few cache lines. */
function tiledTranspose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(r0 + tile, rows);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(c0 + tile, cols);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) out[c * rows + r] = data[r * cols + c]!;
      }
    }
  }
  return out;
}

async function median(rounds: number, fn: () => Promise<void>): Promise<number> {
  await fn();
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return samples.sort((a, b) => a - b)[rounds >> 1]!;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 5;
  await selectBackend('wasm');
  if (!existsSync(path.join(TFJS_DIR, 'model.safetensors'))) {
    const model = await loadModelFolder(MODEL_DIR);
    await saveModelFolder(model, TFJS_DIR, { layout: 'tfjs' });
    model.dispose();
  }
  const weights = path.join(MODEL_DIR, 'model.safetensors');
  const rows: [string, number][] = [];
  rows.push(['read model.safetensors (603 MB) into memory', await median(rounds, async () => void (await readSafetensors(weights)))]);
  const file = await readSafetensors(weights);
  const keys = file.keys().filter((k) => !k.endsWith('position_ids'));
  rows.push([
    'HF -> tfjs layout on the host (every weight)',
    await median(rounds, async () => {
      for (const key of keys) convertLayout(key, file.info(key).shape, file.getFloat32(key), 'hf', 'tfjs');
    }),
  ]);
  const matrices = keys.filter((k) => file.info(k).shape.length === 2 && file.info(k).shape[0]! > 1 && !k.includes('embedding'));
  rows.push([
    `  of which the ${matrices.length} Linear weights [out, in] -> [in, out], 32x32-tiled transpose instead`,
    await median(rounds, async () => {
      for (const key of matrices) {
        const [rows_, cols] = file.info(key).shape as [number, number];
        tiledTranspose(file.getFloat32(key), rows_, cols);
      }
    }),
  ]);
  rows.push([
    `  of which the ${matrices.length} Linear weights, tf.transpose on the wasm backend instead`,
    await median(rounds, async () => {
      for (const key of matrices) {
        const t = tf.tensor2d(file.getFloat32(key), file.info(key).shape as [number, number]);
        const tt = tf.transpose(t);
        tt.dataSync();
        tf.dispose([t, tt]);
      }
    }),
  ]);
  rows.push(['loadModelFolder, HF layout', await median(rounds, async () => (await loadModelFolder(MODEL_DIR)).dispose())]);
  rows.push(['loadModelFolder, tfjs layout (no transposes)', await median(rounds, async () => (await loadModelFolder(TFJS_DIR)).dispose())]);
  rows.push(['tokenizer + image processor (loadProcessorFrom)', await median(rounds, async () => void (await loadProcessorFrom(MODEL_DIR)))]);
  const lines = [`| step, median of ${rounds} after a warm-up | ms |`, '|---|---|', ...rows.map(([name, ms]) => `| ${name} | ${ms.toFixed(0)} |`)];
  process.stdout.write(`${lines.join('\n')}\n`);
}

runSide(main);
