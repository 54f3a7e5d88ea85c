/**
 * The contract between the orchestrator and one implementation's process: the command line a side receives,
 * the result file it writes, and the timing loop the JavaScript sides share. `pytorch_side.py` speaks the same
 * contract. One process runs one case, so its peak RSS belongs to that case alone.
 */
import { CASES, type CaseName, type ImplName } from './cases.js';
import { InvalidArgumentError } from '../src/errors.js';
import { writeFileAtomic } from '../src/io/atomic.js';

export interface SideArgs {
  case: CaseName;
  warmup: number;
  runs: number;
  out: string;
  /** clipseg-tfjs only: run tfjs-backend-wasm's threaded SIMD build with this many threads (0: the default build). */
  wasmThreads: number;
}

export interface SideMeasured {
  impl: ImplName;
  case: CaseName;
  available: true;
  /** End-to-end seconds per timed run: image file on disk to logits on the host (or one training step, or one load). */
  e2e_s: number[];
  /** The model part of the same runs: prepared input tensors to logits on the host. */
  model_s?: number[];
  peak_rss_mb: number;
  /** tfjs engine numbers after the timed runs (clipseg-tfjs only). */
  memory?: Record<string, number>;
  versions: Record<string, string>;
  threads: Record<string, number | string>;
  notes?: string[];
}

export interface SideUnavailable {
  impl: ImplName;
  case: CaseName;
  available: false;
  /** One line: why this implementation cannot run this case here. */
  reason: string;
}

export type SideResult = SideMeasured | SideUnavailable;

export function parseSideArgs(argv: readonly string[]): SideArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (key === undefined || !key.startsWith('--') || value === undefined) {
      throw new InvalidArgumentError(`side arguments: expected --key value pairs, got ${JSON.stringify(argv)}`);
    }
    values.set(key.slice(2), value);
  }
  const name = values.get('case');
  if (name === undefined || !(CASES as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`--case: expected one of ${CASES.join(', ')}, got ${String(name)}`);
  }
  const out = values.get('out');
  if (out === undefined) throw new InvalidArgumentError('--out: expected the result file path');
  const int = (key: string, fallback: number): number => {
    const raw = values.get(key);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--${key}: expected a non-negative integer, got ${String(raw)}`);
    return n;
  };
  return { case: name as CaseName, warmup: int('warmup', 1), runs: int('runs', 5), out, wasmThreads: int('wasm-threads', 0) };
}

/** Peak resident set size of this process so far, in MB (getrusage's maxrss, as Python's `resource` reports it). */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export interface RunTiming {
  /** Seconds of the model part inside the run, when the run has distinct phases. */
  modelS?: number;
}

/**
 * Runs `once` `warmup` times untimed and `runs` times timed. Each timed run is wall-clock from before the call to
 * after its promise settles; `once` reports the model part it timed itself. `warmupOnce` replaces the first
 * warm-up run (to observe a run, e.g. under a profiler, without timing it).
 */
export async function timeRuns(
  plan: { warmup: number; runs: number },
  once: () => Promise<RunTiming>,
  warmupOnce: () => Promise<unknown> = once,
): Promise<{ e2e: number[]; model: number[] }> {
  for (let i = 0; i < plan.warmup; i++) await (i === 0 ? warmupOnce() : once());
  const e2e: number[] = [];
  const model: number[] = [];
  for (let i = 0; i < plan.runs; i++) {
    const start = performance.now();
    const timing = await once();
    e2e.push((performance.now() - start) / 1000);
    if (timing.modelS !== undefined) model.push(timing.modelS);
  }
  return { e2e, model };
}

export function seconds(sinceMs: number): number {
  return (performance.now() - sinceMs) / 1000;
}

export async function writeSideResult(file: string, result: SideResult): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(result) + '\n');
}

/**
 * Runs a side's `main` and turns a thrown error into an exit status 1 with the message on stderr, so the
 * orchestrator can report it in one line. Workers of the threaded wasm build would keep the process alive,
 * hence the explicit exit.
 */
export function runSide(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
