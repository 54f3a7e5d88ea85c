/**
 * CLIP tokenizer with the behaviour of Hugging Face's default `CLIPTokenizerFast` (the tokenizer
 * `CLIPSegProcessor` loads): NFC, whitespace runs collapsed to one space, per-character lowercase, CLIP's
 * pre-tokenisation regex, byte-level symbols and BPE with "</w>" on the last symbol of each piece.
 * Reference: transformers 4.57.6 convert_slow_tokenizer.py `CLIPConverter` and models/clip/tokenization_clip_fast.py.
 * Browser-safe: no file access here (see src/io/tokenizer_files.ts).
 */
import { ConfigError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { BytePairEncoder, END_OF_WORD } from './bpe.js';
import { CHAR_TO_BYTE, textToByteSymbols } from './byte_unicode.js';

/** An added-token record as tokenizer_config.json / special_tokens_map.json write it. */
export interface AddedTokenSpec {
  content: string;
  normalized?: boolean;
  special?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  single_word?: boolean;
}

export type TokenSpec = string | AddedTokenSpec;

/** The tokenizer_config.json fields this tokenizer reads (snake_case as on disk); other keys are ignored. */
export interface CLIPTokenizerConfig {
  model_max_length?: number;
  bos_token?: TokenSpec;
  eos_token?: TokenSpec;
  unk_token?: TokenSpec;
  pad_token?: TokenSpec;
  added_tokens_decoder?: Record<string, AddedTokenSpec>;
  readonly [key: string]: unknown;
}

/** The values of CIDAS/clipseg-rd64-refined's tokenizer_config.json. */
export const DEFAULT_TOKENIZER_CONFIG: Readonly<CLIPTokenizerConfig> = {
  model_max_length: 77,
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
};

export interface CLIPTokenizerInit {
  vocab: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
  /** Merge rules in rank order, each "left right" as in merges.txt (without the "#version" header). */
  merges: readonly string[];
  config?: CLIPTokenizerConfig;
}

export interface EncodeOptions {
  /** Wrap in BOS ... EOS (default true). */
  addSpecialTokens?: boolean;
  /** Cut the content so the whole sequence fits `maxLength`, keeping BOS and EOS (default false). */
  truncation?: boolean;
  /** Length limit for truncation and for `padding: 'max_length'` (default: model_max_length, 77). */
  maxLength?: number;
}

export type Padding = boolean | 'longest' | 'max_length' | 'do_not_pad';

export interface BatchEncodeOptions extends EncodeOptions {
  /** `true`/'longest' pads to the longest sequence, 'max_length' to `maxLength`; on the right, with PAD (default false). */
  padding?: Padding;
}

export interface BatchEncoding {
  input_ids: number[][];
  attention_mask: number[][];
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

interface AddedToken {
  content: string;
  id: number;
  normalized: boolean;
  special: boolean;
}

type Segment = string | number;

/** Oniguruma's `\s` (the Unicode White_Space set), which tokenizers uses; JS `\s` differs (it has U+FEFF, lacks U+0085). */
const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${WS}]+`, 'gu');
const PRE_TOKEN = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`, 'gu');
/** Python's str.strip() set, which the HF decode wrapper applies. */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'gu');
const ENCODE_KEYS = ['addSpecialTokens', 'truncation', 'maxLength'];
const BATCH_KEYS = [...ENCODE_KEYS, 'padding'];
// ignoreBOM keeps a leading U+FEFF in the text instead of swallowing it.
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * tokenizers lowercases one character at a time, so a word-final 'Σ' becomes 'σ', not the 'ς' that
 * String.prototype.toLowerCase gives; Final_Sigma is the only context-dependent mapping, hence the fast path.
 */
function lowercasePerChar(text: string): string {
  if (!text.includes('Σ')) return text.toLowerCase();
  let out = '';
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

/** The fast tokenizer's normalizer: NFC, whitespace runs to one space, lowercase. */
export function normalizeText(text: string): string {
  return lowercasePerChar(text.normalize('NFC').replace(WHITESPACE_RUN, ' '));
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

function checkOptions(options: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`options: expected an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new InvalidArgumentError(`options.${key}: unknown option (expected one of ${allowed.join(', ')})`);
    }
  }
  return options as Record<string, unknown>;
}

function checkBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${name}: expected a boolean, got ${describe(value)}`);
  return value;
}

export class CLIPTokenizer {
  readonly modelMaxLength: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  private readonly tokenToId: ReadonlyMap<string, number>;
  private readonly idToToken: ReadonlyMap<number, string>;
  private readonly bpe: BytePairEncoder;
  private readonly rawAddedTokens: readonly AddedToken[];
  private readonly normalizedAddedTokens: readonly AddedToken[];
  private readonly specialIds: ReadonlySet<number>;

  constructor(init: CLIPTokenizerInit) {
    if (init === null || typeof init !== 'object') {
      throw new InvalidArgumentError(`init: expected {vocab, merges, config?}, got ${describe(init)}`);
    }
    const tokenToId = new Map<string, number>(init.vocab instanceof Map ? init.vocab : Object.entries(init.vocab ?? {}));
    if (tokenToId.size === 0) throw new InvalidArgumentError('vocab: expected a non-empty token -> id table');
    const idToToken = new Map<number, string>();
    for (const [token, id] of tokenToId) {
      if (!Number.isSafeInteger(id) || id < 0) {
        throw new InvalidArgumentError(`vocab[${JSON.stringify(token)}]: expected a non-negative integer id, got ${describe(id)}`);
      }
      if (!idToToken.has(id)) idToToken.set(id, token);
    }
    this.bpe = new BytePairEncoder(CLIPTokenizer.rankMerges(init.merges, tokenToId));

    const config = { ...DEFAULT_TOKENIZER_CONFIG, ...(init.config ?? {}) };
    const maxLength = config.model_max_length;
    if (typeof maxLength !== 'number' || !Number.isInteger(maxLength) || maxLength < 1) {
      throw new ConfigError(`model_max_length: expected a positive integer, got ${describe(maxLength)}`);
    }
    this.modelMaxLength = maxLength;

    const added = new Map<string, AddedToken>();
    const register = (spec: unknown, where: string, fixedId?: number): AddedToken => {
      const record: AddedTokenSpec = typeof spec === 'string' ? { content: spec } : (spec as AddedTokenSpec);
      if (record === null || typeof record !== 'object' || typeof record.content !== 'string' || record.content === '') {
        throw new ConfigError(`${where}: expected a token string or {content: string, ...}, got ${describe(spec)}`);
      }
      if (record.lstrip || record.rstrip || record.single_word) {
        throw new UnsupportedError(`${where}: added tokens with lstrip, rstrip or single_word are not supported`);
      }
      const known = added.get(record.content);
      if (known !== undefined) return known;
      const id = fixedId ?? tokenToId.get(record.content);
      if (id === undefined) throw new ConfigError(`${where}: token ${JSON.stringify(record.content)} is not in the vocabulary`);
      tokenToId.set(record.content, id);
      idToToken.set(id, record.content);
      // Tokens converted from CLIP's slow files are AddedToken(normalized=True), whatever form the config uses.
      const token = { content: record.content, id, normalized: record.normalized ?? true, special: record.special ?? true };
      added.set(record.content, token);
      return token;
    };
    for (const [key, spec] of Object.entries(config.added_tokens_decoder ?? {})) {
      const id = Number(key);
      if (!Number.isSafeInteger(id) || id < 0) throw new ConfigError(`added_tokens_decoder: key ${JSON.stringify(key)} is not a token id`);
      register(spec, `added_tokens_decoder[${key}]`, id);
    }
    this.bosTokenId = register(config.bos_token, 'bos_token').id;
    this.eosTokenId = register(config.eos_token, 'eos_token').id;
    this.unkTokenId = register(config.unk_token, 'unk_token').id;
    this.padTokenId = register(config.pad_token, 'pad_token').id;

    this.tokenToId = tokenToId;
    this.idToToken = idToToken;
    // Longest first, so that when two tokens match at the same position the longer one wins.
    const byLength = [...added.values()].sort((a, b) => b.content.length - a.content.length);
    this.rawAddedTokens = byLength.filter((t) => !t.normalized);
    this.normalizedAddedTokens = byLength.filter((t) => t.normalized);
    this.specialIds = new Set([...added.values()].filter((t) => t.special).map((t) => t.id));
  }

  private static rankMerges(merges: readonly string[], vocab: ReadonlyMap<string, number>): Map<string, number> {
    if (!Array.isArray(merges)) throw new InvalidArgumentError(`merges: expected an array of "left right" strings, got ${describe(merges)}`);
    const ranks = new Map<string, number>();
    merges.forEach((merge: unknown, rank) => {
      const space = typeof merge === 'string' ? merge.indexOf(' ') : -1;
      const line = merge as string;
      if (space <= 0 || space === line.length - 1 || line.includes(' ', space + 1)) {
        throw new InvalidArgumentError(`merges[${rank}]: expected "left right" (two symbols, one space), got ${describe(merge)}`);
      }
      const left = line.slice(0, space);
      const right = line.slice(space + 1);
      for (const symbol of [left, right, left + right]) {
        if (!vocab.has(symbol)) throw new InvalidArgumentError(`merges[${rank}]: symbol ${JSON.stringify(symbol)} is not in the vocabulary`);
      }
      if (!ranks.has(line)) ranks.set(line, rank);
    });
    return ranks;
  }

  /** Number of entries in the vocabulary (49,408 for CLIP). */
  get vocabSize(): number {
    return this.idToToken.size;
  }

  /**
   * Token ids of one text, with BOS and EOS unless `addSpecialTokens` is false. Without truncation a text
   * may give more than 77 ids, as in HF; the CLIP text model rejects sequences longer than its 77 positions.
   */
  encode(text: string, options?: EncodeOptions): number[] {
    const opts = checkOptions(options, ENCODE_KEYS);
    return this.encodeOne(this.checkText(text, 'text'), opts);
  }

  /** Symbols of one text without BOS/EOS, as HF `tokenize` returns them (e.g. "cat</w>"). */
  tokenize(text: string): string[] {
    return this.convertIdsToTokens(this.contentIds(this.checkText(text, 'text')));
  }

  /**
   * HF `tokenizer(texts, padding=..., truncation=..., max_length=...)`: ids and attention masks for a batch.
   * Defaults are HF's: no padding, no truncation. Padding goes on the right with PAD (49407) and mask 0.
   */
  encodeBatch(texts: string | readonly string[], options?: BatchEncodeOptions): BatchEncoding {
    const opts = checkOptions(options, BATCH_KEYS);
    let list: readonly string[];
    if (typeof texts === 'string') list = [texts];
    else if (Array.isArray(texts)) list = texts.map((t, i) => this.checkText(t, `texts[${i}]`));
    else throw new InvalidArgumentError(`texts: expected a string or an array of strings, got ${describe(texts)}`);
    const padding = opts.padding ?? false;
    if (![true, false, 'longest', 'max_length', 'do_not_pad'].includes(padding as Padding)) {
      throw new InvalidArgumentError(`options.padding: expected true, false, 'longest', 'max_length' or 'do_not_pad', got ${describe(padding)}`);
    }
    const ids = list.map((text) => this.encodeOne(text, opts));
    let target = 0;
    if (padding === true || padding === 'longest') target = ids.reduce((longest, seq) => Math.max(longest, seq.length), 0);
    else if (padding === 'max_length') target = this.resolveMaxLength(opts.maxLength);
    return {
      input_ids: ids.map((seq) => seq.concat(new Array<number>(Math.max(0, target - seq.length)).fill(this.padTokenId))),
      attention_mask: ids.map((seq) => new Array<number>(Math.max(target, seq.length)).fill(0).fill(1, 0, seq.length)),
    };
  }

  /** HF-style decode: symbols joined, bytes decoded (invalid UTF-8 becomes U+FFFD), "</w>" read as a space, trimmed. */
  decode(ids: readonly number[] | Int32Array, options?: DecodeOptions): string {
    const opts = checkOptions(options, ['skipSpecialTokens']);
    const skip = checkBoolean(opts.skipSpecialTokens, 'options.skipSpecialTokens', false);
    const tokens = this.convertIdsToTokens(skip ? this.checkIds(ids, 'ids').filter((id) => !this.specialIds.has(id)) : ids);
    const bytes: number[] = [];
    for (const token of tokens) {
      const mapped: number[] = [];
      for (const ch of token) {
        const b = CHAR_TO_BYTE.get(ch);
        if (b === undefined) break;
        mapped.push(b);
      }
      // A token with a character outside the byte alphabet is taken as its own UTF-8, as the ByteLevel decoder does.
      if (mapped.length === token.length) bytes.push(...mapped);
      else bytes.push(...utf8Encoder.encode(token));
    }
    return utf8Decoder.decode(new Uint8Array(bytes)).replaceAll(END_OF_WORD, ' ').replace(PY_STRIP, '');
  }

  convertIdsToTokens(ids: readonly number[] | Int32Array): string[] {
    return this.checkIds(ids, 'ids').map((id) => this.idToToken.get(id)!);
  }

  /** Ids of vocabulary symbols; a symbol not in the vocabulary gives the UNK id, as in HF. */
  convertTokensToIds(tokens: readonly string[]): number[] {
    if (!Array.isArray(tokens)) throw new InvalidArgumentError(`tokens: expected an array of strings, got ${describe(tokens)}`);
    return tokens.map((token, i) => this.tokenToId.get(this.checkText(token, `tokens[${i}]`)) ?? this.unkTokenId);
  }

  private checkText(text: unknown, name: string): string {
    if (typeof text !== 'string') throw new InvalidArgumentError(`${name}: expected a string, got ${describe(text)}`);
    return text;
  }

  /** Accepts an Int32Array too, the form ids take when read back from a tensor. */
  private checkIds(ids: unknown, name: string): number[] {
    if (ids instanceof Int32Array) return this.checkIds(Array.from(ids), name);
    if (!Array.isArray(ids)) throw new InvalidArgumentError(`${name}: expected an array of token ids, got ${describe(ids)}`);
    ids.forEach((id: unknown, i) => {
      if (typeof id !== 'number' || !this.idToToken.has(id)) {
        throw new InvalidArgumentError(`${name}[${i}]: expected a token id in the vocabulary (0..${this.vocabSize - 1}), got ${describe(id)}`);
      }
    });
    return ids as number[];
  }

  private resolveMaxLength(value: unknown): number {
    if (value === undefined) {
      if (Number.isSafeInteger(this.modelMaxLength)) return this.modelMaxLength;
      throw new InvalidArgumentError(`options.maxLength: required, since model_max_length (${this.modelMaxLength}) sets no usable limit`);
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`options.maxLength: expected a positive integer, got ${describe(value)}`);
    }
    return value;
  }

  private encodeOne(text: string, opts: Record<string, unknown>): number[] {
    const special = checkBoolean(opts.addSpecialTokens, 'options.addSpecialTokens', true);
    const truncation = checkBoolean(opts.truncation, 'options.truncation', false);
    const maxLength = opts.maxLength === undefined ? undefined : this.resolveMaxLength(opts.maxLength);
    let content = this.contentIds(text);
    if (truncation) {
      const budget = (maxLength ?? this.resolveMaxLength(undefined)) - (special ? 2 : 0);
      if (budget < 0) throw new InvalidArgumentError(`options.maxLength: must be at least 2 to hold BOS and EOS, got ${maxLength}`);
      content = content.slice(0, budget);
    }
    return special ? [this.bosTokenId, ...content, this.eosTokenId] : content;
  }

  /** Ids of the text without BOS/EOS: added tokens are split out first, the rest is normalised and BPE-encoded. */
  private contentIds(text: string): number[] {
    const ids: number[] = [];
    for (const raw of splitOnTokens(text, this.rawAddedTokens)) {
      if (typeof raw === 'number') {
        ids.push(raw);
        continue;
      }
      for (const piece of splitOnTokens(normalizeText(raw), this.normalizedAddedTokens)) {
        if (typeof piece === 'number') ids.push(piece);
        else this.encodeWords(piece, ids);
      }
    }
    return ids;
  }

  private encodeWords(normalized: string, out: number[]): void {
    for (const match of normalized.matchAll(PRE_TOKEN)) {
      for (const symbol of this.bpe.encode(textToByteSymbols(match[0]))) {
        out.push(this.tokenToId.get(symbol) ?? this.unkTokenId);
      }
    }
  }
}

/** Splits text into plain segments and the ids of the added tokens it contains, leftmost match first. */
function splitOnTokens(text: string, tokens: readonly AddedToken[]): Segment[] {
  const out: Segment[] = [];
  let rest = text;
  for (;;) {
    let at = -1;
    let hit: AddedToken | undefined;
    for (const token of tokens) {
      const i = rest.indexOf(token.content);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        hit = token;
      }
    }
    if (hit === undefined) break;
    if (at > 0) out.push(rest.slice(0, at));
    out.push(hit.id);
    rest = rest.slice(at + hit.content.length);
  }
  if (rest !== '') out.push(rest);
  return out;
}
