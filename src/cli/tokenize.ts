/**
 * `clipseg tokenize TEXT...`: the token ids the model receives for each text (HF `CLIPTokenizerFast` behaviour).
 */
import { InvalidArgumentError } from '../errors.js';
import type { CLIPTokenizer } from '../processor/tokenizer.js';
import { loadTokenizerFrom, resolveModelFolder } from '../pipeline/sources.js';

export interface TokenizeOptions {
  model?: string;
  json?: boolean;
  tokens?: boolean;
  truncation?: boolean;
  maxLength?: number;
}

export interface TokenizedText {
  text: string;
  ids: number[];
  tokens: string[];
}

export function tokenizeTexts(tokenizer: CLIPTokenizer, texts: readonly string[], options: TokenizeOptions = {}): TokenizedText[] {
  return texts.map((text) => {
    const ids = tokenizer.encode(text, {
      truncation: options.truncation ?? false,
      ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}),
    });
    return { text, ids, tokens: tokenizer.convertIdsToTokens(ids) };
  });
}

/** Plain output: one line of ids per text, followed by a line of tokens when asked. */
export function formatTokenized(results: readonly TokenizedText[], options: TokenizeOptions = {}): string {
  if (options.json) return `${JSON.stringify(results, null, 2)}\n`;
  const lines: string[] = [];
  for (const r of results) {
    lines.push(r.ids.join(' '));
    if (options.tokens) lines.push(r.tokens.join(' '));
  }
  return `${lines.join('\n')}\n`;
}

export async function runTokenize(texts: readonly string[], options: TokenizeOptions = {}): Promise<string> {
  if (texts.length === 0) throw new InvalidArgumentError('tokenize: expected at least one TEXT argument');
  const tokenizer = await loadTokenizerFrom(options.model === undefined ? undefined : await resolveModelFolder(options.model));
  return formatTokenized(tokenizeTexts(tokenizer, texts, options), options);
}
