#!/usr/bin/env node
/**
 * The `clipseg` binary. Every subcommand lives in its own module and is registered here; errors become one line on
 * stderr and an exit status from the table in docs/cli.md (stack traces only with --verbose).
 */
import { Command, Option } from 'commander';
import { registerTokenize } from './tokenize.js';
import { reportError } from './errors.js';

const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'];

export function buildProgram(): Command {
  const program = new Command('clipseg');
  program
    .description('CLIPSeg image segmentation from text and image prompts, on TensorFlow.js')
    .option('--verbose', 'print stack traces and extra diagnostics on errors')
    .addOption(new Option('--backend <name>', 'tfjs backend (default: $CLIPSEG_BACKEND or auto)').choices(BACKENDS))
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .hook('preAction', (thisCommand) => {
      // Global options are consumed by the program wherever they appear; the backend module reads the environment,
      // so every subcommand (including those that select the backend themselves) sees the choice.
      const { backend } = thisCommand.opts() as { backend?: string };
      if (backend !== undefined) process.env.CLIPSEG_BACKEND = backend;
    });
  registerTokenize(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const verbose = (program.opts() as { verbose?: boolean }).verbose === true || argv.includes('--verbose');
    return reportError(err, { verbose, write: (text) => process.stderr.write(text) });
  }
}

process.exitCode = await main(process.argv.slice(2));
