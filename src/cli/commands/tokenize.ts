/** Declares `clipseg tokenize`; the tokenizer loads when the command runs. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../../errors.js';
import type { TokenizeOptions } from '../tokenize.js';

function parseLength(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError(`--max-length: expected an integer >= 2, got '${value}'`);
  return n;
}

export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .description('print the token ids of each TEXT (one line per text)')
    .argument('<text...>', 'texts to tokenize')
    .option('--model <src>', 'model folder or hub id whose tokenizer files to use (default: the shipped CLIP vocabulary)')
    .option('--tokens', 'also print the BPE tokens, on a line after the ids')
    .option('--truncation', 'cut each text to --max-length tokens, keeping BOS and EOS')
    .option('--max-length <n>', 'length limit for --truncation (default 77)', parseLength)
    .option('--json', 'print [{text, ids, tokens}] as JSON')
    .action(async (texts: string[], options: TokenizeOptions) => {
      const { runTokenize } = await import('../tokenize.js');
      process.stdout.write(await runTokenize(texts, options));
    });
}
