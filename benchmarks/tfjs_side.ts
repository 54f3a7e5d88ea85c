/**
 * Our side: clipseg-tfjs on the tfjs `wasm` backend, the default build or, with `--wasm-threads N` (or
 * `$CLIPSEG_WASM_THREADS` from 2 up), the threaded SIMD build (or on the backend `$CLIPSEG_BACKEND` names). What
 * each case runs is in `tfjs_work.ts`. Besides the timings it reports the tfjs memory: tensors
 * alive after the runs (and how many the runs after the first leaked), the peak tensor bytes of the first warm-up
 * run (`tf.profile`, which counts views such as reshapes as bytes of their own, so it overstates) and the wasm heap,
 * which only grows and so shows the real peak the module needed.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { BACKEND_ENV, selectBackend, wasmThreads } from '../src/backend.js';
import { isSegmentCase } from './cases.js';
import { type SideArgs, parseSideArgs, peakRssMb, runSide, timeRuns, writeSideResult } from './side_io.js';
import { type Work, loadOnce, segmentWork, trainWork } from './tfjs_work.js';
import { initThreadedWasm } from './wasm_threads.js';

function wasmHeapMb(): number | undefined {
  const module = (tf.backend() as unknown as { wasm?: { wasmMemory?: { buffer: ArrayBufferLike }; HEAPU8?: Uint8Array } }).wasm;
  const bytes = module?.wasmMemory?.buffer.byteLength ?? module?.HEAPU8?.buffer.byteLength;
  return bytes === undefined ? undefined : bytes / 2 ** 20;
}

function tfjsVersion(): string {
  const file = createRequire(import.meta.url).resolve('@tensorflow/tfjs-core/package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(args: SideArgs): Promise<void> {
  let threads = args.wasmThreads > 0 ? (await initThreadedWasm(args.wasmThreads)).threads : 1;
  if (args.wasmThreads === 0) {
    // wasm unless $CLIPSEG_BACKEND names another backend (e.g. tensorflow where tfjs-node is installed).
    await selectBackend(process.env[BACKEND_ENV] ? undefined : 'wasm');
    threads = wasmThreads() ?? 1;
  }
  const simd = tf.getBackend() === 'wasm' && (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;

  let timing: { e2e: number[]; model: number[] };
  let notes: string[] = [];
  const memory: Record<string, number> = {};
  if (args.case === 'load') {
    timing = await timeRuns(args, loadOnce);
  } else {
    const work: Work = isSegmentCase(args.case) ? await segmentWork(args.case) : await trainWork();
    let before = 0;
    // The first warm-up run goes through tf.profile for its peak tensor bytes; the timed runs are not profiled.
    const profiled = async () => {
      const info = await tf.profile(async () => {
        await work.run();
        return [];
      });
      memory.peak_bytes_mb = info.peakBytes / 2 ** 20;
      before = tf.memory().numTensors;
    };
    timing = await timeRuns(args, () => work.run(), profiled);
    memory.tensors_leaked_over_runs = tf.memory().numTensors - before;
    memory.num_bytes_mb = tf.memory().numBytes / 2 ** 20;
    notes = work.notes;
    work.dispose();
  }
  memory.num_tensors_after_dispose = tf.memory().numTensors;
  const heap = wasmHeapMb();
  if (heap !== undefined) memory.wasm_heap_mb = heap;
  await writeSideResult(args.out, {
    impl: 'clipseg-tfjs',
    case: args.case,
    available: true,
    e2e_s: timing.e2e,
    ...(timing.model.length > 0 ? { model_s: timing.model } : {}),
    peak_rss_mb: peakRssMb(),
    memory,
    versions: { tfjs: tfjsVersion(), backend: tf.getBackend(), node: process.version },
    threads:
      tf.getBackend() === 'wasm'
        ? { wasm_build: args.wasmThreads > 0 || threads > 1 ? 'threaded-simd' : simd ? 'simd' : 'plain', xnnpack_threads: threads }
        : { backend_default: 'as the backend chooses' },
    ...(notes.length > 0 ? { notes } : {}),
  });
}

runSide(() => main(parseSideArgs(process.argv.slice(2))));
