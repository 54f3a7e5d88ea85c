/**
 * The byte-level alphabet of GPT-2 / CLIP BPE: every byte 0..255 maps to one printable code point, so that any
 * UTF-8 text becomes a string of vocabulary symbols and the tokenizer never needs an unknown token.
 * Reference: transformers 4.57.6 models/clip/tokenization_clip.py `bytes_to_unicode`.
 */

function buildByteToChar(): string[] {
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table = new Array<string>(256);
  // Printable Latin-1 bytes stand for themselves; the other 68 are assigned U+0100 upward in byte order.
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable(b) ? b : next++);
  }
  return table;
}

/** `BYTE_TO_CHAR[b]` is the symbol for byte b. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** Inverse of `BYTE_TO_CHAR`. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/**
 * The 256 byte symbols in the order HF lists them (printable bytes first, then the remapped ones), which is
 * ascending code point order; this order gives vocabulary ids 0..255.
 */
export const BYTE_SYMBOLS_IN_VOCAB_ORDER: readonly string[] = [...BYTE_TO_CHAR].sort(
  (a, b) => a.codePointAt(0)! - b.codePointAt(0)!,
);

const utf8 = new TextEncoder();

/** Maps text to byte symbols via its UTF-8 encoding (lone surrogates encode as U+FFFD, as TextEncoder does). */
export function textToByteSymbols(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    let out = '';
    for (let i = 0; i < text.length; i++) out += BYTE_TO_CHAR[text.charCodeAt(i)];
    return out;
  }
  let out = '';
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}
