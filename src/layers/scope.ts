/**
 * Parameters registered under their dotted state-dict key as the module tree is built, in the manner of a
 * prefix-scoped variable builder: `scope.child('encoder').child('layers').child(3).child('self_attn')` gives the
 * prefix `...encoder.layers.3.self_attn`, and every parameter created through it carries its full key. The key is
 * the only name the rest of the library uses (loading, saving, optimisers, tests).
 *
 * tfjs variable names are global to the engine, so each variable is named `clipseg<registry id>/<key>`; the
 * registry key stays the bare key.
 */
import * as tf from '@tensorflow/tfjs';
import { CheckpointKeyError, InvalidArgumentError, ShapeError } from '../errors.js';

/** How a parameter is drawn when a model is built without weights to load. */
export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; bound: number };

let nextRegistryId = 0;

export class Parameter {
  /** Dotted state-dict key, e.g. `clip.vision_model.encoder.layers.0.self_attn.q_proj.weight`. */
  readonly key: string;
  /** Shape in this library's (tfjs) layout. */
  readonly shape: readonly number[];
  readonly init: Init;
  private readonly variableName: string;
  private trainableFlag = true;
  private value: tf.Variable | undefined;

  constructor(key: string, shape: readonly number[], init: Init, variableName: string) {
    this.key = key;
    this.shape = shape;
    this.init = init;
    this.variableName = variableName;
  }

  get initialized(): boolean {
    return this.value !== undefined;
  }

  /** The variable; a model built with `initialize: false` has none until weights are loaded. */
  get variable(): tf.Variable {
    if (this.value === undefined) {
      throw new CheckpointKeyError(`parameter '${this.key}' has no value: load weights before running the model`);
    }
    return this.value;
  }

  get trainable(): boolean {
    return this.trainableFlag;
  }

  set trainable(flag: boolean) {
    this.trainableFlag = flag;
    if (this.value !== undefined) this.value.trainable = flag;
  }

  /** Sets the value from a float32 array in tfjs layout. */
  assign(data: Float32Array): void {
    if (data.length !== this.size) {
      throw new ShapeError(this.key, `${this.size} values for shape [${this.shape.join(', ')}]`, `${data.length} values`);
    }
    tf.tidy(() => this.assignTensor(tf.tensor(data, [...this.shape], 'float32')));
  }

  /** Sets the value from a tensor of this parameter's shape (the variable shares the tensor's data). */
  assignTensor(value: tf.Tensor): void {
    if (!tf.util.arraysEqual(value.shape, [...this.shape])) {
      throw new ShapeError(this.key, `[${this.shape.join(', ')}]`, value.shape);
    }
    if (this.value === undefined) {
      this.value = tf.variable(value, this.trainableFlag, this.variableName, 'float32');
    } else {
      this.value.assign(value);
    }
  }

  /** Draws the initial value from `init`; `seed` makes it reproducible. */
  initialize(seed: number): void {
    tf.tidy(() => this.assignTensor(drawInit(this.init, [...this.shape], seed)));
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  dispose(): void {
    this.value?.dispose();
    this.value = undefined;
  }
}

function drawInit(init: Init, shape: number[], seed: number): tf.Tensor {
  switch (init.kind) {
    case 'zeros':
      return tf.zeros(shape);
    case 'ones':
      return tf.ones(shape);
    case 'constant':
      return tf.fill(shape, init.value);
    case 'normal':
      return tf.randomNormal(shape, 0, init.std, 'float32', seed);
    case 'uniform':
      return tf.randomUniform(shape, -init.bound, init.bound, 'float32', seed);
  }
}

/** Owns every parameter of one model instance, in registration order. */
export class ParameterRegistry {
  readonly id = nextRegistryId++;
  private readonly byKey = new Map<string, Parameter>();

  root(prefix = ''): ParameterScope {
    return new ParameterScope(this, prefix);
  }

  register(key: string, shape: readonly number[], init: Init): Parameter {
    if (this.byKey.has(key)) throw new InvalidArgumentError(`parameter '${key}' is registered twice`);
    const parameter = new Parameter(key, Object.freeze([...shape]), init, `clipseg${this.id}/${key}`);
    this.byKey.set(key, parameter);
    return parameter;
  }

  parameters(): Parameter[] {
    return [...this.byKey.values()];
  }

  get(key: string): Parameter | undefined {
    return this.byKey.get(key);
  }

  /** Initialises every parameter that has no value yet; each gets its own seed derived from `seed`. */
  initialize(seed = 0): void {
    let index = 0;
    for (const parameter of this.byKey.values()) {
      if (!parameter.initialized) parameter.initialize(seed * 100_003 + index);
      index++;
    }
  }

  dispose(): void {
    for (const parameter of this.byKey.values()) parameter.dispose();
  }
}

/** A module's place in the tree: its dotted name and a factory for its parameters and children. */
export class ParameterScope {
  readonly registry: ParameterRegistry;
  /** The module's dotted name (empty for the root). */
  readonly name: string;

  constructor(registry: ParameterRegistry, name: string) {
    this.registry = registry;
    this.name = name;
  }

  child(name: string | number): ParameterScope {
    return new ParameterScope(this.registry, this.key(String(name)));
  }

  param(name: string, shape: readonly number[], init: Init): Parameter {
    return this.registry.register(this.key(name), shape, init);
  }

  private key(name: string): string {
    return this.name === '' ? name : `${this.name}.${name}`;
  }
}
