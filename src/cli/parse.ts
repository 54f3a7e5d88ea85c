/** Option parsers shared by the commands; a bad value is an InvalidArgumentError naming the option. */
import { InvalidArgumentError } from '../errors.js';

/** Collects a repeatable option's values in order. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A finite number, or with `integer` a safe integer (`1e3` is accepted). */
export function number(name: string, integer: boolean): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
      throw new InvalidArgumentError(`${name}: expected ${integer ? 'an integer' : 'a number'}, got '${value}'`);
    }
    return n;
  };
}

/** An integer written in decimal digits only (a seed or a count that must read exactly as typed). */
export function integer(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name}: expected an integer, got '${value}'`);
    return n;
  };
}
