/**
 * Per-kernel profile of clipseg-tfjs on tfjs-wasm: one run of a case (as `tfjs_side.ts` times it) under
 * `tf.profile`, kernel wall times summed by kernel and by kernel + input shapes, printed as Markdown tables.
 *
 *   node --import tsx benchmarks/profile.ts [--case segment_1x1|segment_1x8|segment_4x1|train_step_b8] [--top N] [--wasm-threads N]
 *
 * The wasm backend's kernels are synchronous, so their times are wall time. Records named `<op>__op` are op-level
 * wrappers (custom gradients) around kernels that are recorded themselves; they are left out of the sums. The
 * difference between the run's wall time and the kernel sum is JavaScript between kernels (JPEG decoding and the
 * image processor included).
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend.js';
import { InvalidArgumentError } from '../src/errors.js';
import { CASES, isSegmentCase, type CaseName } from './cases.js';
import { type KernelRecord, byShapeKey, groupKernels, renderGroups } from './kernel_stats.js';
import { runSide } from './side_io.js';
import { segmentWork, trainWork } from './tfjs_work.js';
import { initThreadedWasm } from './wasm_threads.js';

interface ProfileOptions {
  case: Exclude<CaseName, 'load'>;
  top: number;
  wasmThreads: number;
}

function parseArgs(argv: readonly string[]): ProfileOptions {
  const options: ProfileOptions = { case: 'segment_1x1', top: 15, wasmThreads: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (key === '--case' && value !== undefined && (CASES as readonly string[]).includes(value) && value !== 'load') {
      options.case = value as ProfileOptions['case'];
    } else if (key === '--top' && Number.isInteger(Number(value))) {
      options.top = Number(value);
    } else if (key === '--wasm-threads' && Number.isInteger(Number(value))) {
      options.wasmThreads = Number(value);
    } else {
      throw new InvalidArgumentError(`profile: unexpected argument ${String(key)} ${String(value)} (usage in benchmarks/profile.ts)`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.wasmThreads > 0) await initThreadedWasm(options.wasmThreads);
  else await selectBackend('wasm');
  const work = isSegmentCase(options.case) ? await segmentWork(options.case) : await trainWork();
  await work.run();
  const start = performance.now();
  const info = await tf.profile(async () => {
    await work.run();
    return [];
  });
  const wallMs = performance.now() - start;
  work.dispose();
  const records: KernelRecord[] = [];
  let peak = { bytes: 0, at: '' };
  for (const k of info.kernels) {
    if (k.totalBytesSnapshot > peak.bytes) peak = { bytes: k.totalBytesSnapshot, at: `${k.name} ${k.inputShapes.map((s) => `[${(s ?? []).join(',')}]`).join(' ')}` };
    if (k.name.endsWith('__op')) continue;
    records.push({ name: k.name, inputShapes: k.inputShapes.map((s) => s ?? []), ms: Number(await k.kernelTimeMs)});
  }
  const kernelMs = records.reduce((sum, r) => sum + r.ms, 0);
  const threads = options.wasmThreads > 0 ? ` (threaded SIMD, ${options.wasmThreads} threads)` : '';
  process.stdout.write(
    [
      `Case ${options.case}, backend ${tf.getBackend()}${threads}: ${records.length} kernels, ` +
        `${kernelMs.toFixed(0)} ms in kernels, ${wallMs.toFixed(0)} ms wall under the profiler. Tensor bytes peak at ` +
        `${(peak.bytes / 2 ** 20).toFixed(0)} MB (weights included; tfjs counts each view, e.g. a reshape, as its own bytes), reached after ${peak.at}.`,
      '',
      renderGroups('kernel', groupKernels(records, (r) => r.name), kernelMs, options.top),
      '',
      renderGroups('kernel and input shapes', groupKernels(records, byShapeKey), kernelMs, options.top),
      '',

    ].join('\n'),
  );
}

runSide(main);
