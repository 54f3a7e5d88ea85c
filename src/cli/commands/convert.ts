/** Declares `clipseg convert`; the converter loads when the command runs. */
import type { Command } from 'commander';
import type { ConvertCommandOptions } from '../convert.js';

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert CLIPSeg weights into a model folder in the tfjs layout (config, weights, processor files)')
    .argument('<src>', "HF model folder or weights file (model.safetensors, sharded index, pytorch_model.bin), or the paper's decoder weights")
    .argument('<out>', 'output folder (created if needed)')
    .option('--dtype <dtype>', 'precision of the written weights: float32 or float16', 'float32')
    .option('--clip <file>', "OpenAI CLIP ViT-B/16 weights (ViT-B-16.pt) for the paper's decoder-only weights (rd64-uni.pth, ...)")
    .option('--config <file>', 'JSON of config.json values that override the source config or complete the inferred one')
    .action(async (src: string, out: string, options: ConvertCommandOptions) => {
      const [{ runConvert }, { formatSummary }] = await Promise.all([import('../convert.js'), import('../../../weights-converter/summary.js')]);
      process.stdout.write(formatSummary(await runConvert(src, out, options)));
    });
}
