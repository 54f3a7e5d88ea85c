/**
 * The single random number generator of training: xoshiro128** (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c).
 * Its whole state is four 32-bit words, so a run can be checkpointed with `state()` and resumed with `fromState()`.
 * `Rng.derive(seed, ...keys)` gives an independent stream per purpose and position (e.g. per sample), so any
 * sample of a run can be reproduced from the seed and its position alone, in any order.
 */
import { InvalidArgumentError } from '../errors.js';

/** Four unsigned 32-bit words, not all zero. Plain numbers so the state survives JSON. */
export type RngState = [number, number, number, number];

export type RngKey = number | string;

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Murmur3's finaliser: a bijective avalanche on 32-bit words. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function keyWords(key: RngKey, argument: string): number[] {
  if (typeof key === 'string') {
    // FNV-1a over UTF-16 code units; the length word keeps "ab","c" apart from "a","bc".
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return [0x5354524e, key.length >>> 0, h >>> 0];
  }
  if (!Number.isSafeInteger(key)) {
    throw new InvalidArgumentError(`${argument}: expected a safe integer or a string, got ${String(key)}`);
  }
  const negative = key < 0 ? 1 : 0;
  const magnitude = Math.abs(key);
  return [0x4e554d42 + negative, magnitude % TWO_POW_32 >>> 0, Math.floor(magnitude / TWO_POW_32) >>> 0];
}

function seedState(words: readonly number[]): RngState {
  let h = 0x9e3779b9;
  for (const w of words) h = fmix32((h ^ w) + 0x7f4a7c15) ^ rotl(h, 13);
  // SplitMix32-style expansion of the hash into the four state words.
  const state: number[] = [];
  for (let i = 0; i < 4; i++) {
    h = (h + 0x9e3779b9) >>> 0;
    state.push(fmix32(h ^ Math.imul(i + 1, 0x632be5ab)));
  }
  if (!state.some((w) => w !== 0)) state[0] = 1;
  return state as RngState;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(state: RngState) {
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  /** A generator for a seed (an integer or a string). */
  static fromSeed(seed: RngKey): Rng {
    return new Rng(seedState(keyWords(seed, 'seed')));
  }

  /** An independent stream for `seed` and a path of keys, e.g. `derive(seed, 'sample', position)`. */
  static derive(seed: RngKey, ...keys: RngKey[]): Rng {
    const words = keyWords(seed, 'seed');
    keys.forEach((k, i) => words.push(...keyWords(k, `keys[${i}]`)));
    return new Rng(seedState(words));
  }

  /** Restores a generator from `state()`. */
  static fromState(state: unknown): Rng {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32) ||
      !state.some((w) => w !== 0)
    ) {
      throw new InvalidArgumentError(`state: expected four unsigned 32-bit integers, not all zero, got ${JSON.stringify(state)}`);
    }
    return new Rng([state[0], state[1], state[2], state[3]]);
  }

  state(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  clone(): Rng {
    return new Rng(this.state());
  }

  /** A new independent stream keyed from this generator's next output; advances this generator by one step. */
  fork(...keys: RngKey[]): Rng {
    return Rng.derive(this.nextUint32(), ...keys);
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    if (!Number.isFinite(low) || !Number.isFinite(high) || high < low) {
      throw new InvalidArgumentError(`uniform: expected finite low <= high, got [${low}, ${high})`);
    }
    return low + (high - low) * this.next();
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`int: expected a positive safe integer bound, got ${n}`);
    if (n <= TWO_POW_32) {
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    for (;;) {
      const x = Math.floor(this.next() * n);
      if (x < n) return x;
    }
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError(`bernoulli: expected a probability in [0, 1], got ${p}`);
    return this.next() < p;
  }

  /** Standard normal draw (Box-Muller; consumes two uniforms per call so the state stays four words). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new InvalidArgumentError('pick: expected a non-empty list');
    return items[this.int(items.length)] as T;
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`permutation: expected a non-negative integer, got ${n}`);
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i] as number;
      out[i] = out[j] as number;
      out[j] = tmp;
    }
    return out;
  }
}
