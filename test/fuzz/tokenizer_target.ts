import fc from 'fast-check';
import { loadTokenizer } from '../../src/io/tokenizer_files.js';
import type { FuzzTarget } from './harness.js';

const tokenizer = await loadTokenizer();

/** Any Unicode text, batched, padded and truncated; every id must be in the vocabulary and decodable. */
export const tokenizerTarget: FuzzTarget<{ texts: string[]; padding: boolean | 'max_length'; truncation: boolean }> = {
  name: 'tokenizer (arbitrary unicode)',
  arbitrary: fc.record({
    texts: fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 60 })), {
      minLength: 1,
      maxLength: 4,
    }),
    padding: fc.constantFrom(true, 'max_length' as const),
    truncation: fc.boolean(),
  }),
  run({ texts, padding, truncation }) {
    const { input_ids: ids } = tokenizer.encodeBatch(texts, { padding, truncation });
    for (const row of ids) {
      for (const id of row) {
        if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) {
          throw new Error(`id ${id} outside the vocabulary`);
        }
      }
      tokenizer.decode(row, { skipSpecialTokens: true });
    }
  },
  verify(stats) {
    if (stats.ok !== stats.runs) throw new Error(`every string must tokenize; rejected: ${JSON.stringify(stats.typedErrors)}`);
  },
};

/** Non-string prompts must be refused with the library's own error, never a TypeError. */
export const tokenizerArgumentTarget: FuzzTarget<unknown> = {
  name: 'tokenizer (non-string prompts)',
  arbitrary: fc.anything(),
  run(value) {
    tokenizer.encodeBatch([value as string]);
    if (typeof value !== 'string') throw new Error(`accepted a ${typeof value} prompt`);
  },
  verify(stats) {
    const refused = stats.typedErrors.INVALID_ARGUMENT ?? 0;
    if (refused === 0 || stats.ok + refused !== stats.runs) throw new Error(`expected results or INVALID_ARGUMENT only, got ${JSON.stringify(stats)}`);
  },
};
