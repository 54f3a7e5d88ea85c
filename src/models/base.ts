/**
 * What every public model class shares: ownership of its parameters, the `namedParameters()` list that
 * loading, saving, optimisers and tests all use, trainability, and disposal.
 */
import type * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import { type Parameter, ParameterRegistry, type ParameterScope } from '../layers/scope.js';
import { hfShapeOf, type LayoutKind, layoutKindOf } from './layout.js';

export interface ModelOptions {
  /**
   * Draw initial values now, with transformers' init scheme (default), or leave parameters empty until weights
   * are loaded (what `fromPretrained` does, so that a large model is never held twice).
   */
  initialize?: boolean;
  /** Seed of the initial values. */
  seed?: number;
}

export interface NamedParameter {
  /** The state-dict key. */
  name: string;
  variable: tf.Variable;
  trainable: boolean;
  /** Shape in HF (PyTorch) layout. */
  hfShape: number[];
  /** How the tfjs layout differs from HF's (see `layout.ts`). */
  layout: LayoutKind;
}

/** Which parameters receive gradients: `decoder` (the CLIPSeg default: CLIP frozen), `all`, `none`, or a predicate on keys. */
export type TrainableSelection = 'decoder' | 'all' | 'none' | ((key: string) => boolean);

export abstract class PreTrainedModel {
  protected readonly scope: ParameterScope;
  private readonly ownsRegistry: boolean;

  /** `scope` is given when this model is part of a larger one (which then owns and disposes the parameters). */
  protected constructor(scope: ParameterScope | undefined) {
    this.ownsRegistry = scope === undefined;
    this.scope = scope ?? new ParameterRegistry().root();
  }

  /** Call at the end of the most-derived constructor, once every module exists. */
  protected finishConstruction(options: ModelOptions): void {
    if (this.ownsRegistry && options.initialize !== false) this.scope.registry.initialize(options.seed ?? 0);
  }

  /** This model's parameters, in registration order (the reference module order). */
  parameters(): Parameter[] {
    const prefix = this.scope.name === '' ? '' : `${this.scope.name}.`;
    return this.scope.registry.parameters().filter((p) => p.key.startsWith(prefix));
  }

  namedParameters(): NamedParameter[] {
    return this.parameters().map((p) => ({
      name: p.key,
      variable: p.variable,
      trainable: p.trainable,
      hfShape: hfShapeOf(p.key, p.shape),
      layout: layoutKindOf(p.key),
    }));
  }

  /** The variables that currently receive gradients, for an optimiser's `varList`. */
  trainableVariables(): tf.Variable[] {
    return this.parameters()
      .filter((p) => p.trainable)
      .map((p) => p.variable);
  }

  setTrainable(selection: TrainableSelection): void {
    let test: (key: string) => boolean;
    if (typeof selection === 'function') test = selection;
    else if (selection === 'all') test = () => true;
    else if (selection === 'none') test = () => false;
    else if (selection === 'decoder') test = (key) => key.startsWith('decoder.');
    else throw new InvalidArgumentError(`setTrainable: expected 'decoder', 'all', 'none' or a function, got ${JSON.stringify(selection)}`);
    for (const p of this.parameters()) p.trainable = test(p.key);
  }

  /** Releases the parameters (a model that is part of a larger one is released by its owner). */
  dispose(): void {
    if (this.ownsRegistry) this.scope.registry.dispose();
  }
}
