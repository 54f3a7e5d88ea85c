/**
 * `fromPretrained` support without file or network access in the model classes: the Node entry (importing
 * `src/io/model_files.ts`) registers a loader that turns a source string into a config and a tensor source.
 */
import type { CLIPSegConfig } from '../config/index.js';
import { UnsupportedError } from '../errors.js';
import type { PreTrainedModel } from './base.js';
import type { WeightLayout } from './layout.js';
import { detectPrefix, loadStateDict, type TensorSource } from './state_dict.js';

export interface PretrainedOptions {
  /** Hub revision, for loaders that download. */
  revision?: string;
  [option: string]: unknown;
}

export interface PretrainedFiles {
  config: CLIPSegConfig;
  weights: TensorSource;
  layout: WeightLayout;
  /** Where the files came from, for messages. */
  source: string;
}

export type PretrainedLoader = (source: string, options: PretrainedOptions) => Promise<PretrainedFiles>;

let registered: PretrainedLoader | undefined;

/** Installs the loader `fromPretrained` uses; a later registration replaces (and may wrap) the earlier one. */
export function registerPretrainedLoader(loader: PretrainedLoader): void {
  registered = loader;
}

export function pretrainedLoader(): PretrainedLoader | undefined {
  return registered;
}

export async function fetchPretrained(source: string, options: PretrainedOptions = {}): Promise<PretrainedFiles> {
  if (registered === undefined) {
    throw new UnsupportedError(
      `cannot load '${source}': no pretrained loader is registered (in Node, import the package entry or 'src/io/model_files.js'; in a browser, build the model and call loadStateDict)`,
    );
  }
  return registered(source, options);
}

/**
 * Fetches `source`, builds the model from its config (without initial values) and loads the weights strictly.
 * `partial` lets a part of CLIPSeg (a tower, or CLIPSegModel) read its keys out of a larger checkpoint.
 */
export async function loadPretrained<T extends PreTrainedModel>(
  source: string,
  options: PretrainedOptions,
  build: (config: CLIPSegConfig) => T,
  partial: boolean,
): Promise<T> {
  const files = await fetchPretrained(source, options);
  const model = build(files.config);
  try {
    const prefix = partial ? detectPrefix(model, files.weights) : '';
    loadStateDict(model, files.weights, files.layout, { prefix, partial });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}
