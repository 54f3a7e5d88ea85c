/** The input size `npm run train:demo` ships: its `--inference-size` candidates and the choice among them. */
import { number } from '../src/cli/parse.js';
import { InvalidArgumentError } from '../src/errors.js';

/**
 * By default the candidates are the last stage's size and two larger ones: the recorded model, trained last at
 * 224 px, scored validation mIoU 0.676 there, 0.685 at 256 px and 0.684 at 288 px. Finer tokens at inference help a
 * model whose misses are small objects, up to a point the validation split has to find.
 */
export const INFERENCE_SIZE_OFFSETS: readonly number[] = [0, 32, 64];

/**
 * The sizes to try, from `--inference-size PX,PX,...` or else the last stage's size plus each offset. Each must be a
 * positive multiple of the patch size (so the token grid covers the picture exactly) and listed once.
 */
export function inferenceSizes(option: string | undefined, trainedSize: number, patchSize: number): number[] {
  if (option === undefined) return INFERENCE_SIZE_OFFSETS.map((d) => trainedSize + d);
  const sizes = option.split(',').map(number('--inference-size', true));
  if (sizes.some((n) => n < patchSize || n % patchSize !== 0)) {
    throw new InvalidArgumentError(`--inference-size: expected positive multiples of the patch size ${patchSize}, got '${option}'`);
  }
  if (new Set(sizes).size !== sizes.length) throw new InvalidArgumentError(`--inference-size: expected each size once, got '${option}'`);
  return sizes;
}

/** One candidate's score on the validation split. */
export interface SizeScore {
  size: number;
  miou: number;
}

/** The size with the best validation mIoU; on a tie the one listed first (by default the smaller, cheaper one). */
export function chooseInferenceSize(scores: readonly SizeScore[]): number {
  if (scores.length === 0) throw new InvalidArgumentError('inference sizes: expected at least one scored size, got none');
  let best = scores[0]!;
  for (const s of scores) if (s.miou > best.miou) best = s;
  return best.size;
}
