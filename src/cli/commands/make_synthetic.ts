/** Declares `clipseg make-synthetic`; the generator (and its image encoder) loads when the command runs. */
import type { Command } from 'commander';
import { integer } from '../parse.js';

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
      const { makeSynthetic } = await import('../../train/synthetic.js');
      const summary = await makeSynthetic({ out: options.out, seed: options.seed, images: options.images, size: options.size });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      const rows = Object.keys(summary.images).map((s) => `  ${s.padEnd(6)} ${String(summary.images[s]).padStart(6)} images ${String(summary.tasks[s]).padStart(7)} tasks`);
      process.stdout.write(`wrote ${summary.out}\n${rows.join('\n')}\n`);
    });
}
