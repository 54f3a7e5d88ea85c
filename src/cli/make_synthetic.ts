/** `clipseg make-synthetic`: writes a PhraseCut-format dataset of coloured shapes (see `src/train/synthetic.ts`). */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../errors.js';
import { makeSynthetic } from '../train/synthetic.js';

function integer(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name}: expected an integer, got '${value}'`);
    return n;
  };
}

export function registerMakeSynthetic(program: Command): void {
  program
    .command('make-synthetic')
    .description('write a synthetic PhraseCut-format dataset (coloured shapes with referring phrases) for training and tests')
    .requiredOption('--out <dir>', 'output folder (laid out like VGPhraseCut_v0)')
    .option('--seed <n>', 'random seed; the same seed writes the same bytes', integer('--seed'), 0)
    .option('--images <n>', 'number of images (at least 4)', integer('--images'), 200)
    .option('--size <px>', 'longer image side in pixels', integer('--size'), 320)
    .option('--json', 'print the summary as JSON')
    .action(async (options: { out: string; seed: number; images: number; size: number; json?: boolean }) => {
      const summary = await makeSynthetic({ out: options.out, seed: options.seed, images: options.images, size: options.size });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      const rows = Object.keys(summary.images).map((s) => `  ${s.padEnd(6)} ${String(summary.images[s]).padStart(6)} images ${String(summary.tasks[s]).padStart(7)} tasks`);
      process.stdout.write(`wrote ${summary.out}\n${rows.join('\n')}\n`);
    });
}
