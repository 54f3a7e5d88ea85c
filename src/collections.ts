/** Small helpers for the maps of lists that grouping code builds. */

/** The value of `key` in `map`, set to `create()` first when missing. */
export function entryIn<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = create()));
  return value;
}

/** The list of `key` in `map`, created empty when missing. */
export function listIn<K, V>(map: Map<K, V[]>, key: K): V[] {
  return entryIn(map, key, () => []);
}
