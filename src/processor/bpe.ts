/**
 * Byte-pair encoding of one pre-tokenised piece, with CLIP's end-of-word marker.
 * Reference: transformers 4.57.6 models/clip/tokenization_clip.py `CLIPTokenizer.bpe` and the tokenizers BPE model
 * (`end_of_word_suffix="</w>"`); both give the same result because every merge is ranked after the merges
 * that produce its parts.
 */

export const END_OF_WORD = '</w>';

/** Matches tokenizers' BPE cache capacity. */
const DEFAULT_CACHE_CAPACITY = 10_000;

export class BytePairEncoder {
  private readonly ranks: ReadonlyMap<string, number>;
  private readonly cache = new Map<string, readonly string[]>();
  private readonly cacheCapacity: number;

  /** `ranks` maps "left right" (the merges.txt line) to its merge priority, lower first. */
  constructor(ranks: ReadonlyMap<string, number>, cacheCapacity = DEFAULT_CACHE_CAPACITY) {
    this.ranks = ranks;
    this.cacheCapacity = cacheCapacity;
  }

  /** Number of cached pieces; never above the capacity. */
  get cacheSize(): number {
    return this.cache.size;
  }

  /**
   * Splits a piece, already mapped to byte symbols, into vocabulary symbols. The last symbol carries "</w>".
   * Byte symbols are all in the BMP, so one UTF-16 unit is one symbol.
   */
  encode(symbols: string): readonly string[] {
    const cached = this.cache.get(symbols);
    if (cached !== undefined) return cached;
    const result = this.merge(symbols);
    if (this.cache.size >= this.cacheCapacity) {
      // Map iterates in insertion order, so this evicts the oldest entry.
      this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(symbols, result);
    return result;
  }

  private merge(symbols: string): string[] {
    let word = symbols.split('');
    word[word.length - 1] += END_OF_WORD;
    while (word.length > 1) {
      let bestRank = Infinity;
      let bestAt = -1;
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      const left = word[bestAt]!;
      const right = word[bestAt + 1]!;
      // Every occurrence of the winning pair is merged in one left-to-right pass ("aaa" -> "aa a").
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i + 1 < word.length && word[i] === left && word[i + 1] === right) {
          merged.push(left + right);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    return word;
  }
}
