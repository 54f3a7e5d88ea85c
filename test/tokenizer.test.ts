import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import fc from 'fast-check';

import { ConfigError, FileFormatError, FileNotFoundError, InvalidArgumentError, UnsupportedError } from '../src/errors.js';
import { defaultBpePath, loadTokenizer, parseMerges } from '../src/io/tokenizer_files.js';
import { BytePairEncoder } from '../src/processor/bpe.js';
import { BYTE_TO_CHAR, CHAR_TO_BYTE, textToByteSymbols } from '../src/processor/byte_unicode.js';
import { CLIP_NUM_MERGES, clipTokenizerFromBpeGz, clipVocabularyFromBpeGz, clipVocabularyFromBpeText } from '../src/processor/default_vocab.js';
import { CLIPTokenizer, type BatchEncodeOptions } from '../src/processor/tokenizer.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/tokenizer/', import.meta.url));

interface Case {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
  decoded_skip_special: string;
  slow_ids: number[];
  truncated_ids?: number[];
}

interface Batch {
  texts: string[];
  options: { padding?: BatchEncodeOptions['padding']; truncation?: boolean; max_length?: number };
  input_ids: number[][];
  attention_mask: number[][];
}

interface CasesFile {
  model_max_length: number;
  cases: Case[];
  batches: Batch[];
  hf_files_texts: string[];
}

interface VocabDigest {
  vocab_size: number;
  tokens_by_id_sha256: string;
  num_merges: number;
  merges_sha256: string;
  samples: Record<string, string>;
  first_merges: string[];
  last_merges: string[];
  added_tokens: Record<string, string>;
}

const fixture = JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as CasesFile;
const digest = JSON.parse(readFileSync(path.join(FIXTURES, 'vocab.json'), 'utf8')) as VocabDigest;
const tokenizer = await loadTokenizer();

/**
 * Texts on which HF's slow CLIPTokenizer (with ftfy) gives other ids than the fast one, by cause. A test below checks
 * that this is exactly the set the fixture records, so this list cannot drift from the reference.
 */
const SLOW_DIFFERS: Record<string, readonly string[]> = {
  'ftfy turns full-width forms, ligatures and digraphs into their compatibility (ASCII) forms': [
    '０１２ full-width digits', 'ǅemal', 'ﬁsh ﬂour', '中文，标点。', 'ｶﾀｶﾅ half-width', 'ＡＢＣ full-width', 'ǆ', 'ﬃ', 'ｐｙｔｈｏｎ',
  ],
  'ftfy straightens curly quotes and apostrophes, so contractions split differently': [
    'it’s', 'don’t', 'I’m', 'it‘s', '‘curly’ “quotes”', '„low quotes“', 'ʼ modifier apostrophe',
  ],
  "Python's str.lower() gives a word-final 'ς'; tokenizers lowercases per character ('σ')": [
    'ΣΊΣΥΦΟΣ', 'ὈΔΥΣΣΕΎΣ',
  ],
  "ftfy drops U+FEFF and control characters and turns U+0085 into '…'; Python's \\s also covers \\x1c-\\x1f": [
    'a\ufeffb', '\ufeff', 'a\u0085b', 'a\u000bb', 'a\u001cb', '\u001cx\u001d', 'a\u0000b', '\u007f',
  ],
  'ftfy unescapes HTML entities': [
    '&amp;', 'fish &amp; chips', '&lt;b&gt;bold&lt;/b&gt;', '&quot;quoted&quot;', '&#39;apos&#39;', '&#x27;',
    '&nbsp;', 'a &copy; b', '&eacute;t&eacute;', '&AMP;',
  ],
  'ftfy repairs mojibake': [
    'Ã©', 'cafÃ©', 'â€™', 'donâ€™t',
  ],
  'seeded combinations that contain one of the above': [
    'Ã©laptop on desk next to coffee mug tiled floor\t7th floor', 'ὈΔΥΣΣΕΎΣ\u00a0カタカナ’!!!???...,,,',
    'HTTPS://EXAMPLE.COM/PATH?Q=1&X=Y#FRAG #HASHTAG @MENTION***\'&NBSP;', '১২৩ bengali\t"quoted" - &nbsp;',
    'cafÃ© 東京タワー🏳\ufe0f\u200d🌈\u00a0wait...', 'COVID-19\n‘curly’ “quotes”,it‘s',
    'wait...  0x1Fthey\'ve’https://example.com/path?q=1&x=y#frag', '&LT;B&GT;BOLD&LT;/B&GT;\nR2-D2 - ∑∫∂', '☃\tit’s',
    '„low quotes“,boy holding umbrella', 'iPhone’McDonald\'s\n٣ arabic-indic three\n☃', '½ ¾ fractionsdonâ€™t',
    '&lt;b&gt;bold&lt;/b&gt; العربية - 50% off!!!', '&NBSP;\u00a0☃\u00a0×÷', '★☆  �’ma\'am,user@example.com',
    '50% off!!! - fish &amp; chips', '\'tis,👩\u200d💻\t—em dash— –en dash–&nbsp;', 'cafÃ© - ¥1000\u00a0it’s',
    '°C - ḰṶṒN½ ¾ FRACTIONS,&#X27;', '\'tis’🧑🏽\u200d🚀\'-\tПРИВЕТ мир',
    'Zürich  👨\u200d👩\u200d👧\u200d👦’example.com/search?q=cat+dog\texample.com/search?q=cat+dog', '&amp;\tshe\'d',
    'o\'clock’&nbsp;\u00a0fish &amp; chips’tiếng Việt', '東京タワー’white plate on table\u00a0°C - <b>bold</b>',
    '㎏\tdonâ€™t - 龍 Å',
  ],
};

const BOS = 49406;
const EOS = 49407;

function sha256Lines(items: readonly string[]): string {
  return createHash('sha256').update(items.join('\n'), 'utf8').digest('hex');
}

function allIds(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Runs `fn` and returns the ClipSegError it throws, failing when it does not throw or throws another kind. */
function thrown<E extends Error>(kind: new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof kind, `expected ${kind.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${kind.name}, nothing was thrown`);
}

async function rejected<E extends Error>(kind: new (...args: never[]) => E, promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof kind, `expected ${kind.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${kind.name}, the promise resolved`);
}

test('the fixture has the promised breadth', () => {
  assert.ok(fixture.cases.length >= 300, `${fixture.cases.length} cases`);
  assert.equal(fixture.model_max_length, 77);
  assert.ok(fixture.cases.some((c) => c.text === ''));
  assert.ok(fixture.cases.filter((c) => c.truncated_ids !== undefined).length >= 5);
});

test('encode, tokenize and decode equal HF CLIPTokenizerFast on every fixture case', () => {
  const mismatches: string[] = [];
  for (const c of fixture.cases) {
    const label = JSON.stringify(c.text).slice(0, 80);
    const check = (what: string, actual: unknown, expected: unknown): void => {
      if (JSON.stringify(actual) !== JSON.stringify(expected)) mismatches.push(`${label} ${what}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
    };
    check('ids', tokenizer.encode(c.text), c.ids);
    check('tokens', tokenizer.tokenize(c.text), c.tokens);
    check('decoded', tokenizer.decode(c.ids), c.decoded);
    check('decoded (skip special)', tokenizer.decode(c.ids, { skipSpecialTokens: true }), c.decoded_skip_special);
    check('ids of tokens', tokenizer.convertTokensToIds(c.tokens), c.ids.slice(1, -1));
    if (c.truncated_ids !== undefined) check('truncated ids', tokenizer.encode(c.text, { truncation: true }), c.truncated_ids);
  }
  assert.deepEqual(mismatches, []);
});

test('encodeBatch equals HF padding, truncation and attention masks', () => {
  for (const b of fixture.batches) {
    const { max_length: maxLength, ...rest } = b.options;
    const out = tokenizer.encodeBatch(b.texts, { ...rest, ...(maxLength === undefined ? {} : { maxLength }) });
    assert.deepEqual(out, { input_ids: b.input_ids, attention_mask: b.attention_mask }, JSON.stringify(b.options));
  }
});

test('the slow-tokenizer differences listed here are exactly those the fixture records', () => {
  const recorded = fixture.cases.filter((c) => JSON.stringify(c.ids) !== JSON.stringify(c.slow_ids)).map((c) => c.text);
  const listed = Object.values(SLOW_DIFFERS).flat();
  assert.equal(new Set(listed).size, listed.length, 'a text is listed twice');
  assert.deepEqual([...listed].sort(), [...recorded].sort());
});

test('"a photo of a cat" gives the ids of the HF model card', () => {
  assert.deepEqual(tokenizer.encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.deepEqual(tokenizer.tokenize('a photo of a cat'), ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>']);
});

test('ids and properties of the special tokens', () => {
  assert.equal(tokenizer.bosTokenId, BOS);
  assert.equal(tokenizer.eosTokenId, EOS);
  assert.equal(tokenizer.padTokenId, EOS);
  assert.equal(tokenizer.unkTokenId, EOS);
  assert.equal(tokenizer.vocabSize, 49408);
  assert.equal(tokenizer.modelMaxLength, 77);
  assert.deepEqual(tokenizer.encode(''), [BOS, EOS]);
  assert.deepEqual(tokenizer.encode('cat', { addSpecialTokens: false }), [2368]);
  assert.deepEqual(tokenizer.convertIdsToTokens([BOS, EOS]), ['<|startoftext|>', '<|endoftext|>']);
  assert.equal(tokenizer.decode(Int32Array.from([BOS, 320, 2368, EOS]), { skipSpecialTokens: true }), 'a cat');
  assert.deepEqual(tokenizer.convertTokensToIds(['cat</w>', 'not-a-symbol']), [2368, EOS]);
});

test('the vocabulary built from the shipped BPE file equals HF vocab.json and merges.txt', () => {
  assert.equal(tokenizer.vocabSize, digest.vocab_size);
  const tokens = tokenizer.convertIdsToTokens(allIds(tokenizer.vocabSize));
  assert.equal(sha256Lines(tokens), digest.tokens_by_id_sha256);
  for (const [id, token] of Object.entries(digest.samples)) assert.equal(tokens[Number(id)], token, `id ${id}`);
  for (const [id, token] of Object.entries(digest.added_tokens)) assert.equal(tokens[Number(id)], token, `id ${id}`);

  const { vocab, merges } = clipVocabularyFromBpeGz(readFileSync(defaultBpePath()), defaultBpePath());
  assert.equal(merges.length, CLIP_NUM_MERGES);
  assert.equal(merges.length, digest.num_merges);
  assert.equal(sha256Lines(merges), digest.merges_sha256);
  assert.deepEqual(merges.slice(0, 5), digest.first_merges);
  assert.deepEqual(merges.slice(-5), digest.last_merges);
  assert.equal(sha256Lines([...vocab.keys()]), digest.tokens_by_id_sha256);
  assert.deepEqual([...vocab.values()], allIds(49408));
});

test('the browser path (fflate on the gz bytes) builds the same tokenizer', () => {
  const fromBytes = clipTokenizerFromBpeGz(readFileSync(defaultBpePath()));
  assert.equal(sha256Lines(fromBytes.convertIdsToTokens(allIds(fromBytes.vocabSize))), digest.tokens_by_id_sha256);
  for (const c of fixture.cases.slice(0, 50)) assert.deepEqual(fromBytes.encode(c.text), c.ids);
});

test('the shipped vocabulary is found from the module location and loaded once', async () => {
  const file = defaultBpePath();
  assert.ok(file.endsWith(path.join('assets', 'clip', 'bpe_simple_vocab_16e6.txt.gz')), file);
  assert.ok(readFileSync(path.join(path.dirname(file), 'LICENSE'), 'utf8').includes('Permission is hereby granted'));
  assert.equal(await loadTokenizer(), tokenizer);
});

test('loadTokenizer(dir) reads HF tokenizer files (vocab.json, merges.txt, configs)', async () => {
  const fromFiles = await loadTokenizer(path.join(FIXTURES, 'hf_files'));
  assert.equal(fromFiles.bosTokenId, BOS);
  assert.equal(fromFiles.eosTokenId, EOS);
  assert.equal(fromFiles.padTokenId, EOS);
  assert.equal(fromFiles.modelMaxLength, 77);
  const byText = new Map(fixture.cases.map((c) => [c.text, c]));
  assert.ok(fixture.hf_files_texts.length > 40);
  for (const text of fixture.hf_files_texts) {
    assert.deepEqual(fromFiles.encode(text), byText.get(text)!.ids, text);
    assert.equal(fromFiles.decode(fromFiles.encode(text), { skipSpecialTokens: true }), byText.get(text)!.decoded_skip_special);
  }
  // The normalized special tokens of the config are matched after lowercasing, as in HF.
  assert.deepEqual(fromFiles.encode('<|ENDOFTEXT|>'), [BOS, EOS, EOS]);
});

test('a non-normalized added token is matched on the raw text only', () => {
  const { vocab, merges } = clipVocabularyFromBpeGz(readFileSync(defaultBpePath()), 'bpe');
  const raw = new CLIPTokenizer({
    vocab,
    merges,
    config: { eos_token: { content: '<|endoftext|>', normalized: false }, pad_token: '<|endoftext|>' },
  });
  assert.deepEqual(raw.encode('a<|endoftext|>b'), [BOS, 320, EOS, 321, EOS]);
  assert.deepEqual(raw.encode('<|ENDOFTEXT|>').slice(0, 3), [BOS, 27, 347]);
});

test('text longer than 77 tokens is returned whole unless truncation is asked for', () => {
  const text = Array.from({ length: 100 }, () => 'cat').join(' ');
  const full = tokenizer.encode(text);
  assert.equal(full.length, 102);
  const cut = tokenizer.encode(text, { truncation: true });
  assert.equal(cut.length, 77);
  assert.deepEqual(cut, [BOS, ...full.slice(1, 76), EOS]);
  assert.deepEqual(tokenizer.encode(text, { truncation: true, maxLength: 2 }), [BOS, EOS]);
  assert.deepEqual(tokenizer.encode(text, { truncation: true, maxLength: 5, addSpecialTokens: false }), [2368, 2368, 2368, 2368, 2368]);
});

test('padding: max_length pads to 77 by default, longest to the batch maximum, on the right with mask 0', () => {
  const out = tokenizer.encodeBatch(['a photo of a cat', 'sky'], { padding: 'max_length' });
  assert.deepEqual(out.input_ids.map((row) => row.length), [77, 77]);
  assert.deepEqual(out.input_ids[1]!.slice(0, 4), [BOS, 2390, EOS, EOS]);
  assert.deepEqual(out.attention_mask[1]!.slice(0, 4), [1, 1, 1, 0]);
  assert.equal(out.attention_mask[1]!.reduce((a, b) => a + b, 0), 3);
  assert.deepEqual(tokenizer.encodeBatch('sky'), { input_ids: [[BOS, 2390, EOS]], attention_mask: [[1, 1, 1]] });
  assert.deepEqual(tokenizer.encodeBatch([], { padding: true }), { input_ids: [], attention_mask: [] });
});

test('lowercasing is per character (no final sigma) and whitespace is the Unicode White_Space set', () => {
  assert.equal(tokenizer.decode(tokenizer.encode('ΟΔΟΣ'), { skipSpecialTokens: true }), 'οδοσ');
  assert.deepEqual(tokenizer.encode('a\u0085b'), tokenizer.encode('a b'));
  assert.notDeepEqual(tokenizer.encode('a\ufeffb'), tokenizer.encode('a b'));
});

test('byte alphabet: 256 distinct printable symbols, inverse table, UTF-8 mapping', () => {
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  for (let b = 0; b < 256; b++) assert.equal(CHAR_TO_BYTE.get(BYTE_TO_CHAR[b]!), b);
  assert.equal(BYTE_TO_CHAR[0x20], '\u0120');
  assert.equal(BYTE_TO_CHAR[0x61], 'a');
  assert.equal(textToByteSymbols('é'), 'Ã©');
  assert.equal(textToByteSymbols('a b'), 'a\u0120b');
  assert.equal(textToByteSymbols('\ud800'), textToByteSymbols('\ufffd'));
});

test('the BPE cache stays within its capacity and evictions do not change results', () => {
  const ranks = new Map([['a b', 0], ['ab c</w>', 1], ['c d</w>', 2], ['a b</w>', 3]]);
  const bpe = new BytePairEncoder(ranks, 2);
  assert.deepEqual(bpe.encode('abc'), ['abc</w>']);
  assert.deepEqual(bpe.encode('aab'), ['a', 'ab</w>']);
  assert.deepEqual(bpe.encode('cd'), ['cd</w>']);
  assert.equal(bpe.cacheSize, 2);
  assert.deepEqual(bpe.encode('abc'), ['abc</w>']);
  assert.equal(bpe.cacheSize, 2);
  assert.deepEqual(bpe.encode('aaa'), ['a', 'a', 'a</w>']);
});

test('property: any string encodes to BOS ... EOS with ids inside the vocabulary, without throwing', () => {
  const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
  const tricky = fc.constantFrom(' ', '\t', '\n', '\u00a0', '\u0085', '\ufeff', "'", 'Σ', 'İ', '\u0301', '<|endoftext|>', '</w>', '🇺🇸', '👩\u200d💻');
  const unit = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), loneSurrogate, tricky, fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }));
  fc.assert(
    fc.property(fc.string({ unit, maxLength: 40 }), (text) => {
      const ids = tokenizer.encode(text);
      assert.equal(ids[0], BOS);
      assert.equal(ids[ids.length - 1], EOS);
      for (const id of ids) assert.ok(Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize);
      assert.deepEqual(tokenizer.convertTokensToIds(tokenizer.tokenize(text)), ids.slice(1, -1));
      const cut = tokenizer.encode(text, { truncation: true, maxLength: 8 });
      assert.ok(cut.length <= 8);
      assert.deepEqual(cut, ids.length <= 8 ? ids : [BOS, ...ids.slice(1, 7), EOS]);
      assert.equal(typeof tokenizer.decode(ids), 'string');
    }),
    { numRuns: 400, seed: 77 },
  );
});

test('property: for printable ASCII, decode(encode(s)) is the lowercased text with spaces only between pieces', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...' \t\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))), maxLength: 60 }), (text) => {
      fc.pre(!text.includes('<|startoftext|>') && !text.includes('<|endoftext|>'));
      const decoded = tokenizer.decode(tokenizer.encode(text), { skipSpecialTokens: true });
      assert.equal(decoded.replace(/ /g, ''), text.toLowerCase().replace(/\s/g, ''));
      assert.ok(!decoded.includes('  ') && decoded === decoded.trim(), JSON.stringify(decoded));
    }),
    { numRuns: 400, seed: 78 },
  );
});

test('property: words of ASCII letters decode to the lowercased words joined by single spaces', () => {
  const letters = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'];
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...letters, ' ', '  ', '\t', '\n', '\u00a0', '\u3000'), maxLength: 80 }), (text) => {
      const words = text.toLowerCase().split(/\s+/).filter((w) => w !== '');
      assert.equal(tokenizer.decode(tokenizer.encode(text), { skipSpecialTokens: true }), words.join(' '));
    }),
    { numRuns: 400, seed: 80 },
  );
});

test('property: padded batches are rectangular, padded with PAD on the right, masks count the real ids', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 30 }), { minLength: 1, maxLength: 5 }), fc.constantFrom<BatchEncodeOptions['padding']>(true, 'longest', 'max_length'), (texts, padding) => {
      const { input_ids: ids, attention_mask: mask } = tokenizer.encodeBatch(texts, { padding, truncation: true });
      const width = padding === 'max_length' ? 77 : Math.max(...texts.map((t) => Math.min(77, tokenizer.encode(t).length)));
      texts.forEach((text, i) => {
        const own = tokenizer.encode(text, { truncation: true });
        assert.equal(ids[i]!.length, width);
        assert.deepEqual(ids[i]!.slice(0, own.length), own);
        assert.ok(ids[i]!.slice(own.length).every((id) => id === EOS));
        assert.deepEqual(mask[i], Array.from({ length: width }, (_, j) => (j < own.length ? 1 : 0)));
      });
    }),
    { numRuns: 200, seed: 79 },
  );
});

test('bad arguments raise typed errors naming the argument', () => {
  const encodeAny = tokenizer.encode.bind(tokenizer) as (text: unknown, options?: unknown) => number[];
  const batchAny = tokenizer.encodeBatch.bind(tokenizer) as (texts: unknown, options?: unknown) => unknown;
  const decodeAny = tokenizer.decode.bind(tokenizer) as (ids: unknown, options?: unknown) => string;
  assert.match(thrown(InvalidArgumentError, () => encodeAny(42)).message, /^text: expected a string, got number 42/);
  assert.match(thrown(InvalidArgumentError, () => encodeAny(undefined)).message, /^text: expected a string/);
  assert.match(thrown(InvalidArgumentError, () => batchAny(['a', 'b', null])).message, /^texts\[2\]: expected a string, got null/);
  assert.match(thrown(InvalidArgumentError, () => batchAny(7)).message, /^texts: expected a string or an array of strings/);
  assert.match(thrown(InvalidArgumentError, () => batchAny(['a'], { padding: 'max' })).message, /^options\.padding: /);
  assert.match(thrown(InvalidArgumentError, () => batchAny(['a'], { max_length: 5 })).message, /^options\.max_length: unknown option/);
  assert.match(thrown(InvalidArgumentError, () => batchAny(['a'], 'pad')).message, /^options: expected an object/);
  assert.match(thrown(InvalidArgumentError, () => encodeAny('a', { maxLength: 0, truncation: true })).message, /^options\.maxLength: expected a positive integer, got number 0/);
  assert.match(thrown(InvalidArgumentError, () => encodeAny('a', { maxLength: 1, truncation: true })).message, /^options\.maxLength: must be at least 2/);
  assert.match(thrown(InvalidArgumentError, () => encodeAny('a', { truncation: 'yes' })).message, /^options\.truncation: expected a boolean/);
  assert.match(thrown(InvalidArgumentError, () => decodeAny([BOS, 1.5])).message, /^ids\[1\]: expected a token id in the vocabulary \(0\.\.49407\), got number 1\.5/);
  assert.match(thrown(InvalidArgumentError, () => decodeAny([49408])).message, /^ids\[0\]: /);
  assert.match(thrown(InvalidArgumentError, () => decodeAny('1 2')).message, /^ids: expected an array/);
  assert.match(thrown(InvalidArgumentError, () => tokenizer.convertIdsToTokens([-1])).message, /^ids\[0\]: /);
  assert.match(thrown(InvalidArgumentError, () => tokenizer.convertTokensToIds(['a', 3 as unknown as string])).message, /^tokens\[1\]: /);
});

test('inconsistent vocabularies and configs raise typed errors', () => {
  const vocab = { a: 0, b: 1, ab: 2, 'a</w>': 3, 'b</w>': 4, '<|startoftext|>': 5, '<|endoftext|>': 6 };
  // Hand-derived: 'abb' -> a b b</w> -> ab b</w> (the only merge); 'ba' -> b a</w>.
  assert.deepEqual(new CLIPTokenizer({ vocab, merges: ['a b'] }).encode('abb ba'), [5, 2, 4, 1, 3, 6]);
  assert.match(thrown(InvalidArgumentError, () => new CLIPTokenizer({ vocab, merges: ['a  b'] })).message, /^merges\[0\]: expected "left right"/);
  assert.match(thrown(InvalidArgumentError, () => new CLIPTokenizer({ vocab, merges: ['a b', 'b a'] })).message, /^merges\[1\]: symbol "ba" is not in the vocabulary/);
  assert.match(thrown(InvalidArgumentError, () => new CLIPTokenizer({ vocab: { ...vocab, c: -2 }, merges: [] })).message, /^vocab\["c"\]: expected a non-negative integer id/);
  assert.match(thrown(InvalidArgumentError, () => new CLIPTokenizer({ vocab: {}, merges: [] })).message, /^vocab: /);
  assert.match(thrown(ConfigError, () => new CLIPTokenizer({ vocab, merges: [], config: { bos_token: '<s>' } })).message, /^bos_token: token "<s>" is not in the vocabulary/);
  assert.match(thrown(ConfigError, () => new CLIPTokenizer({ vocab, merges: [], config: { model_max_length: 0 } })).message, /^model_max_length: /);
  assert.match(
    thrown(UnsupportedError, () => new CLIPTokenizer({ vocab, merges: [], config: { eos_token: { content: '<|endoftext|>', lstrip: true } } })).message,
    /^eos_token: added tokens with lstrip/,
  );
});

test('malformed BPE and tokenizer files raise typed errors naming the file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clip-tokenizer-'));
  try {
    assert.match(thrown(FileFormatError, () => clipVocabularyFromBpeGz(new Uint8Array([1, 2, 3]), 'x.gz')).message, /^x\.gz: not a gzip-compressed/);
    assert.match(thrown(FileFormatError, () => clipVocabularyFromBpeText('i n\nt h\n', 'v.txt')).message, /^v\.txt: expected a "#version" header/);
    assert.match(thrown(FileFormatError, () => clipVocabularyFromBpeText('#version: 0.2\ni n\n', 'v.txt')).message, /^v\.txt: expected at least 48894 merge lines/);
    assert.match(thrown(FileFormatError, () => parseMerges('#version: 0.2\ni n\nt h x\n', 'm.txt')).message, /^m\.txt: line 3: expected two space-separated symbols/);

    await rejected(FileNotFoundError, loadTokenizer(path.join(dir, 'missing')));
    cpSync(path.join(FIXTURES, 'hf_files'), dir, { recursive: true });
    const vocabFile = path.join(dir, 'vocab.json');
    const original = readFileSync(vocabFile, 'utf8');
    writeFileSync(vocabFile, '{"a": 0,');
    assert.match((await rejected(FileFormatError, loadTokenizer(dir))).message, /vocab\.json: invalid JSON/);
    writeFileSync(vocabFile, '{"a": "zero"}');
    assert.match((await rejected(FileFormatError, loadTokenizer(dir))).message, /vocab\.json: entry "a": expected a non-negative integer id, got "zero"/);
    writeFileSync(vocabFile, JSON.stringify({ ...JSON.parse(original), 'cat</w>': undefined }));
    assert.match((await rejected(FileFormatError, loadTokenizer(dir))).message, /inconsistent tokenizer files: merges\[\d+\]: symbol "cat<\/w>" is not in the vocabulary/);
    writeFileSync(vocabFile, original);
    writeFileSync(path.join(dir, 'tokenizer_config.json'), '[1]');
    assert.match((await rejected(FileFormatError, loadTokenizer(dir))).message, /tokenizer_config\.json: expected a JSON object/);
    rmSync(path.join(dir, 'tokenizer_config.json'));
    rmSync(path.join(dir, 'merges.txt'));
    assert.match((await rejected(FileNotFoundError, loadTokenizer(dir))).message, /merges\.txt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
