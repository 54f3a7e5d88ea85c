/**
 * Builds CLIP's 49,408-entry vocabulary and 48,894 merges from OpenAI's BPE file (bpe_simple_vocab_16e6.txt.gz,
 * shipped in assets/clip/), giving the same tables as HF's vocab.json and merges.txt.
 * Reference: transformers 4.57.6 models/clip/tokenization_clip.py (merges line slice and vocab layout).
 * Browser-safe: takes the file's bytes; src/io/tokenizer_files.ts reads them from disk.
 */
import { gunzipSync } from 'fflate';

import { FileFormatError } from '../errors.js';
import { END_OF_WORD } from './bpe.js';
import { BYTE_SYMBOLS_IN_VOCAB_ORDER } from './byte_unicode.js';
import { CLIPTokenizer, DEFAULT_TOKENIZER_CONFIG } from './tokenizer.js';

/** CLIP keeps the first 49152 - 256 - 2 merges of the file. */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;
export const CLIP_BPE_FILE_NAME = 'bpe_simple_vocab_16e6.txt.gz';

export interface ClipVocabulary {
  vocab: Map<string, number>;
  merges: string[];
}

/**
 * Vocabulary layout: ids 0-255 are the byte symbols, 256-511 the same with "</w>", then one entry per merge
 * (the concatenated pair) in merge order, then <|startoftext|> and <|endoftext|>.
 */
export function clipVocabularyFromBpeText(text: string, source: string): ClipVocabulary {
  // Only the header and the first CLIP_NUM_MERGES lines are used; the file has about 262k.
  let end = 0;
  for (let line = 0; line <= CLIP_NUM_MERGES && end >= 0; line++) end = text.indexOf('\n', end + 1);
  const lines = (end < 0 ? text : text.slice(0, end)).split('\n');
  // The header is "#version: 0.2" (in OpenAI's file it is prefixed with the archive's name).
  if (!lines[0]!.includes('#version')) {
    throw new FileFormatError(source, `expected a "#version" header line, got ${JSON.stringify(lines[0]!.slice(0, 60))}`);
  }
  const merges = lines.slice(1);
  if (merges.length < CLIP_NUM_MERGES) {
    throw new FileFormatError(source, `expected at least ${CLIP_NUM_MERGES} merge lines after the header, found ${merges.length}`);
  }
  const tokens = [...BYTE_SYMBOLS_IN_VOCAB_ORDER, ...BYTE_SYMBOLS_IN_VOCAB_ORDER.map((s) => s + END_OF_WORD)];
  merges.forEach((merge, i) => {
    const space = merge.indexOf(' ');
    if (space <= 0 || space === merge.length - 1 || merge.includes(' ', space + 1)) {
      throw new FileFormatError(source, `line ${i + 2}: expected two space-separated symbols, got ${JSON.stringify(merge.slice(0, 60))}`);
    }
    tokens.push(merge.slice(0, space) + merge.slice(space + 1));
  });
  tokens.push('<|startoftext|>', '<|endoftext|>');
  const vocab = new Map<string, number>();
  tokens.forEach((token, id) => vocab.set(token, id));
  return { vocab, merges };
}

/** Decompresses the gzipped BPE file and builds the vocabulary. */
export function clipVocabularyFromBpeGz(bytes: Uint8Array, source: string): ClipVocabulary {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(gunzipSync(bytes));
  } catch (err) {
    throw new FileFormatError(source, `not a gzip-compressed UTF-8 text file (${(err as Error).message})`, { cause: err });
  }
  return clipVocabularyFromBpeText(text, source);
}

/** The CLIPSeg tokenizer from the text of OpenAI's BPE file. */
export function clipTokenizerFromBpeText(text: string, source = CLIP_BPE_FILE_NAME): CLIPTokenizer {
  const { vocab, merges } = clipVocabularyFromBpeText(text, source);
  return new CLIPTokenizer({ vocab, merges, config: { ...DEFAULT_TOKENIZER_CONFIG } });
}

/** The CLIPSeg tokenizer from the bytes of bpe_simple_vocab_16e6.txt.gz (e.g. fetched in a browser). */
export function clipTokenizerFromBpeGz(bytes: Uint8Array, source = CLIP_BPE_FILE_NAME): CLIPTokenizer {
  const { vocab, merges } = clipVocabularyFromBpeGz(bytes, source);
  return new CLIPTokenizer({ vocab, merges, config: { ...DEFAULT_TOKENIZER_CONFIG } });
}
