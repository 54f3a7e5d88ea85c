/**
 * AdamW with decoupled weight decay, following torch.optim.AdamW's single-tensor path (foreach=False) step by step:
 *   p <- p * (1 - lr * wd)
 *   m <- m + (1 - beta1) * (g - m)                  (torch `lerp_`)
 *   v <- v * beta2 + (1 - beta2) * g * g
 *   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * The bias corrections are computed in float64 from the integer step, as torch does when the step is not captured.
 * As in torch, a parameter without a gradient in a step is skipped entirely (no decay, no moment update) and its
 * own step count does not advance. Weight decay applies to tensors of rank >= 2 only (biases and norm weights are
 * exempt, as in nanoGPT).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, ShapeError, formatShape } from '../errors.js';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay for decayed parameters (default 0.01, torch's default). */
  weightDecay?: number;
  /** Which parameters decay; default: rank >= 2. */
  decays?: (key: string, variable: tf.Variable) => boolean;
}

/** The optimizer state as plain arrays, keyed by parameter key, for checkpoints. */
export interface AdamWState {
  /** Number of `applyGradients` calls. */
  step: number;
  /** Per-parameter step counts (torch's `state[p]['step']`); lower than `step` for parameters skipped at times. */
  steps: Map<string, number>;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

interface Slot {
  param: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  decay: boolean;
  step: number;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly slots = new Map<string, Slot>();
  private stepCount = 0;

  constructor(params: Iterable<[string, tf.Variable]>, options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    for (const [name, value] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(value >= 0 && value < 1)) throw new InvalidArgumentError(`${name}: expected a number in [0, 1), got ${value}`);
    }
    if (!(this.eps >= 0)) throw new InvalidArgumentError(`eps: expected a non-negative number, got ${this.eps}`);
    if (!(this.weightDecay >= 0)) {
      throw new InvalidArgumentError(`weightDecay: expected a non-negative number, got ${this.weightDecay}`);
    }
    const decays = options.decays ?? ((_key: string, variable: tf.Variable) => variable.rank >= 2);
    for (const [key, param] of params) {
      if (this.slots.has(key)) throw new InvalidArgumentError(`params: duplicate parameter key '${key}'`);
      this.slots.set(key, { param, m: zerosVariable(param), v: zerosVariable(param), decay: decays(key, param), step: 0 });
    }
  }

  /** Number of optimizer steps taken so far. */
  get step(): number {
    return this.stepCount;
  }

  /** Keys of the parameters this optimizer updates, in registration order. */
  keys(): string[] {
    return [...this.slots.keys()];
  }

  /** Whether the parameter `key` is in the weight-decay group. */
  decays(key: string): boolean {
    return this.slotFor(key).decay;
  }

  /**
   * Applies one update with learning rate `lr`. `grads` maps parameter keys to gradients; parameters without an
   * entry are skipped as torch skips parameters whose `.grad` is None. An unknown key is an error.
   */
  applyGradients(grads: Readonly<Record<string, tf.Tensor>>, lr: number): void {
    if (!(Number.isFinite(lr) && lr >= 0)) throw new InvalidArgumentError(`lr: expected a non-negative number, got ${lr}`);
    for (const [key, g] of Object.entries(grads)) {
      const slot = this.slots.get(key);
      if (slot === undefined) throw new InvalidArgumentError(`grads: '${key}' is not a parameter of this optimizer`);
      if (!tf.util.arraysEqual(g.shape, slot.param.shape)) {
        throw new ShapeError(`grads['${key}']`, formatShape(slot.param.shape), g.shape);
      }
    }
    for (const [key, slot] of this.slots) {
      const g = grads[key];
      if (g === undefined) continue;
      const t = slot.step + 1;
      const stepSize = lr / (1 - this.beta1 ** t);
      const bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
      tf.tidy(() => {
        const p = slot.decay && this.weightDecay > 0 ? slot.param.mul(1 - lr * this.weightDecay) : slot.param;
        const m = slot.m.add(g.sub(slot.m).mul(1 - this.beta1));
        const v = slot.v.mul(this.beta2).add(g.mul(g).mul(1 - this.beta2));
        const denom = v.sqrt().div(bc2Sqrt).add(this.eps);
        slot.param.assign(p.sub(m.div(denom).mul(stepSize)));
        slot.m.assign(m);
        slot.v.assign(v);
      });
      slot.step = t;
    }
    this.stepCount++;
  }

  /** A copy of the moments and step count. */
  getState(): AdamWState {
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    const steps = new Map<string, number>();
    for (const [key, slot] of this.slots) {
      m.set(key, slot.m.dataSync() as Float32Array);
      v.set(key, slot.v.dataSync() as Float32Array);
      steps.set(key, slot.step);
    }
    return { step: this.stepCount, steps, m, v };
  }

  /** Restores moments and step count saved by `getState`; every key must be present with the right size. */
  setState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new InvalidArgumentError(`state.step: expected a non-negative integer, got ${state.step}`);
    }
    for (const [key, slot] of this.slots) {
      const step = state.steps.get(key);
      if (step === undefined || !Number.isInteger(step) || step < 0 || step > state.step) {
        throw new InvalidArgumentError(`state.steps: expected a step count in [0, ${state.step}] for parameter '${key}', got ${step}`);
      }
      for (const [which, source] of [['m', state.m], ['v', state.v]] as const) {
        const values = source.get(key);
        if (values === undefined) throw new InvalidArgumentError(`state.${which}: no moment for parameter '${key}'`);
        if (values.length !== slot.param.size) {
          throw new ShapeError(`state.${which}['${key}']`, `${slot.param.size} values`, `${values.length} values`);
        }
      }
    }
    for (const [key, slot] of this.slots) {
      tf.tidy(() => {
        slot.m.assign(tf.tensor(state.m.get(key)!, slot.param.shape, 'float32'));
        slot.v.assign(tf.tensor(state.v.get(key)!, slot.param.shape, 'float32'));
      });
      slot.step = state.steps.get(key)!;
    }
    this.stepCount = state.step;
  }

  /** Releases the moment variables (the parameters belong to the model). */
  dispose(): void {
    for (const slot of this.slots.values()) {
      slot.m.dispose();
      slot.v.dispose();
    }
    this.slots.clear();
  }

  private slotFor(key: string): Slot {
    const slot = this.slots.get(key);
    if (slot === undefined) throw new InvalidArgumentError(`no parameter '${key}' in this optimizer`);
    return slot;
  }
}

function zerosVariable(like: tf.Tensor): tf.Variable {
  const zeros = tf.zerosLike(like);
  // The variable takes its own reference to the buffer, so the temporary can go.
  const variable = tf.variable(zeros, false);
  zeros.dispose();
  return variable;
}
