/**
 * JPEG decoding the way Pillow decodes: libjpeg's accurate integer IDCT and its "fancy" (triangular) chroma
 * upsampling, which Pillow leaves at their defaults. The decoder is MozJPEG's (a libjpeg-turbo derivative) compiled
 * to WebAssembly, as shipped by @jsquash/jpeg; for 8-bit YCbCr and greyscale JPEGs its output equals Pillow's byte
 * for byte. CMYK/YCCK JPEGs are outside what it converts to RGB: the caller decodes those another way.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import moduleFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import { ImageDecodeError } from '../errors.js';

/** Decoded pixels, 4 bytes (RGBA, alpha 255) per pixel, rows top to bottom. */
export interface RgbaBitmap {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

// Neither TypeScript's ES2022 library nor Node 20's typings declare the WebAssembly global; these are the parts used.
interface WasmInstance {
  readonly exports: object;
}
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<object>;
  Instance: new (module: object, imports: object) => WasmInstance;
};

/** The parts of the Emscripten module the decoder uses. */
interface DecoderModule {
  decode(data: Uint8Array, applyExifOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
  readonly HEAPU8: Uint8Array;
}

type DecoderFactory = (options: {
  noInitialRun: boolean;
  print: (message: string) => void;
  printErr: (message: string) => void;
  instantiateWasm: (imports: object, done: (instance: WasmInstance) => void) => object;
}) => Promise<DecoderModule>;

const WASM_FILE = '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm';

// libjpeg reports through its message texts only; these two change what the loader does.
/** The memory source hit the end of the data before the end-of-image marker; Pillow rejects such files. */
const PREMATURE_END = 'Premature end of JPEG file';
/** No conversion from the file's colour space (CMYK, YCCK) to RGB. */
const NO_RGB_CONVERSION = 'Unsupported color conversion request';

/** WebAssembly memory only grows: an instance whose heap grew past this (a large image) is replaced by a fresh one. */
const KEEP_HEAP_BYTES = 64 * 2 ** 20;

let compiled: Promise<object> | undefined;
let instance: Promise<DecoderModule> | undefined;
/** Messages libjpeg printed during the current decode (decoding is synchronous, so calls never interleave here). */
const messages: string[] = [];

async function compileDecoder(): Promise<object> {
  const bytes = await fs.readFile(createRequire(import.meta.url).resolve(WASM_FILE));
  return WebAssembly.compile(bytes);
}

function decoder(): Promise<DecoderModule> {
  compiled ??= compileDecoder();
  instance ??= compiled.then((wasm) =>
    (moduleFactory as unknown as DecoderFactory)({
      noInitialRun: true,
      print: (message) => messages.push(message),
      printErr: (message) => messages.push(message),
      instantiateWasm: (imports, done) => {
        const created = new WebAssembly.Instance(wasm, imports);
        done(created);
        return created.exports;
      },
    }),
  );
  return instance;
}

/**
 * Decodes a JPEG to RGBA. EXIF orientation is not applied. Returns null when the file's colour space has no
 * conversion to RGB here (CMYK, YCCK). Corrupt data, and data that ends before the end-of-image marker (which
 * Pillow refuses as truncated), are an ImageDecodeError naming `source`.
 */
export async function decodeJpeg(bytes: Uint8Array, source: string): Promise<RgbaBitmap | null> {
  let module: DecoderModule;
  try {
    module = await decoder();
  } catch (err) {
    compiled = undefined;
    instance = undefined;
    throw new ImageDecodeError(source, `cannot load the JPEG decoder (${WASM_FILE}): ${(err as Error).message}`, { cause: err });
  }
  messages.length = 0;
  let image: ReturnType<DecoderModule['decode']>;
  try {
    image = module.decode(bytes, false);
  } catch (err) {
    // libjpeg's error exit unwinds without freeing the decoder's memory: later calls get a fresh instance.
    instance = undefined;
    if (messages.includes(NO_RGB_CONVERSION)) return null;
    const detail = messages.length > 0 ? messages.join('; ') : (err as Error).message;
    throw new ImageDecodeError(source, `cannot decode JPEG data: ${detail}`, { cause: err });
  }
  if (module.HEAPU8.length > KEEP_HEAP_BYTES) instance = undefined;
  if (messages.includes(PREMATURE_END)) {
    throw new ImageDecodeError(source, 'JPEG data is truncated (it ends before the end-of-image marker)');
  }
  if (image === null) throw new ImageDecodeError(source, 'cannot decode JPEG data');
  const { data, width, height } = image;
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}
