import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../src/errors.js';
import { LruCache } from '../src/pipeline/lru.js';

test('LRU evicts the least recently used entry, and get() refreshes recency', () => {
  const cache = new LruCache<string, number>(2);
  cache.set('a', 1);
  cache.set('b', 2);
  assert.equal(cache.get('a'), 1);
  cache.set('c', 3);
  assert.deepEqual(cache.keys(), ['a', 'c']);
  assert.equal(cache.get('b'), undefined);
  assert.deepEqual(cache.stats, { hits: 1, misses: 1 });
});

test('LRU overwrite keeps one entry and moves it to the young end', () => {
  const cache = new LruCache<string, number>(3);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('a', 10);
  assert.deepEqual(cache.keys(), ['b', 'a']);
  assert.equal(cache.size, 2);
  assert.equal(cache.get('a'), 10);
});

test('LRU of size 0 stores nothing; bad sizes are InvalidArgumentError', () => {
  const cache = new LruCache<string, number>(0);
  cache.set('a', 1);
  assert.equal(cache.size, 0);
  for (const bad of [-1, 1.5, Number.NaN]) {
    assert.throws(() => new LruCache(bad), (e: unknown) => e instanceof InvalidArgumentError && /cache size/.test((e as Error).message));
  }
});

test('LRU agrees with a reference model on random operation sequences', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 7 })), { maxLength: 60 }),
      (capacity, ops) => {
        const cache = new LruCache<number, number>(capacity);
        let model: number[] = [];
        for (const [isSet, key] of ops) {
          if (isSet) {
            cache.set(key, key * 10);
            model = model.filter((k) => k !== key).concat(key);
            if (model.length > capacity) model = model.slice(model.length - capacity);
          } else {
            const got = cache.get(key);
            const present = model.includes(key);
            assert.equal(got, present ? key * 10 : undefined);
            if (present) model = model.filter((k) => k !== key).concat(key);
          }
          assert.deepEqual(cache.keys(), model);
        }
      },
    ),
  );
});
