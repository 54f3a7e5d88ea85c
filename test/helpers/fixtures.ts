/** Reading reference fixtures (safetensors files under `test/fixtures/`) into typed arrays and tensors. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { parseSafetensors, type SafetensorsFile } from '../../src/io/safetensors.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export function fixturePath(...parts: string[]): string {
  return path.join(FIXTURES, ...parts);
}

/** A fixture safetensors file, read synchronously (fixtures are small). */
export function readFixture(...parts: string[]): SafetensorsFile {
  const file = fixturePath(...parts);
  return parseSafetensors(new Uint8Array(fs.readFileSync(file)), file);
}

export function fixtureExists(...parts: string[]): boolean {
  return fs.existsSync(fixturePath(...parts));
}

/** A tensor from a fixture: integer dtypes become int32, everything else float32. */
export function fixtureTensor(file: SafetensorsFile, key: string): tf.Tensor {
  const { dtype, shape } = file.info(key);
  const integer = dtype === 'I64' || dtype === 'I32' || dtype === 'U8' || dtype === 'BOOL';
  return integer ? tf.tensor(file.getInt32(key), [...shape], 'int32') : tf.tensor(file.getFloat32(key), [...shape], 'float32');
}

export function readJsonFixture<T>(...parts: string[]): T {
  return JSON.parse(fs.readFileSync(fixturePath(...parts), 'utf8')) as T;
}
