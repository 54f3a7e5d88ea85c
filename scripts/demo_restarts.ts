/** The warm restarts of `npm run train:demo`, from its `--restart-steps` and `--restart-size` options. */
import { number } from '../src/cli/parse.js';
import { InvalidArgumentError } from '../src/errors.js';
import { DEMO_RESTARTS, trainingPreset, type DemoRestart } from '../src/train/presets.js';
import { count } from '../src/text.js';

const DEMO_BATCH = trainingPreset('demo').defaults.batchSize;

/** One restart's settings for runTrain. */
export interface RestartRun {
  imageSize: number;
  steps: number;
  lr: number;
  minLr: number;
  warmup: number;
  batchSize: number;
  accumulate: number;
}

/**
 * Restart i takes `steps[i]` steps at `sizes[i]` px (without sizes, the preset's size for it) and the preset's
 * learning rates; a restart beyond the preset's list takes the last one's. Each step sees `batchSize` samples, in
 * the preset's number of micro-batches. `'0'` alone means no restart. Checked before the first stage runs, so a bad
 * value fails at once and names its option, not runTrain's.
 */
export function demoRestarts(steps: string, sizes?: string, presets: readonly DemoRestart[] = DEMO_RESTARTS, batchSize = DEMO_BATCH): RestartRun[] {
  const lengths = list('--restart-steps', steps);
  if (lengths.length === 1 && lengths[0] === 0) return [];
  if (lengths.some((n) => n < 1)) throw new InvalidArgumentError(`--restart-steps: expected 0 alone (no restart) or lengths of 1 or more, got '${steps}'`);
  const preset = (i: number): DemoRestart => presets[Math.min(i, presets.length - 1)]!;
  const pixels = sizes === undefined ? lengths.map((_, i) => preset(i).imageSize) : list('--restart-size', sizes);
  if (pixels.length !== lengths.length) {
    throw new InvalidArgumentError(`--restart-size: expected ${count(lengths.length, 'size')}, one per --restart-steps entry, got '${sizes}'`);
  }
  if (pixels.some((n) => n < 1)) throw new InvalidArgumentError(`--restart-size: expected positive sizes in pixels, got '${sizes}'`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError(`--batch-size: expected a positive integer, got ${batchSize}`);
  for (let i = 0; i < lengths.length; i++) {
    const micro = preset(i).microBatches;
    if (batchSize % micro !== 0) {
      throw new InvalidArgumentError(`--batch-size: expected a multiple of ${micro} (restart ${i + 1} splits each step into ${micro} micro-batches), got ${batchSize}`);
    }
  }
  return lengths.map((n, i) => ({
    imageSize: pixels[i]!,
    steps: n,
    lr: preset(i).lr,
    minLr: preset(i).minLr,
    warmup: Math.min(preset(i).warmupSteps, Math.floor(n / 4)),
    batchSize: batchSize / preset(i).microBatches,
    accumulate: preset(i).microBatches,
  }));
}

/** The run folder's and loss curve's suffix for restart i: none for the first, then '-2', '-3', ... */
export function restartSuffix(i: number): string {
  return i === 0 ? '' : `-${i + 1}`;
}

function list(name: string, value: string): number[] {
  return value.split(',').map(number(name, true));
}
