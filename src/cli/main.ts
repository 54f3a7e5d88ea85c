#!/usr/bin/env node
/**
 * The `clipseg` binary. Every subcommand is declared in `commands/` and registered here; a command's implementation
 * (and tfjs with it) is imported only when that command runs, so `--help` and argument errors answer at once. Errors
 * become one line on stderr and an exit status from the table in docs/cli.md (stack traces only with --verbose).
 */
import { readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { BACKEND_ENV, BACKEND_NAMES, MAX_WASM_THREADS, WASM_THREADS_ENV, checkThreads } from '../backend_options.js';
import { packageRoot } from '../pipeline/assets.js';
import { registerConvert } from './commands/convert.js';
import { registerEnv } from './commands/env.js';
import { registerEval } from './commands/eval.js';
import { registerInspect } from './commands/inspect.js';
import { registerMakeSynthetic } from './commands/make_synthetic.js';
import { registerPreprocess } from './commands/preprocess.js';
import { registerSegment } from './commands/segment.js';
import { registerTokenize } from './commands/tokenize.js';
import { registerTrain } from './commands/train.js';
import { reportError } from './errors.js';

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function buildProgram(): Command {
  const program = new Command('clipseg');
  program
    .description('CLIPSeg image segmentation from text and image prompts, on TensorFlow.js')
    .version(packageVersion(), '-V, --version')
    .option('--verbose', 'print stack traces on errors')
    .addOption(new Option('--backend <name>', `tfjs backend (default: $${BACKEND_ENV}, else auto)`).choices(BACKEND_NAMES))
    .addOption(
      new Option(
        '--threads <n>',
        `wasm backend threads, 1-${MAX_WASM_THREADS}; from 2 up the threaded SIMD build runs (default: $${WASM_THREADS_ENV}, else 1)`,
      ).argParser((value) => String(checkThreads(Number(value.trim() === '' ? Number.NaN : value), '--threads'))),
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .hook('preAction', (thisCommand) => {
      // Global options are consumed by the program wherever they appear; the backend module reads the environment,
      // so every subcommand (including those that select the backend themselves) sees the choice.
      const { backend, threads } = thisCommand.opts() as { backend?: string; threads?: string };
      if (backend !== undefined) process.env[BACKEND_ENV] = backend;
      if (threads !== undefined) process.env[WASM_THREADS_ENV] = threads;
    });
  registerSegment(program);
  registerInspect(program);
  registerTokenize(program);
  registerPreprocess(program);
  registerConvert(program);
  registerEnv(program);
  registerTrain(program);
  registerEval(program);
  registerMakeSynthetic(program);
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

/** True when this module is the program node started (directly, through tsx, or through the npm bin symlink). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main(process.argv.slice(2));
