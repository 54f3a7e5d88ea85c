/**
 * `clipseg convert SRC OUT`: converts CLIPSeg weights (an HF folder or file, `pytorch_model.bin`, or the paper's
 * release with `--clip`) into a model folder in this package's tfjs layout, and prints a summary.
 */
import { promises as fs } from 'node:fs';
import { ConfigError, FileNotFoundError, InvalidArgumentError } from '../errors.js';
import { convertCheckpoint, type ConvertSummary, type OutputDType } from '../../weights-converter/convert.js';

export interface ConvertCommandOptions {
  dtype?: string;
  clip?: string;
  config?: string;
}

async function readOverrides(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new FileNotFoundError(file, 'config overrides (--config)');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${file}: expected a JSON object of config.json values`);
  return json as Record<string, unknown>;
}

export async function runConvert(src: string, out: string, options: ConvertCommandOptions = {}): Promise<ConvertSummary> {
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') throw new InvalidArgumentError(`--dtype: expected float32 or float16, got '${dtype}'`);
  return convertCheckpoint(src, out, {
    dtype: dtype as OutputDType,
    ...(options.clip !== undefined ? { clip: options.clip } : {}),
    ...(options.config !== undefined ? { config: await readOverrides(options.config) } : {}),
  });
}
