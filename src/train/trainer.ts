/**
 * The training loop: gradient accumulation over micro-batches, AdamW with the cosine schedule, a finite-loss guard,
 * periodic checkpoints with exact resume, a JSONL log and a loss-curve PNG.
 *
 * What is trained and how a micro-batch's loss is built is the `TrainingTask`'s business (see
 * `segmentation_task.ts`); the loop only asks for micro-batch number i. A task must make micro-batch i a pure
 * function of its seed and i, so a run repeats bit for bit and a resumed run continues exactly where the
 * checkpoint left off (its state is the optimizer step, plus whatever `task.state()` adds).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, TrainingError } from '../errors.js';
import { NATIVE_BACKEND, WASM_RESTART, wasmTrap, withRelease } from '../failures.js';
import { writeFileAtomic } from '../io/atomic.js';
import { AdamW } from './adamw.js';
import { latestCheckpoint, readCheckpoint, restoreCheckpoint, saveCheckpoint } from './checkpoint.js';
import { renderLossPlot } from './loss_plot.js';
import { CosineSchedule } from './schedule.js';

type Json = Record<string, unknown>;

/** One micro-batch, prepared outside the gradient tape (data loading, frozen features). */
export interface MicroBatch {
  /** Number of samples in it. */
  readonly size: number;
  /** Builds the mean loss; runs inside the gradient tape, so only trainable computation belongs here. */
  loss(): tf.Scalar;
  /** Releases the tensors prepared for this micro-batch. */
  dispose(): void;
}

export interface TrainingTask {
  /** The parameters to train, by state-dict key. */
  trainableParameters(): Map<string, tf.Variable>;
  /** Micro-batch `index` (0-based over the whole run) of `size` samples. */
  microBatch(index: number, size: number): Promise<MicroBatch>;
  /** The model's `config.json` object, stored in checkpoints. */
  configJson(): Json;
  /** Extra scalar state for checkpoints (e.g. the data pipeline's RNG state); restored by `restore`. */
  state?(): Json;
  restore?(state: Json): void;
}

export interface TrainerOptions {
  /** Run folder: `checkpoints/`, `log.jsonl` and `loss.png` go here. */
  outDir: string;
  steps: number;
  batchSize: number;
  /** Micro-batches per optimizer step (the effective batch is batchSize x accumulate). */
  accumulate: number;
  lr: number;
  minLr: number;
  warmupSteps?: number;
  weightDecay?: number;
  /** AdamW's second-moment decay (default 0.999, torch's). */
  beta2?: number;
  /** Clip the global gradient norm to this value (torch `clip_grad_norm_`); 0 or undefined disables it. */
  maxGradNorm?: number;
  seed: number;
  /** Steps between checkpoints (the last step is always checkpointed). */
  checkpointEvery: number;
  keepCheckpoints?: number;
  /** Continue from the latest checkpoint in `outDir/checkpoints` if there is one. */
  resume?: boolean;
  /** End this invocation after this step (with a checkpoint), to be resumed later; the schedule still spans `steps`. */
  stopAt?: number;
  evalEvery?: number;
  evaluate?: (step: number) => Promise<Json>;
  /** Called after every optimizer step (progress bars). */
  onStep?: (record: StepRecord) => void;
  /** Called when a run resumes, with the step it continues from. */
  onResume?: (step: number, checkpoint: string) => void;
}

export interface StepRecord {
  /** 1-based number of the optimizer step just taken. */
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  samples: number;
  samples_per_s: number;
  elapsed_s: number;
}

export interface TrainResult {
  /** Optimizer steps completed when the call returned. */
  steps: number;
  /** Step the run started from (0, or the resumed checkpoint's step). */
  startStep: number;
  finalLoss: number;
  history: StepRecord[];
  lastCheckpoint: string | undefined;
}

/** Settings that must be unchanged for a resumed run to continue the same trajectory. */
const RESUME_KEYS = ['steps', 'batchSize', 'accumulate', 'lr', 'minLr', 'warmupSteps', 'weightDecay', 'beta2', 'maxGradNorm', 'seed'] as const;

function checkPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError(`${name}: expected a positive integer, got ${value}`);
}

export async function train(task: TrainingTask, options: TrainerOptions): Promise<TrainResult> {
  for (const key of ['steps', 'batchSize', 'accumulate', 'checkpointEvery'] as const) checkPositiveInt(key, options[key]);
  if (!Number.isSafeInteger(options.seed)) throw new InvalidArgumentError(`seed: expected an integer, got ${options.seed}`);
  const settings = {
    steps: options.steps,
    batchSize: options.batchSize,
    accumulate: options.accumulate,
    lr: options.lr,
    minLr: options.minLr,
    warmupSteps: options.warmupSteps ?? 0,
    weightDecay: options.weightDecay ?? 0.01,
    beta2: options.beta2 ?? 0.999,
    maxGradNorm: options.maxGradNorm ?? 0,
    seed: options.seed,
  };
  const schedule = new CosineSchedule({ lr: settings.lr, minLr: settings.minLr, steps: settings.steps, warmupSteps: settings.warmupSteps });
  const params = task.trainableParameters();
  if (params.size === 0) throw new InvalidArgumentError('task: no trainable parameters');
  const keyOfVariable = new Map([...params].map(([key, v]) => [v.name, key]));
  const varList = [...params.values()];
  const optimizer = new AdamW(params, { weightDecay: settings.weightDecay, beta2: settings.beta2 });
  const checkpointDir = path.join(options.outDir, 'checkpoints');
  const logPath = path.join(options.outDir, 'log.jsonl');
  await fs.mkdir(options.outDir, { recursive: true });

  return withRelease(async () => {
    let startStep = 0;
    let lastCheckpoint: string | undefined;
    let history: StepRecord[] = [];
    const latest = options.resume ? await latestCheckpoint(checkpointDir) : undefined;
    if (latest !== undefined) {
      const checkpoint = await readCheckpoint(latest);
      checkResumeSettings(latest, checkpoint.state.settings as Json | undefined, settings);
      // The task's state first, so that a checkpoint of other data or other frozen parameters is refused as such
      // rather than as a list of missing tensors.
      task.restore?.((checkpoint.state.task as Json | undefined) ?? {});
      restoreCheckpoint(checkpoint, params, optimizer);
      startStep = checkpoint.step;
      lastCheckpoint = latest;
      history = await truncateLog(logPath, startStep);
      options.onResume?.(startStep, latest);
    } else {
      await writeFileAtomic(logPath, '');
    }

    const started = Date.now();
    let samplesThisRun = 0;
    const endStep = Math.min(settings.steps, options.stopAt ?? settings.steps);
    for (let step = startStep; step < endStep; step++) {
      const lr = schedule.at(step);
      const { loss, gradNorm, samples, grads } = await accumulateStep(task, step, settings, varList, keyOfVariable).catch((err: unknown) => {
        throw wasmFailure(err, step, settings.batchSize, lastCheckpoint);
      });
      if (grads === undefined) {
        const what = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${gradNorm}`;
        throw new TrainingError(`training stopped at step ${step + 1}: ${what}; the update was not applied and ${kept(lastCheckpoint)}`);
      }
      try {
        optimizer.applyGradients(grads, lr);
      } finally {
        tf.dispose(Object.values(grads));
      }
      samplesThisRun += samples;
      const elapsed = (Date.now() - started) / 1000;
      const record: StepRecord = {
        step: step + 1,
        loss,
        lr,
        grad_norm: gradNorm,
        samples: (step + 1) * settings.batchSize * settings.accumulate,
        samples_per_s: elapsed > 0 ? samplesThisRun / elapsed : 0,
        elapsed_s: elapsed,
      };
      history.push(record);
      await fs.appendFile(logPath, `${JSON.stringify(record)}\n`);
      options.onStep?.(record);

      const done = step + 1;
      if (options.evaluate !== undefined && options.evalEvery !== undefined && options.evalEvery > 0 && done % options.evalEvery === 0) {
        const metrics = await options.evaluate(done);
        await fs.appendFile(logPath, `${JSON.stringify({ step: done, eval: metrics })}\n`);
      }
      if (done % options.checkpointEvery === 0 || done === endStep) {
        lastCheckpoint = await saveCheckpoint(
          checkpointDir,
          { step: done, params, optimizer, config: task.configJson(), state: { settings, task: task.state?.() ?? {} } },
          { keep: options.keepCheckpoints ?? 3 },
        );
        await writeLossPlot(options.outDir, history);
      }
    }
    if (history.length > 0 && startStep >= endStep) await writeLossPlot(options.outDir, history);
    return {
      steps: Math.max(startStep, endStep),
      startStep,
      finalLoss: history.length > 0 ? history[history.length - 1]!.loss : Number.NaN,
      history,
      lastCheckpoint,
    };
  }, () => optimizer.dispose());
}

interface StepGradients {
  loss: number;
  gradNorm: number;
  samples: number;
  /** Averaged (and clipped) gradients by parameter key; absent when the loss was not finite. */
  grads?: Record<string, tf.Tensor>;
}

function kept(lastCheckpoint: string | undefined): string {
  return lastCheckpoint === undefined ? 'no checkpoint was written yet' : `the last good checkpoint is ${lastCheckpoint}`;
}

/** A trap inside the wasm backend during a step, as a TrainingError that says how to go on; other errors pass. */
function wasmFailure(err: unknown, step: number, batchSize: number, lastCheckpoint: string | undefined): unknown {
  const trap = wasmTrap(err);
  if (trap === undefined) return err;
  // At one sample per micro-batch what no longer fits is mostly the weights, their gradients and the optimizer's
  // moments (about 3 GB with the backend's packed copies when a CIDAS model is fully fine-tuned), which no batch
  // size changes.
  const remedy =
    batchSize > 1
      ? 'lower the batch size and raise the accumulation to keep the samples per step (--batch-size, --accumulate), or lower the image size'
      : 'micro-batches cannot be smaller; train fewer parameters (CLIP frozen, without --full-finetune), lower the image size, ' +
        `or train on ${NATIVE_BACKEND}`;
  return new TrainingError(
    `training stopped at step ${step + 1}: ${trap} on micro-batches of ${batchSize}; ${remedy}, ${WASM_RESTART}; ${kept(lastCheckpoint)}`,
    { cause: err },
  );
}

/**
 * Runs the micro-batches of one optimizer step and averages their losses and gradients. A parameter that received
 * no gradient in any micro-batch gets no entry (the optimizer then skips it, as torch skips a `None` grad).
 */
async function accumulateStep(
  task: TrainingTask,
  step: number,
  settings: { batchSize: number; accumulate: number; maxGradNorm: number },
  varList: tf.Variable[],
  keyOfVariable: Map<string, string>,
): Promise<StepGradients> {
  const sum = new Map<string, tf.Tensor>();
  let lossSum = 0;
  let samples = 0;
  try {
    for (let k = 0; k < settings.accumulate; k++) {
      const batch = await task.microBatch(step * settings.accumulate + k, settings.batchSize);
      let value: tf.Scalar;
      let grads: tf.NamedTensorMap;
      try {
        ({ value, grads } = tf.variableGrads(() => batch.loss(), varList));
      } finally {
        batch.dispose();
      }
      const loss = (await value.data())[0]!;
      value.dispose();
      lossSum += loss;
      samples += batch.size;
      for (const [name, g] of Object.entries(grads)) {
        const key = keyOfVariable.get(name)!;
        const previous = sum.get(key);
        if (previous === undefined) {
          sum.set(key, g);
        } else {
          sum.set(key, tf.tidy(() => previous.add(g)));
          previous.dispose();
          g.dispose();
        }
      }
      if (!Number.isFinite(loss)) return { loss, gradNorm: Number.NaN, samples };
    }
    const gradNorm = sum.size === 0 ? 0 : await globalNorm([...sum.values()], settings.accumulate);
    if (!Number.isFinite(gradNorm)) return { loss: lossSum / settings.accumulate, gradNorm, samples };
    // Mean over micro-batches, then torch clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
    let scale = 1 / settings.accumulate;
    if (settings.maxGradNorm > 0) scale *= Math.min(1, settings.maxGradNorm / (gradNorm + 1e-6));
    const grads = tf.tidy(() => Object.fromEntries([...sum].map(([key, g]) => [key, scale === 1 ? g.clone() : g.mul(scale)])));
    return { loss: lossSum / settings.accumulate, gradNorm, samples, grads };
  } finally {
    tf.dispose([...sum.values()]);
  }
}

/** The L2 norm of all gradients together, after dividing each by `divisor`. */
async function globalNorm(grads: tf.Tensor[], divisor: number): Promise<number> {
  const norm = tf.tidy(() => tf.addN(grads.map((g) => g.div(divisor).square().sum())).sqrt());
  const value = (await norm.data())[0]!;
  norm.dispose();
  return value;
}

function checkResumeSettings(file: string, stored: Json | undefined, current: Record<(typeof RESUME_KEYS)[number], number>): void {
  if (stored === undefined) throw new TrainingError(`${file}: checkpoint has no run settings; cannot resume from it`);
  const changed = RESUME_KEYS.filter((k) => stored[k] !== current[k]).map((k) => `${k} ${JSON.stringify(stored[k])} -> ${current[k]}`);
  if (changed.length > 0) {
    throw new TrainingError(`cannot resume from ${file}: the run settings differ from the checkpoint's (${changed.join(', ')}); use the original settings or a new --out folder`);
  }
}

/** Keeps the log lines up to `step` (later ones belong to steps that will be redone) and returns their step records. */
async function truncateLog(logPath: string, step: number): Promise<StepRecord[]> {
  let text = '';
  try {
    text = await fs.readFile(logPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const kept: string[] = [];
  const records: StepRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let entry: Json;
    try {
      entry = JSON.parse(line) as Json;
    } catch {
      // A line cut short by a crash mid-append.
      continue;
    }
    if (typeof entry.step !== 'number' || entry.step > step) continue;
    kept.push(line);
    if (entry.eval === undefined) records.push(entry as unknown as StepRecord);
  }
  await writeFileAtomic(logPath, kept.map((l) => `${l}\n`).join(''));
  return records;
}

async function writeLossPlot(outDir: string, history: readonly StepRecord[]): Promise<void> {
  if (!history.some((r) => Number.isFinite(r.loss))) return;
  await writeFileAtomic(path.join(outDir, 'loss.png'), await renderLossPlot(history));
}
