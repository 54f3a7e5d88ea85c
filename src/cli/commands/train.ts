/** Declares `clipseg train`; tfjs, the model and the trainer load when the command runs. */
import type { Command } from 'commander';
import { TRAINING_PRESET_NAMES } from '../../train/presets.js';
import { number } from '../parse.js';
import type { TrainCommandOptions } from '../train.js';

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train CLIPSeg on a PhraseCut-format folder (decoder only by default, CLIP frozen) and write OUT as a model folder')
    .requiredOption('--data <dir>', 'PhraseCut folder (VGPhraseCut_v0 layout; `clipseg make-synthetic` writes one)')
    .requiredOption('--out <dir>', 'run folder: the final model, checkpoints/, log.jsonl and loss.png')
    .option('--config <preset|file>', `architecture: a preset (${TRAINING_PRESET_NAMES.join(', ')}) or a config.json (default: the --init model's)`)
    .option('--init <src>', 'initial weights (CLIP and decoder): a model folder or hub id')
    .option('--steps <n>', 'optimizer steps (default: the preset\'s, else 20000)', number('--steps', true))
    .option('--batch-size <n>', 'samples per micro-batch', number('--batch-size', true))
    .option('--accumulate <k>', 'micro-batches per optimizer step (effective batch = batch size x k)', number('--accumulate', true))
    .option('--lr <lr>', 'peak learning rate (cosine decay to --min-lr)', number('--lr', false))
    .option('--min-lr <lr>', 'final learning rate of the cosine schedule', number('--min-lr', false))
    .option('--warmup <n>', 'linear warm-up steps', number('--warmup', true))
    .option('--weight-decay <wd>', 'AdamW weight decay on weights of rank >= 2', number('--weight-decay', false))
    .option('--beta2 <b>', 'AdamW second-moment decay (default 0.999)', number('--beta2', false))
    .option('--max-grad-norm <n>', 'clip the global gradient norm (0 = off)', number('--max-grad-norm', false))
    .option('--seed <n>', 'seed of the initialisation and the data order; a run repeats exactly', number('--seed', true))
    .option('--resume', 'continue from the latest checkpoint in OUT/checkpoints')
    .option('--eval-every <n>', 'evaluate on --eval-split every n steps (logged to log.jsonl)', number('--eval-every', true))
    .option('--eval-split <name>', 'split for periodic evaluation', 'val')
    .option('--eval-limit <n>', 'tasks of the evaluation split to use', number('--eval-limit', true))
    .option('--full-finetune', 'train every parameter, CLIP included')
    .option('--freeze <pattern...>', "keep the parameters these globs over HF keys match at their initial values ('*' within a segment, '**' across), e.g. 'clip.text_model.**'")
    .option('--feature-cache <dir>', 'cache the frozen CLIP activations on disk (decoder-only training)')
    .option('--image-size <px>', 'training image side (default: the preset\'s, else 352)', number('--image-size', true))
    .option('--checkpoint-every <n>', 'steps between checkpoints', number('--checkpoint-every', true))
    .option('--keep <n>', 'checkpoints to keep', number('--keep', true))
    .option('--no-visual', 'text prompts only: no visual supports, no text/visual mixing')
    .option('--negative-prob <p>', 'probability of a negative sample (other phrase, empty mask)', number('--negative-prob', false))
    .option('--negatives <kind>', "'random' (any other phrase, the recipe's) or 'hard' (a phrase sharing an attribute with the task's and naming nothing in its picture)")
    .option('--templates <mode>', "'mixed' (9 prompt templates) or 'none' (raw phrase)")
    .option('--no-crop', 'squash whole images (as evaluation does) instead of random square crops; un-augmented samples of one image then share a vision pass')
    .option('--loss <kind>', "'bce' (the recipe's) or 'bce+dice' (adds a per-sample soft Dice term: small objects weigh as much as large ones)")
    .option('--alignment <w>', "add the token-alignment loss at this weight (needs --full-finetune; not the paper's recipe): each last-layer vision token, projected as CLIP projects its image embedding, is scored against the prompt by cosine and trained to mark the target", number('--alignment', false))
    .option('--order <mode>', "'shuffle' (seeded, per epoch) or 'sequential' (an image's phrases together, as CLIPSeg's loader)")
    .option('--json', 'print the summary as JSON on stdout')
    .action(async (options: TrainCommandOptions & { json?: boolean }) => {
      const [{ selectBackend }, { runTrain }] = await Promise.all([import('../../backend.js'), import('../train.js')]);
      await selectBackend(process.env.CLIPSEG_BACKEND);
      const summary = await runTrain(options);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `trained ${summary.steps} steps (from step ${summary.startStep}) in ${summary.seconds.toFixed(1)} s; final loss ${summary.finalLoss.toFixed(4)}\n` +
          `model folder: ${summary.out} (load it with --model ${summary.out})\n`,
      );
    });
}
