/**
 * Where `load` spends its time: opening model.safetensors, reading its tensors, converting HF-layout weights to the
 * tfjs layout on the host, and reading the tokenizer and image processor. Compares loading the HF folder with
 * loading the same weights saved once in the library's tfjs layout (which needs no transposes), and the blocked
 * transpose the loader uses with an element-by-element one.
 *
 *   node --import tsx benchmarks/probes/load_breakdown.ts [--rounds N]
 *
 * Writes the tfjs-layout copy to benchmarks/models/clipseg-rd64-refined-random-tfjs/ (git-ignored) on first use.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { selectBackend } from '../../src/backend.js';
import { loadModelFolder, saveModelFolder } from '../../src/io/model_files.js';
import { openSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { layoutKindOf, TRANSPOSE_BLOCK, transposeMatrix } from '../../src/models/layout.js';
import { loadProcessorFrom } from '../../src/pipeline/sources.js';
import { MODEL_DIR, MODELS_DIR } from '../cases.js';
import { runSide } from '../side_io.js';

const TFJS_DIR = path.join(MODELS_DIR, 'clipseg-rd64-refined-random-tfjs');

/** [rows, cols] -> [cols, rows] one output element at a time, striding through the input: the layout conversion before blocking. */
function elementwiseTranspose(data: Float32Array, rows: number, cols: number, out: Float32Array): void {
  let o = 0;
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[o++] = data[r * cols + c]!;
}

/** [rows, cols] -> [cols, rows] in square 32x32 tiles. */
function squareTiledTranspose(data: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let r0 = 0; r0 < rows; r0 += 32) {
    const r1 = Math.min(r0 + 32, rows);
    for (let c0 = 0; c0 < cols; c0 += 32) {
      const c1 = Math.min(c0 + 32, cols);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) out[c * rows + r] = data[r * cols + c]!;
      }
    }
  }
}

async function median(rounds: number, fn: () => Promise<void> | void): Promise<number> {
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
  const file = await openSafetensors(weights);
  const keys = file.keys().filter((k) => !k.endsWith('position_ids'));
  const sizeOf = (key: string): number => file.info(key).shape.reduce((a, b) => a * b, 1);
  const buffer = new Float32Array(Math.max(...keys.map(sizeOf)));
  const matrices = keys.filter((k) => layoutKindOf(k) === 'linear');
  const output = new Float32Array(Math.max(...matrices.map(sizeOf)));
  const rows: [string, number][] = [];
  rows.push(['read model.safetensors (603 MB) whole into memory (readSafetensors)', await median(rounds, async () => void (await readSafetensors(weights)))]);
  rows.push(['open model.safetensors, header only (openSafetensors)', await median(rounds, async () => void (await openSafetensors(weights)))]);
  rows.push(['read every tensor from disk into one reused buffer', await median(rounds, () => keys.forEach((k) => file.readFloat32Into(k, buffer)))]);
  const inMemory = new Map(matrices.map((k) => [k, file.getFloat32(k)]));
  const transposeAll = (transpose: (data: Float32Array, rows: number, cols: number, out: Float32Array) => void) => () => {
    for (const [key, data] of inMemory) {
      const [r, c] = file.info(key).shape as [number, number];
      transpose(data, r, c, output.subarray(0, r * c));
    }
  };
  rows.push([`${matrices.length} Linear weights [out, in] -> [in, out], transpose in blocks of ${TRANSPOSE_BLOCK.rows} rows x ${TRANSPOSE_BLOCK.cols} columns (the loader's)`, await median(rounds, transposeAll(transposeMatrix))]);
  rows.push([`${matrices.length} Linear weights, square 32x32 tiles instead`, await median(rounds, transposeAll(squareTiledTranspose))]);
  rows.push([`${matrices.length} Linear weights, element-by-element transpose instead`, await median(rounds, transposeAll(elementwiseTranspose))]);
  inMemory.clear();
  rows.push(['loadModelFolder, HF layout', await median(rounds, async () => (await loadModelFolder(MODEL_DIR)).dispose())]);
  rows.push(['loadModelFolder, tfjs layout (no transposes)', await median(rounds, async () => (await loadModelFolder(TFJS_DIR)).dispose())]);
  rows.push(['tokenizer + image processor (loadProcessorFrom)', await median(rounds, async () => void (await loadProcessorFrom(MODEL_DIR)))]);
  const lines = [`| step, median of ${rounds} after a warm-up | ms |`, '|---|---|', ...rows.map(([name, ms]) => `| ${name} | ${ms.toFixed(0)} |`)];
  process.stdout.write(`${lines.join('\n')}\n`);
}

runSide(main);
