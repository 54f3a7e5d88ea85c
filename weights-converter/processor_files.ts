/**
 * The processor half of a model folder: `preprocessor_config.json` and the CLIP tokenizer files. They are copied
 * from the source when it has them; otherwise the standard ones are written, with the values the CIDAS/clipseg-*
 * repositories ship and the vocabulary generated from the package's `assets/clip/bpe_simple_vocab_16e6.txt.gz`
 * in the format of transformers' `CLIPTokenizer.save_vocabulary` (vocab.json indented by 2 with sorted keys,
 * merges.txt under a "#version: 0.2" header).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../src/io/atomic.js';
import { PREPROCESSOR_FILE, TOKENIZER_FILES } from '../src/io/pretrained.js';
import { defaultBpePath } from '../src/io/tokenizer_files.js';
import { clipVocabularyFromBpeGz } from '../src/processor/default_vocab.js';
import { isFile } from '../src/io/fs_checks.js';

const ADDED_TOKEN = { lstrip: false, normalized: true, rstrip: false, single_word: false };

/** CIDAS's tokenizer_config.json (saved from openai/clip-vit-base-patch32 with processor_class added). */
export const STANDARD_TOKENIZER_CONFIG = {
  add_prefix_space: false,
  bos_token: { __type: 'AddedToken', content: '<|startoftext|>', ...ADDED_TOKEN },
  do_lower_case: true,
  eos_token: { __type: 'AddedToken', content: '<|endoftext|>', ...ADDED_TOKEN },
  errors: 'replace',
  model_max_length: 77,
  pad_token: '<|endoftext|>',
  processor_class: 'CLIPSegProcessor',
  tokenizer_class: 'CLIPTokenizer',
  unk_token: { __type: 'AddedToken', content: '<|endoftext|>', ...ADDED_TOKEN },
};

export const STANDARD_SPECIAL_TOKENS_MAP = {
  bos_token: { content: '<|startoftext|>', ...ADDED_TOKEN },
  eos_token: { content: '<|endoftext|>', ...ADDED_TOKEN },
  pad_token: '<|endoftext|>',
  unk_token: { content: '<|endoftext|>', ...ADDED_TOKEN },
};

/** CIDAS's preprocessor_config.json since 2023-01-04 (ImageNet statistics, 352 x 352, PIL bilinear). */
export const STANDARD_PREPROCESSOR_CONFIG = {
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.485, 0.456, 0.406],
  image_processor_type: 'ViTImageProcessor',
  image_std: [0.229, 0.224, 0.225],
  processor_class: 'CLIPSegProcessor',
  resample: 2,
  rescale_factor: 0.00392156862745098,
  size: { height: 352, width: 352 },
};

/** `json.dumps(value, indent=2)` for objects whose keys are already in order, plus the trailing newline HF writes. */
function pythonJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * vocab.json as `json.dumps(encoder, indent=2, sort_keys=True, ensure_ascii=False)`. Written by hand because a JS
 * object would list integer-like keys ("1", "10") first instead of in code point order.
 */
function vocabJson(vocab: ReadonlyMap<string, number>): string {
  const keys = [...vocab.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `{\n${keys.map((k) => `  ${JSON.stringify(k)}: ${vocab.get(k)}`).join(',\n')}\n}\n`;
}

type TokenizerFiles = Record<(typeof TOKENIZER_FILES)[number], string>;

let standard: Promise<TokenizerFiles> | undefined;

async function buildStandardTokenizerFiles(): Promise<TokenizerFiles> {
  const file = defaultBpePath();
  const { vocab, merges } = clipVocabularyFromBpeGz(await fs.readFile(file), file);
  return {
    'vocab.json': vocabJson(vocab),
    'merges.txt': `#version: 0.2\n${merges.join('\n')}\n`,
    'tokenizer_config.json': pythonJson(STANDARD_TOKENIZER_CONFIG),
    'special_tokens_map.json': pythonJson(STANDARD_SPECIAL_TOKENS_MAP),
  };
}

/** The four standard CLIP tokenizer files, by name (built once per process: about 1.6 MB of text). */
export function standardTokenizerFiles(): Promise<TokenizerFiles> {
  standard ??= buildStandardTokenizerFiles().catch((err: unknown) => {
    standard = undefined;
    throw err;
  });
  return standard;
}

export interface ProcessorFilesResult {
  /** Files copied from the source folder. */
  copied: string[];
  /** Standard files written because the source had none. */
  generated: string[];
}

/**
 * Writes the processor files into `out`: each one the source folder `from` has is copied byte for byte; the
 * preprocessor config and (unless the source has both vocab.json and merges.txt) the tokenizer are standard.
 */
export async function writeProcessorFiles(out: string, from?: string): Promise<ProcessorFilesResult> {
  const result: ProcessorFilesResult = { copied: [], generated: [] };
  const copy = async (name: string): Promise<boolean> => {
    if (from === undefined || path.resolve(from) === path.resolve(out) || !(await isFile(path.join(from, name)))) return false;
    await writeFileAtomic(path.join(out, name), await fs.readFile(path.join(from, name)));
    result.copied.push(name);
    return true;
  };
  const present = async (name: string): Promise<boolean> => from !== undefined && isFile(path.join(from, name));
  await fs.mkdir(out, { recursive: true });
  if (!(await copy(PREPROCESSOR_FILE)) && !(await present(PREPROCESSOR_FILE))) {
    await writeFileAtomic(path.join(out, PREPROCESSOR_FILE), pythonJson(STANDARD_PREPROCESSOR_CONFIG));
    result.generated.push(PREPROCESSOR_FILE);
  }
  const ownVocabulary = (await present('vocab.json')) && (await present('merges.txt'));
  const generated = ownVocabulary ? undefined : await standardTokenizerFiles();
  for (const name of TOKENIZER_FILES) {
    if (ownVocabulary && ((await copy(name)) || (await present(name)))) continue;
    const content = generated?.[name] ?? pythonJson(name === 'tokenizer_config.json' ? STANDARD_TOKENIZER_CONFIG : STANDARD_SPECIAL_TOKENS_MAP);
    await writeFileAtomic(path.join(out, name), content);
    result.generated.push(name);
  }
  return result;
}
