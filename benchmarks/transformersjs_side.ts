/**
 * The transformers.js side: `@huggingface/transformers` (installed on demand, see the README) running the ONNX
 * export of the benchmark model on onnxruntime-node's CPU provider. One image is broadcast to N prompts, as its
 * graph allows.
 * transformers.js has no training API, so `train_step_b8` reports itself unavailable.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_DIR, MODELS_DIR, PROMPTS, SEGMENT_CASES, imagePath, isSegmentCase } from './cases.js';
import { type SideArgs, parseSideArgs, peakRssMb, runSide, seconds, timeRuns, writeSideResult } from './side_io.js';

const PACKAGE = '@huggingface/transformers';
const MODEL_NAME = path.basename(MODEL_DIR);

/** The part of the transformers.js API used here (the package may be absent, so its types are not required). */
interface TjsTensor {
  dims: number[];
  data: Float32Array;
  dispose(): void;
}
interface TjsModel {
  (inputs: Record<string, unknown>): Promise<{ logits: TjsTensor }>;
  dispose(): Promise<unknown>;
}
interface TjsModule {
  env: { allowRemoteModels: boolean; localModelPath: string; version?: string };
  AutoTokenizer: { from_pretrained(name: string): Promise<(texts: string[], options: object) => Record<string, TjsTensor>> };
  AutoProcessor: { from_pretrained(name: string): Promise<(images: unknown) => Promise<{ pixel_values: TjsTensor }>> };
  CLIPSegForImageSegmentation: { from_pretrained(name: string, options: object): Promise<TjsModel> };
  RawImage: { read(file: string): Promise<unknown> };
}

/** Threads given to onnxruntime, the same as PyTorch's intra-op default on this machine (one per core). */
const INTRA_OP_THREADS = os.availableParallelism();

async function importTransformers(): Promise<TjsModule | string> {
  const specifier: string = PACKAGE;
  try {
    return (await import(specifier)) as TjsModule;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0];
    return `${PACKAGE} is not installed or cannot load (${message}); install it with ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save ${PACKAGE}@4.3.1`;
  }
}

/** The installed version of a package, found by walking up from its entry point (its exports hide package.json). */
function packageVersion(name: string, from: string = import.meta.url): string {
  try {
    const require = createRequire(from);
    let dir = path.dirname(require.resolve(name));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version: string };
        if (pkg.name === name) return pkg.version;
      } catch {
        // No package.json at this level: keep walking up.
      }
      const parent = path.dirname(dir);
      if (parent === dir) return 'unknown';
      dir = parent;
    }
  } catch {
    return 'unknown';
  }
}

async function loadAll(tjs: TjsModule) {
  const tokenizer = await tjs.AutoTokenizer.from_pretrained(MODEL_NAME);
  const processor = await tjs.AutoProcessor.from_pretrained(MODEL_NAME);
  const model = await tjs.CLIPSegForImageSegmentation.from_pretrained(MODEL_NAME, {
    dtype: 'fp32',
    device: 'cpu',
    session_options: { intraOpNumThreads: INTRA_OP_THREADS, interOpNumThreads: 1 },
  });
  return { tokenizer, processor, model };
}

async function main(args: SideArgs): Promise<void> {
  const tjs = await importTransformers();
  if (typeof tjs === 'string') {
    await writeSideResult(args.out, { impl: 'transformers.js', case: args.case, available: false, reason: tjs });
    return;
  }
  if (args.case === 'train_step_b8') {
    await writeSideResult(args.out, {
      impl: 'transformers.js',
      case: args.case,
      available: false,
      reason: 'transformers.js runs inference only (no training API)',
    });
    return;
  }
  tjs.env.allowRemoteModels = false;
  tjs.env.localModelPath = MODELS_DIR + path.sep;

  let timing: { e2e: number[]; model: number[] };
  if (args.case === 'load') {
    timing = await timeRuns(args, async () => {
      const { model } = await loadAll(tjs);
      await model.dispose();
      return {};
    });
  } else if (isSegmentCase(args.case)) {
    const spec = SEGMENT_CASES[args.case];
    const { tokenizer, processor, model } = await loadAll(tjs);
    const files = Array.from({ length: spec.images }, (_, i) => imagePath(i));
    const texts = PROMPTS.slice(0, spec.prompts);
    timing = await timeRuns(args, async () => {
      const images = await Promise.all(files.map((f) => tjs.RawImage.read(f)));
      const { pixel_values } = await processor(images.length === 1 ? images[0] : images);
      const text = tokenizer(texts, { padding: true, truncation: true });
      const start = performance.now();
      const { logits } = await model({ ...text, pixel_values });
      if (logits.dims[0] !== spec.prompts || logits.data.length !== spec.prompts * 352 * 352) {
        throw new Error(`logits: expected [${spec.prompts}, 352, 352], got [${logits.dims.join(', ')}]`);
      }
      const modelS = seconds(start);
      logits.dispose();
      return { modelS };
    });
    await model.dispose();
  } else {
    throw new Error(`case ${args.case} is not handled`);
  }
  await writeSideResult(args.out, {
    impl: 'transformers.js',
    case: args.case,
    available: true,
    e2e_s: timing.e2e,
    ...(timing.model.length > 0 ? { model_s: timing.model } : {}),
    peak_rss_mb: peakRssMb(),
    versions: { 'transformers.js': packageVersion(PACKAGE), 'onnxruntime-node': packageVersion('onnxruntime-node', createRequire(import.meta.url).resolve(PACKAGE)), node: process.version },
    threads: { onnxruntime_intra_op: INTRA_OP_THREADS, onnxruntime_inter_op: 1 },
    notes: ['ONNX graph traced from the same weights; logits-only, so vision layers 10-11 are pruned from the graph'],
  });
}

runSide(() => main(parseSideArgs(process.argv.slice(2))));
