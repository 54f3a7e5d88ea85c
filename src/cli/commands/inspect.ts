/**
 * Declares `clipseg inspect`: tensor files in, every output under transformers' names out (`inspect.ts`), or an image
 * with prompts, module captures and heatmaps (`inspect_inputs.ts`); the model and tfjs load when the command runs.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../errors.js';
import type { InspectOptions } from '../inspect.js';
import type { CaptureInspectOptions } from '../inspect_inputs.js';
import { collect } from '../parse.js';

/** Input tensors `inspect` accepts, with the model argument each one feeds. */
export const INSPECT_INPUTS = {
  pixel_values: 'pixelValues',
  input_ids: 'inputIds',
  attention_mask: 'attentionMask',
  conditional_pixel_values: 'conditionalPixelValues',
  conditional_embeddings: 'conditionalEmbeddings',
  labels: 'labels',
} as const;

type InspectCommandOptions = Partial<InspectOptions> & CaptureInspectOptions & { json?: boolean };

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('run the model on tensors from a safetensors file and write every output (HF field names) for comparison with PyTorch')
    .option('--model <src>', 'model folder or hub id')
    .option('--inputs <file>', `safetensors with pixel_values and a prompt (${Object.keys(INSPECT_INPUTS).join(', ')})`)
    .option('--out <file>', 'safetensors file to write')
    .option('--hidden-states', 'also write vision_model_output.hidden_states.* and decoder_output.hidden_states.*')
    .option('--attentions', 'also write vision_model_output.attentions.* and decoder_output.attentions.*')
    .option('--grads', 'also write grad.<key> of the loss for every trainable (decoder) parameter; needs labels')
    .option('--image <file>', 'run on this image (with --prompt / --visual-prompt) instead of --inputs')
    .option('-p, --prompt <text>', 'a text prompt for --image (repeat for several)', collect)
    .option('--visual-prompt <image>', 'an image prompt for --image (repeat for several)', collect)
    .option('--capture <pattern...>', "keep module activations by HF name glob, e.g. 'clip.vision_model.encoder.layers.*' 'decoder.layers.*:input'")
    .option('--heatmaps <dir>', 'write attention (per layer, head, mean, rollout) and decoder-norm heatmaps over the image as PNGs')
    .option('--json', 'print the summary as JSON')
    .action(async (options: InspectCommandOptions) => {
      if (options.image !== undefined || options.capture !== undefined || options.heatmaps !== undefined) {
        const { runCaptureInspect, formatCaptureSummary } = await import('../inspect_inputs.js');
        const summary = await runCaptureInspect(options);
        process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatCaptureSummary(summary));
        return;
      }
      const { model, inputs, out } = options;
      if (model === undefined || inputs === undefined || out === undefined) {
        const key = model === undefined ? 'model' : inputs === undefined ? 'inputs' : 'out';
        throw new InvalidArgumentError(`inspect: --${key} is required (or use --image with --prompt)`);
      }
      const { runInspect, formatInspectSummary } = await import('../inspect.js');
      const summary = await runInspect({ ...options, model, inputs, out });
      process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatInspectSummary(summary));
    });
}
