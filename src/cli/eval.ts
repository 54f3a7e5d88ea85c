/** `clipseg eval`: scores a model on a PhraseCut-format split with the paper's or the official protocol. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { selectBackend } from '../backend.js';
import { InvalidArgumentError } from '../errors.js';
import { withRelease } from '../failures.js';
import { breakdownScores, breakdownTables, type ScoreBreakdown } from '../eval/breakdown.js';
import { type EvaluationResult, type Protocol, type TaskScore, evaluate } from '../eval/evaluate.js';
import { writeFileAtomic } from '../io/atomic.js';
import { isDirectory } from '../io/fs_checks.js';
import { resolvePretrainedFolder } from '../io/pretrained.js';
import { CLIPSegForImageSegmentation } from '../models/clipseg_segmentation.js';
import { targetSize } from '../processor/image_processor.js';
import { loadImageProcessorFrom, loadTokenizerFrom } from '../pipeline/sources.js';
import { checkWritableFolder } from './output_folder.js';

const pct = (v: number): string => (100 * v).toFixed(2).padStart(7);

export function formatEvaluation(r: EvaluationResult): string {
  const lines = [`PhraseCut ${r.split}, ${r.protocol} protocol: ${r.samples} tasks in ${r.seconds.toFixed(1)} s`];
  if (r.protocol === 'paper') {
    lines.push(`  threshold ${r.threshold.toFixed(2)}   mIoU ${pct(r.miou)}   IoU_FG ${pct(r.fgiou)}   IoU_BIN ${pct(r.biniou ?? 0)}   AP ${pct(r.ap ?? 0)}`);
    if (r.best !== undefined) {
      lines.push(
        `  best      mIoU ${pct(r.best.miou)} (t ${r.best.miouThreshold.toFixed(2)})   IoU_FG ${pct(r.best.fgiou)} (t ${r.best.fgiouThreshold.toFixed(2)})   IoU_BIN ${pct(r.best.biniou)} (t ${r.best.biniouThreshold.toFixed(2)})`,
      );
    }
  } else {
    lines.push(`  threshold ${r.threshold}   mean IoU ${pct(r.miou)}   cumulative IoU ${pct(r.fgiou)}`);
    lines.push(`  accuracy  ${Object.entries(r.accuracy ?? {}).map(([t, v]) => `IoU>${t}: ${pct(v)}`).join('  ')}`);
  }
  const skipped = Object.entries(r.skipped);
  if (skipped.length > 0) lines.push(`  skipped   ${skipped.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** The breakdown as aligned text: one line per group with its task count, share and mean IoU. */
export function formatBreakdown(b: ScoreBreakdown): string {
  const lines = [`per-task IoU by group (${b.tasks} tasks, mean ${pct(b.miou)})`];
  for (const [title, groups] of breakdownTables(b)) {
    lines.push(`  ${title}`);
    for (const g of groups) lines.push(`    ${g.name.padEnd(28)} ${String(g.tasks).padStart(6)} tasks ${pct(g.share)} %   mIoU ${g.tasks === 0 ? '      -' : pct(g.miou)}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface EvalCommandOptions {
  model: string;
  data: string;
  split: string;
  threshold: number;
  protocol: string;
  batchSize: number;
  limit?: number;
  size?: number;
  json?: boolean;
  /** Also write one JSON line per task (`TaskScore`) to this file. */
  perTask?: string;
  /** Also group the per-task IoU by phrase type, target area, spill and distractor (`breakdownScores`). */
  breakdown?: boolean;
}

/** Checks the --per-task path before the evaluation runs, so a bad path fails first. */
async function checkPerTaskPath(file: string): Promise<void> {
  if (await isDirectory(file)) throw new InvalidArgumentError(`--per-task: expected a file path, got the folder ${file}`);
  await checkWritableFolder(path.dirname(path.resolve(file)), '--per-task');
}

/** Loads the model and scores it; prints the table, or with `json` the result as JSON. */
export async function runEval(options: EvalCommandOptions): Promise<void> {
  if (options.protocol !== 'paper' && options.protocol !== 'official') {
    throw new InvalidArgumentError(`--protocol: expected 'paper' or 'official', got '${options.protocol}'`);
  }
  if (options.perTask !== undefined) await checkPerTaskPath(options.perTask);
  await selectBackend(process.env.CLIPSEG_BACKEND);
  const dir = await resolvePretrainedFolder(options.model, { files: 'all' });
  const [model, tokenizer, imageProcessor] = await Promise.all([
    CLIPSegForImageSegmentation.fromPretrained(dir),
    loadTokenizerFrom(dir),
    loadImageProcessorFrom(dir),
  ]);
  // The model's own input size: a model trained at 96 px in 12 px patches cannot take the paper's 352.
  const size = options.size ?? targetSize(imageProcessor.options.size, 352, 352).height;
  const scores: TaskScore[] = [];
  const keepScores = options.perTask !== undefined || options.breakdown === true;
  await withRelease(async () => {
    const result = await evaluate(model, options.data, {
      tokenizer,
      split: options.split,
      threshold: options.threshold,
      protocol: options.protocol as Protocol,
      batchSize: options.batchSize,
      size,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(keepScores ? { onTask: (score: TaskScore) => scores.push(score) } : {}),
      onProgress: options.json
        ? undefined
        : (done, total) => {
            if (process.stderr.isTTY) process.stderr.write(`\r${done}/${total}${done === total ? '\n' : ''}`);
          },
    });
    if (options.perTask !== undefined) {
      await fs.mkdir(path.dirname(path.resolve(options.perTask)), { recursive: true });
      await writeFileAtomic(options.perTask, scores.map((score) => `${JSON.stringify(score)}\n`).join(''));
    }
    const breakdown = options.breakdown === true ? breakdownScores(scores) : undefined;
    if (options.json) process.stdout.write(`${JSON.stringify(breakdown === undefined ? result : { ...result, breakdown }, null, 2)}\n`);
    else process.stdout.write(formatEvaluation(result) + (breakdown === undefined ? '' : formatBreakdown(breakdown)));
  }, () => model.dispose());
}
