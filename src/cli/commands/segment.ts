/** Declares `clipseg segment`; the model, tfjs and the image codecs load when the command runs. */
import { type Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { COLORMAP_NAMES, type ColormapName } from '../../processor/colormap.js';
import { DEFAULT_MASK_THRESHOLD } from '../../processor/mask_threshold.js';
import type { PromptBox } from '../../processor/visual_prompt.js';
import { collect } from '../parse.js';
import type { SegmentCommandOptions } from '../segment.js';

export const DEFAULT_OUT_DIR = 'clipseg-out';

function parseThreshold(value: string): number {
  const t = Number(value);
  if (value.trim() === '' || !(t >= 0 && t <= 1)) throw new CommanderArgumentError('expected a number in [0, 1]');
  return t;
}

function parseBox(value: string, previous: PromptBox[] = []): PromptBox[] {
  const parts = value.split(',').map((v) => Number(v.trim()));
  if (parts.length !== 4 || !parts.every(Number.isFinite) || parts[2]! <= 0 || parts[3]! <= 0) {
    throw new CommanderArgumentError('expected x,y,width,height in pixels, with positive width and height');
  }
  return [...previous, parts as unknown as PromptBox];
}

function parseCacheSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CommanderArgumentError('expected a non-negative integer');
  return n;
}

function parseColormap(value: string): ColormapName {
  if (!(COLORMAP_NAMES as readonly string[]).includes(value)) throw new CommanderArgumentError(`expected one of ${COLORMAP_NAMES.join(', ')}`);
  return value as ColormapName;
}

export function registerSegment(program: Command): void {
  program
    .command('segment')
    .description('segment images with text and/or image prompts: masks, probability maps and an overlay per image')
    .argument('<image...>', 'image files (PNG, JPEG, BMP, TIFF, GIF)')
    .option('-p, --prompt <text>', 'a text prompt (repeat for several)', collect)
    .option('--visual-prompt <image>', 'an image used as the prompt (repeat for several)', collect)
    .option('--visual-mask <mask>', 'mask of the region to look for in the matching --visual-prompt (paired by order)', collect)
    .option('--visual-box <x,y,w,h>', 'box of the region in the matching --visual-prompt, in pixels (paired by order)', parseBox)
    .option('-m, --model <src>', 'model folder or hub id (default: the shipped demo model)')
    .option('-t, --threshold <t>', `mask threshold in [0, 1] (default ${DEFAULT_MASK_THRESHOLD})`, parseThreshold)
    .option('-o, --out <dir>', `output folder (default ${DEFAULT_OUT_DIR})`)
    .option('--colormap <name>', `probability image colours: ${COLORMAP_NAMES.join(', ')} (default grey)`, parseColormap)
    .option('--legend <where>', "overlay legend: 'right' (a strip beside the image, default) or 'over' (a box on its top-left corner)")
    .option('--cache-size <n>', 'text embeddings kept for reuse (default 256)', parseCacheSize)
    .option('--json', 'print a machine-readable summary (files, areas, max probabilities, timings)')
    .action(async (images: string[], options: SegmentCommandOptions) => {
      const { runSegment, formatSegmentSummary } = await import('../segment.js');
      const summary = await runSegment(images, options);
      process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSegmentSummary(summary));
    });
}
