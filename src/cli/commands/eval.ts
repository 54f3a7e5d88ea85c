/** Declares `clipseg eval`; the model and the evaluator load when the command runs. */
import type { Command } from 'commander';
import type { EvalCommandOptions } from '../eval.js';
import { number } from '../parse.js';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model on a PhraseCut-format split (mIoU, IoU_FG, AP)')
    .requiredOption('--model <dir|id>', 'model folder or hub id')
    .requiredOption('--data <dir>', 'PhraseCut folder (VGPhraseCut_v0 or its parent)')
    .option('--split <name>', "split: train, val, test, miniv or e.g. 'val_miniv'", 'test')
    .option('--threshold <t>', 'probability threshold', number('--threshold', false), 0.3)
    .option('--protocol <name>', "'paper' (squashed square input, +1 smoothing, AP) or 'official' (original size, binary masks)", 'paper')
    .option('--size <px>', "model input side (default: the model's preprocessor_config.json, 352 for the CIDAS models)", number('--size', true))
    .option('--batch-size <n>', 'images per forward pass (a CIDAS model at 352 px needs about 2.4 GB for 16 on the wasm backend, whose memory ends at 4 GB)', number('--batch-size', true), 16)
    .option('--limit <n>', 'evaluate only the first n tasks', number('--limit', true))
    .option('--json', 'print the result as JSON on stdout')
    .option('--per-task <file>', "also write one JSON line per task: task_id, phrase, iou and pixel counts at the threshold")
    .option('--breakdown', 'also give mIoU by phrase type, target area, predicted-to-target area and distractor (under "breakdown" with --json)')
    .action(async (options: EvalCommandOptions) => {
      const { runEval } = await import('../eval.js');
      await runEval(options);
    });
}
