/**
 * The benchmark: clipseg-tfjs, PyTorch (transformers) and transformers.js on the same random-weight
 * CIDAS/clipseg-rd64-refined model, each case of each implementation in its own process, one after another.
 *
 *   npm run bench -- [--quick] [--json FILE] [--readme] [--impl a,b] [--case a,b] [--wasm-threads N] [--torch-threads N]
 *                    [--runs N] [--warmup N]
 *
 * Needs `benchmarks/models/` from `tools/reference/gen_bench_model.py`. A side that cannot run says why in one
 * line and the others still report.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { BENCH_DIR, CASES, IMPLS, MODEL_DIR, NOT_APPLICABLE, TRAIN_BATCH, TRAIN_BATCH_SIZE, runPlan, type CaseName, type ImplName } from './cases.js';
import { machineInfo, sideDetails } from './machine.js';
import { buildReport, renderMachine, renderTables, replaceReadmeSection } from './report.js';
import { type SideResult, seconds } from './side_io.js';
import { FileNotFoundError, InvalidArgumentError } from '../src/errors.js';
import { writeFileAtomic } from '../src/io/atomic.js';

interface Options {
  quick: boolean;
  json?: string;
  readme: boolean;
  impl: ImplName[];
  case: CaseName[];
  wasmThreads: number;
  runs?: number;
  warmup?: number;
  torchThreads?: number;
}

function listOption<T extends string>(allowed: readonly T[], name: string) {
  return (value: string): T[] => {
    const items = value.split(',').map((s) => s.trim());
    for (const item of items) {
      if (!(allowed as readonly string[]).includes(item)) {
        throw new InvalidArgumentError(`--${name}: expected a comma-separated subset of ${allowed.join(', ')}, got '${item}'`);
      }
    }
    return items as T[];
  };
}

function count(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`--${name}: expected an integer >= ${min}, got '${value}'`);
    return n;
  };
}

function parseOptions(argv: readonly string[]): Options {
  const program = new Command('bench')
    .description('CLIPSeg benchmark: clipseg-tfjs vs PyTorch vs transformers.js')
    .option('--quick', 'fewer runs (5 timed after 1 warm-up per case); the whole run stays under 10 minutes', false)
    .option('--json <file>', 'write the report as JSON')
    .option('--readme', 'write the tables into benchmarks/README.md between its result markers', false)
    .addOption(new Option('--impl <list>', 'implementations to run').argParser(listOption(IMPLS, 'impl')).default([...IMPLS]))
    .addOption(new Option('--case <list>', 'cases to run').argParser(listOption(CASES, 'case')).default([...CASES]))
    .addOption(
      new Option('--wasm-threads <n>', "clipseg-tfjs: run tfjs-backend-wasm's threaded SIMD build with n threads (0: default build)")
        .argParser((v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 0 || n > 8) throw new InvalidArgumentError(`--wasm-threads: expected an integer 0-8, got '${v}'`);
          return n;
        })
        .default(0),
    )
    .addOption(new Option('--torch-threads <n>', "pytorch: torch.set_num_threads(n) (default: torch's own choice)").argParser(count('torch-threads', 1)))
    .addOption(new Option('--runs <n>', 'timed runs per case (overrides the mode)').argParser(count('runs', 1)))
    .addOption(new Option('--warmup <n>', 'warm-up runs per case (overrides the mode)').argParser(count('warmup', 0)))
    .exitOverride();
  program.parse(argv, { from: 'user' });
  return program.opts() as Options;
}

/**
 * Finds the modules without importing them: importing torch and transformers takes seconds, and every PyTorch
 * side process pays that again anyway.
 */
const PYTHON_CHECK =
  'import importlib.util, sys; missing = [m for m in ("torch", "transformers", "safetensors", "PIL") if importlib.util.find_spec(m) is None]; ' +
  'sys.exit("missing " + ", ".join(missing) if missing else 0)';

/** The interpreter for the PyTorch side: $CLIPSEG_BENCH_PYTHON, else the reference venvs, else python3. */
async function findPython(): Promise<{ python: string } | { reason: string }> {
  const fromEnv = process.env.CLIPSEG_BENCH_PYTHON;
  const candidates =
    fromEnv !== undefined && fromEnv !== ''
      ? [fromEnv]
      : ['/work/.refvenv/bin/python', path.join(BENCH_DIR, '..', 'tools', 'reference', '.venv', 'bin', 'python'), 'python3'];
  const tried: string[] = [];
  for (const python of candidates) {
    if (path.isAbsolute(python) && !existsSync(python)) continue;
    const check = await runProcess(python, ['-c', PYTHON_CHECK], 120_000);
    if (check.code === 0) return { python };
    tried.push(`${python}: ${lastLine(check.stderr) || `exit ${String(check.code)}`}`);
  }
  return { reason: `no Python with torch and transformers (${tried.join('; ') || 'none found'}); set CLIPSEG_BENCH_PYTHON` };
}

interface ProcessOutcome {
  code: number | null;
  stderr: string;
  timedOut: boolean;
}

function runProcess(command: string, args: readonly string[], timeoutMs: number): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-20_000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stderr: err.message, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, timedOut });
    });
  });
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('at '));
  return lines[lines.length - 1] ?? '';
}

function sideCommand(impl: ImplName, python: string | undefined): { command: string; script: string[] } {
  switch (impl) {
    case 'clipseg-tfjs':
      return { command: process.execPath, script: ['--import', 'tsx', path.join(BENCH_DIR, 'tfjs_side.ts')] };
    case 'transformers.js':
      return { command: process.execPath, script: ['--import', 'tsx', path.join(BENCH_DIR, 'transformersjs_side.ts')] };
    case 'pytorch':
      return { command: python ?? 'python3', script: [path.join(BENCH_DIR, 'pytorch_side.py')] };
  }
}

async function runSideCase(impl: ImplName, name: CaseName, options: Options, python: string | undefined): Promise<SideResult> {
  const mode = runPlan(name, options.quick);
  const plan = { runs: options.runs ?? mode.runs, warmup: options.warmup ?? mode.warmup };
  const out = path.join(os.tmpdir(), `clipseg-bench-${process.pid}-${impl.replace(/\W/g, '')}-${name}.json`);
  const { command, script } = sideCommand(impl, python);
  const args = [...script, '--case', name, '--warmup', String(plan.warmup), '--runs', String(plan.runs), '--out', out];
  if (impl === 'clipseg-tfjs') args.push('--wasm-threads', String(options.wasmThreads));
  if (impl === 'pytorch' && options.torchThreads !== undefined) args.push('--torch-threads', String(options.torchThreads));
  const outcome = await runProcess(command, args, (options.quick ? 8 : 30) * 60_000);
  try {
    const text = await fs.readFile(out, 'utf8');
    return JSON.parse(text) as SideResult;
  } catch {
    const why = outcome.timedOut ? 'timed out' : `exited with ${String(outcome.code)}: ${lastLine(outcome.stderr) || 'no message'}`;
    return { impl, case: name, available: false, reason: why };
  } finally {
    await fs.rm(out, { force: true });
  }
}

function describe(result: SideResult): string {
  if (!result.available) return `unavailable: ${result.reason}`;
  const sorted = [...result.e2e_s].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1]!;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return `median ${median.toFixed(3)} s over ${sorted.length} runs (${sum.toFixed(1)} s), peak RSS ${result.peak_rss_mb.toFixed(0)} MB`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!existsSync(path.join(MODEL_DIR, 'model.safetensors')) || !existsSync(TRAIN_BATCH)) {
    throw new FileNotFoundError(`${MODEL_DIR} (run tools/reference/gen_bench_model.py first)`, 'benchmark model');
  }
  const machine = machineInfo();
  const started = performance.now();
  const results: SideResult[] = [];
  const walls: string[] = [];
  for (const impl of options.impl) {
    const implStarted = performance.now();
    let python: string | undefined;
    if (impl === 'pytorch') {
      const found = await findPython();
      if ('reason' in found) {
        process.stderr.write(`[pytorch] cannot run: ${found.reason}\n`);
        for (const name of options.case) results.push({ impl, case: name, available: false, reason: found.reason });
        continue;
      }
      python = found.python;
    }
    for (const name of options.case) {
      const notApplicable = NOT_APPLICABLE[impl]?.[name];
      if (notApplicable !== undefined) {
        results.push({ impl, case: name, available: false, reason: notApplicable });
        continue;
      }
      process.stderr.write(`[${impl}] ${name} ... `);
      const caseStarted = performance.now();
      const result = await runSideCase(impl, name, options, python);
      // The process's wall time beside the runs' sum shows what start-up, loading and warm-up cost.
      process.stderr.write(`${describe(result)}; process ${seconds(caseStarted).toFixed(1)} s\n`);
      results.push(result);
    }
    walls.push(`${impl} ${seconds(implStarted).toFixed(0)} s`);
  }
  process.stderr.write(`wall time: ${walls.join(', ')}\n`);
  const fullMachine = {
    ...machine,
    load_average_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
    mode: `${options.quick ? 'quick' : 'full'}${options.runs !== undefined || options.warmup !== undefined ? ` (runs ${options.runs ?? 'default'}, warm-up ${options.warmup ?? 'default'})` : ''}`,
    wall_s: Math.round((performance.now() - started) / 100) / 10,
    implementations: sideDetails(results),
    ...(options.wasmThreads > 0 ? { tfjs_wasm_threads: options.wasmThreads } : {}),
    ...(options.torchThreads !== undefined ? { torch_threads: options.torchThreads } : {}),
  };
  const report = buildReport(fullMachine, results, TRAIN_BATCH_SIZE);
  const tables = renderTables(report);
  process.stdout.write(`${tables}\n`);
  if (options.json !== undefined) await writeFileAtomic(options.json, JSON.stringify(report, null, 2) + '\n');
  if (options.readme) {
    const readmePath = path.join(BENCH_DIR, 'README.md');
    const readme = await fs.readFile(readmePath, 'utf8');
    await writeFileAtomic(readmePath, replaceReadmeSection(readme, `${renderMachine(report.machine)}\n\n${tables}`, readmePath));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
