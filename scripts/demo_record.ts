/** `npm run train:demo -- --evaluate-only`: how the model in `--out` was trained, from the report.json it wrote. */
import { promises as fs } from 'node:fs';
import { FileFormatError, FileNotFoundError, InvalidArgumentError } from '../src/errors.js';
import { isFile } from '../src/io/fs_checks.js';

export interface StoredTraining<T> {
  /** The report's `training` object, as the run that trained the model wrote it. */
  training: T;
  /** The model's parameter count (`model.parameters`). */
  parameters: number;
}

/**
 * Reads `file` (a report.json of train:demo) and returns its training record. The report must describe the same
 * data (`data`, compared as JSON) that this run generated, or the new scores would describe other tasks.
 */
export async function readStoredTraining<T>(file: string, data: unknown): Promise<StoredTraining<T>> {
  if (!(await isFile(file))) throw new FileNotFoundError(file, '--evaluate-only: the model\'s report');
  const text = await fs.readFile(file, 'utf8');
  let prior: { model?: { parameters?: unknown }; data?: unknown; training?: unknown };
  try {
    prior = JSON.parse(text) as typeof prior;
  } catch (e) {
    throw new FileFormatError(file, `--evaluate-only: expected the JSON report train:demo writes (${(e as Error).message})`);
  }
  const parameters = prior?.model?.parameters;
  if (typeof prior?.training !== 'object' || prior.training === null || typeof parameters !== 'number') {
    throw new FileFormatError(file, '--evaluate-only: expected a report with a training object and model.parameters, as train:demo writes');
  }
  if (JSON.stringify(prior.data) !== JSON.stringify(data)) {
    throw new InvalidArgumentError(`--evaluate-only: ${file} records other data (${JSON.stringify(prior.data)}) than this run's (${JSON.stringify(data)})`);
  }
  return { training: prior.training as T, parameters };
}
