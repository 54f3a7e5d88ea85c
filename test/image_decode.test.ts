import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FileFormatError, FileNotFoundError, ImageDecodeError, InvalidArgumentError, ShapeError } from '../src/errors.js';
import { readImageHeader } from '../src/io/image_header.js';
import { decodeImage, loadImage, rawImageFromTensor, savePng } from '../src/io/image_io.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { type RawImage, applyExifOrientation, toRGB } from '../src/processor/image.js';

await tf.setBackend('wasm');

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'images');
const fixture = await readSafetensors(path.join(DIR, 'decode.safetensors'));
const cases = JSON.parse(readFileSync(path.join(DIR, 'decode_cases.json'), 'utf8')) as { file: string; exact: boolean }[];
const scratch = mkdtempSync(path.join(tmpdir(), 'clipseg-image-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function maxAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const { file, exact } of cases) {
  test(`loadImage(${file}) matches PIL load_image(...).convert("RGB")${exact ? ' exactly' : ' within JPEG decoder noise'}`, async () => {
    const img = toRGB(await loadImage(path.join(DIR, file)));
    const [h, w] = fixture.info(file).shape as [number, number, number];
    assert.deepEqual([img.height, img.width], [h, w], 'size and orientation');
    const diff = maxAbsDiff(img.data, fixture.getBytes(file));
    if (exact) {
      assert.equal(diff, 0);
    } else {
      console.log(`${file}: largest difference from PIL ${diff} levels`);
      assert.ok(diff <= 2, `largest difference ${diff} levels`);
    }
  });
}

test('EXIF orientations 1-8 give the PIL transposes of the unrotated pixels (PNG, lossless)', async () => {
  const upright = await loadImage(path.join(DIR, 'exif_1.png'));
  for (let k = 2; k <= 8; k++) {
    const img = await loadImage(path.join(DIR, `exif_${k}.png`));
    assert.equal(readImageHeader(readFileSync(path.join(DIR, `exif_${k}.png`)), 'x').orientation, k);
    assert.deepEqual(img, applyExifOrientation(upright, k), `orientation ${k}`);
    assert.deepEqual([img.width, img.height], k >= 5 ? [24, 40] : [40, 24]);
  }
});

test('JPEG orientation comes from PIL\'s rule, not from a decoder\'s own EXIF rotation', async () => {
  const jpeg1 = toRGB(await loadImage(path.join(DIR, 'exif_1.jpg')));
  for (let k = 2; k <= 8; k++) {
    const img = toRGB(await loadImage(path.join(DIR, `exif_${k}.jpg`)));
    // Same compressed pixels in every file: decoding is identical, only the transpose differs.
    assert.deepEqual(img, applyExifOrientation(jpeg1, k), `orientation ${k}`);
  }
});

test('bytes and Buffers decode like the file path; a grey PNG comes back with one channel', async () => {
  const file = path.join(DIR, 'camera_grey_150x130.png');
  const fromPath = await loadImage(file);
  assert.equal(fromPath.channels, 1);
  const buffer = readFileSync(file);
  assert.deepEqual(await loadImage(buffer), fromPath);
  assert.deepEqual(await loadImage(new Uint8Array(buffer)), fromPath);
  const rgba = await loadImage(path.join(DIR, 'rocket_rgba_120x80.png'));
  assert.equal(rgba.channels, 4);
  assert.equal(rgba.data[3], 0, 'alpha kept');
});

test('missing files, directories and non-string paths get typed errors', async () => {
  await assert.rejects(loadImage(path.join(DIR, 'no_such.png')), (e: unknown) => e instanceof FileNotFoundError && /no_such\.png/.test(e.message));
  await assert.rejects(loadImage(DIR), FileFormatError);
  await assert.rejects(loadImage(123 as unknown as string), (e: unknown) => e instanceof InvalidArgumentError && /source: expected a file path/.test(e.message));
  await assert.rejects(loadImage(null as unknown as string), InvalidArgumentError);
  await assert.rejects(loadImage(path.join(DIR, 'exif_1.png'), { maxPixels: -1 }), /options.maxPixels/);
});

test('truncated, garbage, empty and unsupported data are ImageDecodeErrors naming the source', async () => {
  const png = readFileSync(path.join(DIR, 'chelsea_90x60.png'));
  const jpeg = readFileSync(path.join(DIR, 'coffee_q90_444.jpg'));
  const bad: [string, Uint8Array][] = [
    ['truncated.png', png.subarray(0, Math.floor(png.length / 2))],
    ['header_only.png', png.subarray(0, 20)],
    ['truncated.jpg', jpeg.subarray(0, Math.floor(jpeg.length / 2))],
    // PIL refuses a JPEG that ends before its end-of-image marker even when every scan is complete.
    ['no_eoi.jpg', jpeg.subarray(0, jpeg.length - 2)],
    ['corrupt_scan.jpg', corruptScanHeader(jpeg)],
    ['jpeg_no_frame.jpg', jpeg.subarray(0, 20)],
    ['garbage.png', Uint8Array.from({ length: 500 }, (_, i) => (i * 7919) % 251)],
    ['empty.png', new Uint8Array(0)],
    ['image.webp', new Uint8Array([...Buffer.from('RIFF'), 0, 0, 0, 0, ...Buffer.from('WEBPVP8 ')])],
  ];
  for (const [name, bytes] of bad) {
    await assert.rejects(decodeImage(bytes, name), (e: unknown) => e instanceof ImageDecodeError && e.message.startsWith(`${name}:`), name);
  }
  const file = path.join(scratch, 'cut.png');
  await import('node:fs/promises').then((f) => f.writeFile(file, png.subarray(0, 1000)));
  await assert.rejects(loadImage(file), (e: unknown) => e instanceof ImageDecodeError && e.message.includes(file));
});

/** The JPEG with its first start-of-scan segment naming a component the frame does not have. */
function corruptScanHeader(jpeg: Uint8Array): Uint8Array {
  const out = Uint8Array.from(jpeg);
  const sos = out.findIndex((b, i) => b === 0xff && out[i + 1] === 0xda);
  out[sos + 5] = 0x77;
  return out;
}

test('JPEG: trailing bytes after the end marker are ignored (as PIL does); a failed decode leaves the decoder usable', async () => {
  const file = path.join(DIR, 'odd_420_progressive.jpg');
  const jpeg = readFileSync(file);
  const expected = await loadImage(file);
  const trailing = Buffer.concat([jpeg, Buffer.from('trailing bytes after EOI')]);
  assert.deepEqual(await decodeImage(trailing, 'trailing.jpg'), expected);
  await assert.rejects(decodeImage(corruptScanHeader(jpeg), 'corrupt.jpg'), ImageDecodeError);
  assert.deepEqual(await decodeImage(jpeg, 'again.jpg'), expected);
});

/** A PNG signature plus an IHDR claiming the given size, and no pixel data. */
function pngHeaderOnly(width: number, height: number): Uint8Array {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'ascii');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b[24] = 8;
  b[25] = 2;
  return b;
}

test('zero-sized and oversized images are rejected from the header, before decoding', async () => {
  await assert.rejects(decodeImage(pngHeaderOnly(0, 10), 'zero.png'), /zero.png: image has zero size \(0x10\)/);
  // 200000 x 200000 would need 160 GB: the header alone must stop it.
  await assert.rejects(decodeImage(pngHeaderOnly(200000, 200000), 'huge.png'), /over the limit of 50000000/);
  await assert.rejects(loadImage(path.join(DIR, 'exif_1.png'), { maxPixels: 959 }), (e: unknown) => e instanceof ImageDecodeError && /40x24 = 960 pixels/.test(e.message));
  assert.equal((await loadImage(path.join(DIR, 'exif_1.png'), { maxPixels: 960 })).width, 40);
});

test('raw pixel buffers are validated and passed through', async () => {
  const raw: RawImage = { data: new Uint8Array(2 * 3 * 3).fill(9), width: 2, height: 3, channels: 3 };
  assert.deepEqual(await loadImage(raw), raw);
  await assert.rejects(loadImage({ ...raw, channels: 2 } as unknown as RawImage), /source.channels: expected 1, 3 or 4, got 2/);
  await assert.rejects(loadImage({ ...raw, width: 5 }), /source.data: expected 45 bytes/);
});

test('tensors follow the transformers rule: integers in [0, 255] as is, floats in [0, 1] times 255 truncated', async () => {
  const before = tf.memory().numTensors;
  const ints = tf.tensor3d([0, 17, 255, 3, 4, 5], [1, 2, 3], 'int32');
  assert.deepEqual([...(await loadImage(ints)).data], [0, 17, 255, 3, 4, 5]);
  const floats = tf.tensor3d([0, 0.5, 1, 0.2, 0.999, 0.0039], [2, 1, 3], 'float32');
  const img = await rawImageFromTensor(floats);
  // float32(0.2)·255 = 51.0000007 -> 51; 0.0039·255 = 0.99 -> 0 (truncation, not rounding).
  assert.deepEqual([...img.data], [0, 127, 255, 51, 254, 0]);
  assert.deepEqual([img.width, img.height, img.channels], [1, 2, 3]);
  const integral = tf.tensor3d([0, 1, 1, 0], [2, 2, 1]);
  assert.deepEqual([...(await loadImage(integral)).data], [0, 1, 1, 0], 'integer-valued floats are not rescaled');
  const outOfRange = tf.tensor3d([0.5, 300], [1, 2, 1]);
  await assert.rejects(loadImage(outOfRange), (e: unknown) => e instanceof InvalidArgumentError && /\[0.5, 300\]/.test(e.message));
  const wrongShape = tf.zeros([4, 4, 2]) as tf.Tensor3D;
  await assert.rejects(loadImage(wrongShape), ShapeError);
  tf.dispose([ints, floats, integral, outOfRange, wrongShape]);
  assert.equal(tf.memory().numTensors, before);
});

test('savePng writes grey, RGB and RGBA PNGs atomically that load back identically', async () => {
  const images: RawImage[] = [
    { data: Uint8Array.from({ length: 12 }, (_, i) => i * 20), width: 4, height: 3, channels: 1 },
    { data: Uint8Array.from({ length: 36 }, (_, i) => (i * 37) % 256), width: 4, height: 3, channels: 3 },
    { data: Uint8Array.from({ length: 48 }, (_, i) => (i % 4 === 3 ? 100 : (i * 53) % 256)), width: 3, height: 4, channels: 4 },
  ];
  for (const [i, img] of images.entries()) {
    const file = path.join(scratch, `out_${i}.png`);
    await savePng(file, img);
    assert.deepEqual(await loadImage(file), img);
  }
  assert.deepEqual(readdirSync(scratch).filter((f) => f.includes('.tmp-')), []);
  await assert.rejects(savePng(path.join(scratch, 'bad.png'), { data: new Uint8Array(3), width: 2, height: 2, channels: 3 }), InvalidArgumentError);
  await assert.rejects(savePng(path.join(scratch, 'no_dir', 'x.png'), images[0]!), (e: unknown) => e instanceof FileNotFoundError && e.message.includes('no_dir'));
});
