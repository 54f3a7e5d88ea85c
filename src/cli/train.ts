/**
 * `clipseg train`: trains CLIPSeg on a PhraseCut-format folder and writes OUT as a model folder (config.json,
 * model.safetensors, preprocessor_config.json, tokenizer files when the initial model has them) plus
 * `checkpoints/`, `log.jsonl` and `loss.png`. `runTrain` is the same thing as a function (the demo-model script
 * uses it).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { CLIPSegConfig } from '../config/index.js';
import { ConfigError, InvalidArgumentError } from '../errors.js';
import { withRelease } from '../failures.js';
import { evaluate, type EvaluationResult } from '../eval/evaluate.js';
import { writeFileAtomic } from '../io/atomic.js';
import { saveModelFolder } from '../io/model_files.js';
import { PREPROCESSOR_FILE, readPretrained, resolvePretrainedFolder, TOKENIZER_FILES } from '../io/pretrained.js';
import { progressEnabled } from '../io/progress.js';
import { loadTokenizer } from '../io/tokenizer_files.js';
import { CLIPSegForImageSegmentation } from '../models/clipseg_segmentation.js';
import { loadStateDict } from '../models/state_dict.js';
import { checkAlignmentSelection } from '../train/alignment.js';
import { FeatureCache } from '../train/feature_cache.js';
import { PhraseCutDataset } from '../train/phrasecut.js';
import { checkSegmentationLoss, type SegmentationLoss } from '../train/losses.js';
import { STANDARD_PREPROCESSOR_CONFIG } from '../../weights-converter/processor_files.js';
import { TRAINING_PRESET_NAMES, trainingPreset, type TrainingPreset } from '../train/presets.js';
import { SamplePipeline } from '../train/sample_pipeline.js';
import { checkFreeze, SegmentationTask } from '../train/segmentation_task.js';
import { train, type StepRecord, type TrainResult } from '../train/trainer.js';

export interface TrainCommandOptions {
  data: string;
  out: string;
  /** A training preset name (`tiny`, `demo`, `rd64-refined`, ...) or a config.json path. */
  config?: string;
  /** Initial weights: a model folder or hub id (CLIP and decoder). */
  init?: string;
  steps?: number;
  batchSize?: number;
  accumulate?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  weightDecay?: number;
  /** AdamW beta2 (default 0.999). */
  beta2?: number;
  maxGradNorm?: number;
  seed?: number;
  resume?: boolean;
  evalEvery?: number;
  evalSplit?: string;
  /** Tasks of the evaluation split to use (default all). */
  evalLimit?: number;
  fullFinetune?: boolean;
  /** Globs over parameter keys kept at their initial values (`SegmentationTaskOptions.freeze`). */
  freeze?: string[];
  featureCache?: string;
  imageSize?: number;
  checkpointEvery?: number;
  keep?: number;
  /** Build visual supports and mix text and visual conditionals (PC+; default true). */
  visual?: boolean;
  negativeProb?: number;
  /** 'random' (the paper's) or 'hard' (`PipelineOptions.negatives`). */
  negatives?: 'random' | 'hard';
  /** 'bce' (the recipe's, default) or 'bce+dice' (adds a per-sample soft Dice term). */
  loss?: SegmentationLoss;
  /** Weight of the token-alignment loss (`SegmentationTaskOptions.alignment`; needs full fine-tuning; default 0). */
  alignment?: number;
  templates?: 'mixed' | 'none';
  /** Random square crops of side min(H, W) (true, the recipe) or the whole image squashed, as evaluation does (false). */
  crop?: boolean;
  /** Sample order: 'shuffle' (a seeded permutation per epoch) or 'sequential' (file order: an image's phrases together, as CLIPSeg's loader). */
  order?: 'shuffle' | 'sequential';
  /**
   * Start FiLM as the identity (film_mul(cond) = 1, film_add(cond) = 0) when training from random initialisation
   * (default true without --init). With the default init the scale is a random-signed vector per prompt and the
   * shift, shared by all tokens, outweighs the visual features, so the decoder sees scrambled, nearly uniform
   * tokens until both are learnt; a pretrained text tower hides this, a random one does not.
   */
  identityFilm?: boolean;
  /**
   * From random initialisation, start the output bias at this logit (default -3, about 5 % foreground), so that the
   * first steps do not spend themselves, and AdamW's second moments, on learning the foreground rate.
   */
  outputBias?: number;
  /** Draw a progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  /** Where notes (resume, warnings) go; default stderr. */
  note?: (line: string) => void;
}

export interface TrainSummary {
  out: string;
  steps: number;
  startStep: number;
  finalLoss: number;
  seconds: number;
  lastCheckpoint: string | undefined;
  preset: string | undefined;
  imageSize: number;
  parameters: { total: number; trained: number };
  skipped: Record<string, number>;
  eval?: EvaluationResult;
}

interface Architecture {
  config: CLIPSegConfig;
  preset: TrainingPreset | undefined;
}

/** How `--config` tells a config.json path from a preset name. */
export function isConfigFile(config: string): boolean {
  return config.endsWith('.json') || config.includes(path.sep);
}

async function resolveArchitecture(config: string | undefined, initDir: string | undefined): Promise<Architecture> {
  if (config === undefined) {
    if (initDir === undefined) {
      throw new InvalidArgumentError(`train: expected --config PRESET|FILE (presets: ${TRAINING_PRESET_NAMES.join(', ')}) or --init SRC`);
    }
    const text = await fs.readFile(path.join(initDir, 'config.json'), 'utf8');
    return { config: CLIPSegConfig.fromJSONString(text, path.join(initDir, 'config.json')), preset: undefined };
  }
  if (isConfigFile(config)) {
    let text: string;
    try {
      text = await fs.readFile(config, 'utf8');
    } catch (err) {
      throw new ConfigError(`--config: cannot read ${config} (${(err as Error).message})`, { cause: err });
    }
    return { config: CLIPSegConfig.fromJSONString(text, config), preset: undefined };
  }
  const preset = trainingPreset(config);
  return { config: preset.config(), preset };
}

function checkOptional(name: string, value: number | undefined, integer: boolean, min: number): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    throw new InvalidArgumentError(`${name}: expected ${integer ? 'an integer' : 'a number'} >= ${min}, got ${value}`);
  }
}

/** The `preprocessor_config.json` of a model trained at `size` (the CIDAS file with the size changed). */
export function preprocessorConfig(size: number): Record<string, unknown> {
  return { ...STANDARD_PREPROCESSOR_CONFIG, size: { height: size, width: size } };
}

export async function runTrain(options: TrainCommandOptions): Promise<TrainSummary> {
  if (typeof options.data !== 'string' || options.data === '') throw new InvalidArgumentError('--data: expected a PhraseCut folder');
  if (typeof options.out !== 'string' || options.out === '') throw new InvalidArgumentError('--out: expected an output folder');
  for (const [name, value, integer, min] of [
    ['--steps', options.steps, true, 1],
    ['--batch-size', options.batchSize, true, 1],
    ['--accumulate', options.accumulate, true, 1],
    ['--lr', options.lr, false, 0],
    ['--min-lr', options.minLr, false, 0],
    ['--warmup', options.warmup, true, 0],
    ['--weight-decay', options.weightDecay, false, 0],
    ['--beta2', options.beta2, false, 0],
    ['--max-grad-norm', options.maxGradNorm, false, 0],
    ['--seed', options.seed, true, 0],
    ['--eval-every', options.evalEvery, true, 1],
    ['--eval-limit', options.evalLimit, true, 1],
    ['--image-size', options.imageSize, true, 1],
    ['--checkpoint-every', options.checkpointEvery, true, 1],
    ['--keep', options.keep, true, 1],
    ['--negative-prob', options.negativeProb, false, 0],
    ['--alignment', options.alignment, false, 0],
  ] as const) {
    checkOptional(name, value, integer, min);
  }
  if (options.negativeProb !== undefined && options.negativeProb > 1) throw new InvalidArgumentError(`--negative-prob: expected a probability in [0, 1], got ${options.negativeProb}`);
  if (options.negatives !== undefined && options.negatives !== 'random' && options.negatives !== 'hard') {
    throw new InvalidArgumentError(`--negatives: expected 'random' or 'hard', got '${String(options.negatives)}'`);
  }
  if (options.templates !== undefined && options.templates !== 'mixed' && options.templates !== 'none') {
    throw new InvalidArgumentError(`--templates: expected 'mixed' or 'none', got '${String(options.templates)}'`);
  }
  if (options.loss !== undefined) checkSegmentationLoss(options.loss, '--loss');
  if (options.order !== undefined && options.order !== 'shuffle' && options.order !== 'sequential') {
    throw new InvalidArgumentError(`--order: expected 'shuffle' or 'sequential', got '${String(options.order)}'`);
  }
  const note = options.note ?? ((line: string) => process.stderr.write(`${line}\n`));
  const started = Date.now();
  const initDir = options.init === undefined ? undefined : await resolvePretrainedFolder(options.init, { files: 'all' });
  const { config, preset } = await resolveArchitecture(options.config, initDir);
  const defaults = preset?.defaults;
  const imageSize = options.imageSize ?? preset?.imageSize ?? 352;
  const fullFinetune = options.fullFinetune ?? defaults?.fullFinetune ?? false;
  const seed = options.seed ?? 0;
  checkAlignmentSelection(options.alignment ?? 0, fullFinetune, '--alignment');

  const dataset = await PhraseCutDataset.open(options.data, { split: 'train' });
  let built: CLIPSegForImageSegmentation | undefined;
  let builtTask: SegmentationTask | undefined;
  return withRelease(async () => {
    built = initDir === undefined ? new CLIPSegForImageSegmentation(config, { seed }) : new CLIPSegForImageSegmentation(config, { initialize: false });
    const model = built;
    if (initDir !== undefined) {
      const files = await readPretrained(initDir);
      loadStateDict(model, files.weights, files.layout);
    } else {
      if (options.identityFilm ?? true) setIdentityFilm(model);
      setOutputBias(model, options.outputBias ?? -3);
    }
    const tokenizer = initDir !== undefined && (await exists(path.join(initDir, 'vocab.json'))) ? await loadTokenizer(initDir) : await loadTokenizer();
    const pipeline = new SamplePipeline(dataset, seed, {
      size: imageSize,
      withVisual: options.visual ?? true,
      ...(options.negativeProb === undefined ? {} : { negativeProbability: options.negativeProb }),
      ...(options.negatives === undefined ? {} : { negatives: options.negatives }),
      ...(options.templates === undefined ? {} : { templates: options.templates }),
      ...(options.order === undefined ? {} : { order: options.order }),
      ...(options.crop === undefined ? {} : { crop: options.crop }),
    });
    let featureCache: FeatureCache | undefined;
    if (options.featureCache !== undefined) {
      if (fullFinetune) note('note: --feature-cache is ignored with --full-finetune (CLIP activations change as CLIP trains)');
      else featureCache = await FeatureCache.open(options.featureCache, model);
    }
    if (options.freeze !== undefined) checkFreeze(options.freeze, model, '--freeze');
    const task = new SegmentationTask({
      model,
      pipeline,
      tokenizer,
      fullFinetune,
      featureCache,
      ...(options.loss === undefined ? {} : { loss: options.loss }),
      ...(options.freeze === undefined ? {} : { freeze: options.freeze }),
      ...(options.alignment === undefined ? {} : { alignment: options.alignment }),
      origin: { init: options.init ?? null, imageSize },
    });
    builtTask = task;
    const steps = options.steps ?? defaults?.steps ?? 20000;
    const evalSplit = options.evalSplit ?? 'val';
    const evaluateAt = async (): Promise<EvaluationResult> =>
      evaluate(model, options.data, { tokenizer, split: evalSplit, size: imageSize, batchSize: 8, ...(options.evalLimit === undefined ? {} : { limit: options.evalLimit }) });

    const progress = options.progress ?? progressEnabled();
    const bar = progress ? new cliProgress.SingleBar({
      format: 'train [{bar}] {value}/{total} | loss {loss} | lr {lr} | {sps} samples/s | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      barsize: 24,
      etaBuffer: 20,
    }) : undefined;
    const result: TrainResult = await (async () => {
      try {
        return await train(task, {
          outDir: options.out,
          steps,
          batchSize: options.batchSize ?? defaults?.batchSize ?? 8,
          accumulate: options.accumulate ?? defaults?.accumulate ?? 8,
          lr: options.lr ?? defaults?.lr ?? 1e-3,
          minLr: options.minLr ?? Math.min(defaults?.minLr ?? 1e-4, options.lr ?? Number.POSITIVE_INFINITY),
          warmupSteps: options.warmup ?? defaults?.warmupSteps ?? 0,
          weightDecay: options.weightDecay ?? defaults?.weightDecay ?? 0.01,
          beta2: options.beta2 ?? 0.999,
          maxGradNorm: options.maxGradNorm ?? 0,
          seed,
          checkpointEvery: options.checkpointEvery ?? defaults?.checkpointEvery ?? 1000,
          keepCheckpoints: options.keep ?? 3,
          resume: options.resume ?? false,
          ...(options.evalEvery === undefined ? {} : { evalEvery: options.evalEvery, evaluate: async () => summarize(await evaluateAt()) }),
          onResume: (step, file) => {
            note(`resuming from ${file} (step ${step} of ${steps})`);
            bar?.start(steps, step, { loss: '-', lr: '-', sps: '-' });
          },
          onStep: (r: StepRecord) => {
            if (bar === undefined) return;
            if (!barStarted(bar)) bar.start(steps, r.step - 1, { loss: '-', lr: '-', sps: '-' });
            bar.update(r.step, { loss: r.loss.toFixed(4), lr: r.lr.toExponential(2), sps: r.samples_per_s.toFixed(1) });
          },
        });
      } finally {
        bar?.stop();
      }
    })();
    await saveModelFolder(model, options.out);
    await writeFileAtomic(path.join(options.out, PREPROCESSOR_FILE), `${JSON.stringify(preprocessorConfig(imageSize), null, 2)}\n`);
    if (initDir !== undefined) await copyTokenizerFiles(initDir, options.out);
    const params = model.namedParameters();
    return {
      out: options.out,
      steps: result.steps,
      startStep: result.startStep,
      finalLoss: result.finalLoss,
      seconds: (Date.now() - started) / 1000,
      lastCheckpoint: result.lastCheckpoint,
      preset: preset?.name,
      imageSize,
      parameters: {
        total: params.reduce((s, p) => s + p.variable.size, 0),
        trained: params.filter((p) => p.trainable).reduce((s, p) => s + p.variable.size, 0),
      },
      skipped: dataset.summary().skipped as Record<string, number>,
    };
  }, async () => {
    await dataset.close();
    builtTask?.dispose();
    built?.dispose();
  });
}

/** film_mul(cond) = 1 and film_add(cond) = 0 for every prompt: the decoder starts from the visual features alone. */
export function setIdentityFilm(model: CLIPSegForImageSegmentation): void {
  for (const p of model.parameters()) {
    if (p.key === 'decoder.film_mul.bias') p.assign(new Float32Array(p.size).fill(1));
    else if (p.key.startsWith('decoder.film_mul.') || p.key.startsWith('decoder.film_add.')) p.assign(new Float32Array(p.size));
  }
}

/** Sets the bias of the head's last transposed convolution (`.bias` of the plain head, `.4.bias` of the refined one). */
export function setOutputBias(model: CLIPSegForImageSegmentation, logit: number): void {
  const key = model.config.use_complex_transposed_convolution ? 'decoder.transposed_convolution.4.bias' : 'decoder.transposed_convolution.bias';
  for (const p of model.parameters()) if (p.key === key) p.assign(new Float32Array(p.size).fill(logit));
}

function barStarted(bar: cliProgress.SingleBar): boolean {
  return (bar as unknown as { isActive?: boolean }).isActive === true;
}

function summarize(r: EvaluationResult): Record<string, unknown> {
  return { split: r.split, samples: r.samples, threshold: r.threshold, miou: r.miou, fgiou: r.fgiou, ap: r.ap };
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function copyTokenizerFiles(from: string, to: string): Promise<void> {
  for (const name of TOKENIZER_FILES) {
    const source = path.join(from, name);
    if (await exists(source)) await writeFileAtomic(path.join(to, name), await fs.readFile(source));
  }
}
