/**
 * A bounded least-recently-used map. Used for text embeddings, so that repeated prompts skip the text encoder;
 * values are plain host arrays, never tensors, so an evicted entry needs no disposal and cannot be freed while a
 * concurrent caller still reads it.
 */
import { InvalidArgumentError } from '../errors.js';

export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();
  private readonly capacity: number;
  private hitCount = 0;
  private missCount = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new InvalidArgumentError(`cache size: expected a non-negative integer, got ${String(capacity)}`);
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.entries.size;
  }

  get maxSize(): number {
    return this.capacity;
  }

  /** Lookups that found a value, and those that did not, since construction or the last `clear()`. */
  get stats(): { hits: number; misses: number } {
    return { hits: this.hitCount, misses: this.missCount };
  }

  /** Returns the value and marks it most recently used. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) {
      this.missCount++;
      return undefined;
    }
    this.hitCount++;
    // Map iteration order is insertion order: re-inserting moves the key to the young end.
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    if (this.capacity === 0) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as K;
      this.entries.delete(oldest);
    }
  }

  /** Keys from least to most recently used. */
  keys(): K[] {
    return [...this.entries.keys()];
  }

  clear(): void {
    this.entries.clear();
    this.hitCount = 0;
    this.missCount = 0;
  }
}
