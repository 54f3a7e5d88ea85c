/** Wording shared by messages and reports. Internal. */

/** `n noun`, the noun in the plural unless n is 1 (nouns with a plain `s` plural only). */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
