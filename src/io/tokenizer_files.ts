/**
 * Loads a CLIPTokenizer from a Hugging Face tokenizer folder (vocab.json, merges.txt and, when present,
 * tokenizer_config.json and special_tokens_map.json), or from the vocabulary shipped in assets/clip/.
 * Reference: transformers 4.57.6 models/clip/tokenization_clip.py (merges slice) and tokenization_utils_base.py
 * (special_tokens_map.json entries override tokenizer_config.json).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

import { ConfigError, FileFormatError, FileNotFoundError, InvalidArgumentError } from '../errors.js';
import { CLIP_BPE_FILE_NAME, CLIP_NUM_MERGES, clipTokenizerFromBpeText } from '../processor/default_vocab.js';
import { CLIPTokenizer, type CLIPTokenizerConfig } from '../processor/tokenizer.js';

const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token'];

let defaultTokenizer: Promise<CLIPTokenizer> | undefined;

/**
 * Path of the shipped bpe_simple_vocab_16e6.txt.gz. The module runs from src/io (tsx) or dist/src/io (build),
 * so the package root is found by walking up to the folder that holds assets/clip/.
 */
export function defaultBpePath(): string {
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'assets', 'clip', CLIP_BPE_FILE_NAME);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new FileNotFoundError(path.join('assets', 'clip', CLIP_BPE_FILE_NAME), `shipped CLIP vocabulary (searched upward from ${start})`);
  }
}

/**
 * `CLIPTokenizer.from_pretrained(dir)`. Without `dir`, the tokenizer built from the shipped OpenAI vocabulary,
 * which is identical to the CIDAS/clipseg-* tokenizer files (built once per process and shared).
 */
export async function loadTokenizer(dir?: string): Promise<CLIPTokenizer> {
  if (dir === undefined) {
    if (defaultTokenizer === undefined) {
      const file = defaultBpePath();
      defaultTokenizer = readBytes(file, 'shipped CLIP vocabulary').then(async (bytes) => clipTokenizerFromBpeText(await gunzipText(bytes, file), file));
    }
    return defaultTokenizer.catch((err: unknown) => {
      defaultTokenizer = undefined;
      throw err;
    });
  }
  if (typeof dir !== 'string' || dir === '') throw new InvalidArgumentError(`dir: expected a folder path, got ${JSON.stringify(dir)}`);
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat === undefined) throw new FileNotFoundError(dir, 'tokenizer folder');
  if (!stat.isDirectory()) throw new FileFormatError(dir, 'expected a tokenizer folder, got a file');

  const vocabPath = path.join(dir, 'vocab.json');
  const vocab = await readJson(vocabPath, 'tokenizer vocabulary');
  if (vocab === undefined) throw new FileNotFoundError(vocabPath, 'tokenizer vocabulary');
  checkVocab(vocab, vocabPath);
  const mergesPath = path.join(dir, 'merges.txt');
  const merges = parseMerges(new TextDecoder().decode(await readBytes(mergesPath, 'tokenizer merges')), mergesPath);

  const configPath = path.join(dir, 'tokenizer_config.json');
  const config = (await readJson(configPath, 'tokenizer config')) ?? {};
  checkObject(config, configPath);
  const mapPath = path.join(dir, 'special_tokens_map.json');
  const specialMap = (await readJson(mapPath, 'special tokens map')) ?? {};
  checkObject(specialMap, mapPath);
  const merged: Record<string, unknown> = { ...config };
  for (const key of SPECIAL_TOKEN_KEYS) {
    if (key in specialMap) merged[key] = specialMap[key];
  }

  try {
    return new CLIPTokenizer({ vocab, merges, config: merged as CLIPTokenizerConfig });
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new FileFormatError(dir, `inconsistent tokenizer files: ${err.message}`, { cause: err });
    if (err instanceof ConfigError) throw new ConfigError(`${dir}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * merges.txt: a "#version" header, then one "left right" pair per line in rank order. Like HF's CLIP
 * tokenizer, only the first 48,894 merges are used.
 */
export function parseMerges(text: string, source: string): string[] {
  const lines = text.replace(/\r\n/g, '\n').trim().split('\n');
  const start = lines[0]?.startsWith('#version') ? 1 : 0;
  const merges = lines.slice(start, start + CLIP_NUM_MERGES);
  merges.forEach((line, i) => {
    if (line.split(' ').length !== 2 || line.startsWith(' ') || line.endsWith(' ')) {
      throw new FileFormatError(source, `line ${start + i + 1}: expected two space-separated symbols, got ${JSON.stringify(line.slice(0, 60))}`);
    }
  });
  return merges;
}

function checkObject(value: unknown, source: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FileFormatError(source, 'expected a JSON object at the top level');
  }
}

function checkVocab(value: unknown, source: string): asserts value is Record<string, number> {
  checkObject(value, source);
  for (const [token, id] of Object.entries(value)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new FileFormatError(source, `entry ${JSON.stringify(token)}: expected a non-negative integer id, got ${JSON.stringify(id)}`);
    }
  }
}

/** node:zlib rather than fflate here: several times faster on the 1.3 MB file. */
async function gunzipText(bytes: Uint8Array, source: string): Promise<string> {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(await promisify(gunzip)(bytes));
  } catch (err) {
    throw new FileFormatError(source, `not a gzip-compressed UTF-8 text file (${(err as Error).message})`, { cause: err });
  }
}

async function readBytes(file: string, what: string): Promise<Uint8Array> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FileNotFoundError(file, what);
    throw new FileFormatError(file, `cannot read ${what} (${(err as Error).message})`, { cause: err });
  }
}

/** Parsed JSON, or undefined when the file does not exist. */
async function readJson(file: string, what: string): Promise<unknown> {
  let bytes: Uint8Array;
  try {
    bytes = await readBytes(file, what);
  } catch (err) {
    if (err instanceof FileNotFoundError) return undefined;
    throw err;
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new FileFormatError(file, `invalid JSON in ${what} (${(err as Error).message})`, { cause: err });
  }
}
