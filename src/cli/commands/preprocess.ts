/** Declares `clipseg preprocess`; the processor and image decoder load when the command runs. */
import type { Command } from 'commander';
import { collect } from '../parse.js';
import type { PreprocessOptions } from '../preprocess.js';

export function registerPreprocess(program: Command): void {
  program
    .command('preprocess')
    .description('write pixel_values (and, with --prompt, input_ids / attention_mask) exactly as the model receives them')
    .argument('<image...>', 'image files; they form the batch in this order')
    .requiredOption('-o, --out <file>', 'the .safetensors file to write')
    .option('-m, --model <src>', "model folder or hub id whose preprocessor_config.json to apply (default: the demo model's)")
    .option('-p, --prompt <text>', 'also tokenize this text (repeat; padded to the longest, as HF padding=True)', collect)
    .option('--visual-prompt <image>', 'also write conditional_pixel_values for this image (repeat)', collect)
    .option('--json', 'print the written tensors as JSON')
    .action(async (images: string[], options: PreprocessOptions & { json?: boolean }) => {
      const { runPreprocess } = await import('../preprocess.js');
      const summary = await runPreprocess(images, options);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      } else {
        const lines = Object.entries(summary.tensors).map(([name, t]) => `${name} ${t.dtype} [${t.shape.join(', ')}]`);
        process.stdout.write(`${summary.out}: ${lines.join('; ')}\n`);
      }
    });
}
