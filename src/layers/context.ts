/**
 * Per-call state threaded through every module's forward: which attention maps to return, and the activation
 * capture hooks. A module reports its input and output under its state-dict name (`ctx.record(name, ...)`); when
 * no capture pattern is set this costs one boolean test.
 *
 * Capture keys follow what a PyTorch forward hook on the module of that name would see: `<name>` is the output,
 * `<name>:input` the first positional input, and attention modules add `<name>:attn_weights` (the softmax
 * probabilities). Patterns are globs over dotted names: `*` matches within one segment, `**` across segments;
 * a pattern without `:` selects all three keys of a module, one with `:` must match the full key.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import { globToRegExp } from '../glob.js';

export type CaptureKind = 'output' | 'input' | 'attn_weights';

export interface ForwardContextOptions {
  capture?: readonly string[];
  outputAttentions?: boolean;
}

export class ForwardContext {
  readonly outputAttentions: boolean;
  /** Captured tensors, each an independent handle owned by the caller once the forward returns. */
  readonly captures: Record<string, tf.Tensor> = {};
  private readonly patterns: { regex: RegExp; fullKey: boolean }[];
  private readonly decisions = new Map<string, boolean>();

  constructor(options: ForwardContextOptions = {}) {
    this.outputAttentions = options.outputAttentions ?? false;
    this.patterns = (options.capture ?? []).map((pattern) => {
      if (typeof pattern !== 'string' || pattern.length === 0) {
        throw new InvalidArgumentError(`capture: expected non-empty glob strings, got ${JSON.stringify(pattern)}`);
      }
      return { regex: globToRegExp(pattern), fullKey: pattern.includes(':') };
    });
  }

  get capturing(): boolean {
    return this.patterns.length > 0;
  }

  /** Whether `<name>[:kind]` is selected by a capture pattern. */
  wants(name: string, kind: CaptureKind = 'output'): boolean {
    if (this.patterns.length === 0) return false;
    const key = captureKey(name, kind);
    let decision = this.decisions.get(key);
    if (decision === undefined) {
      decision = this.patterns.some((p) => p.regex.test(p.fullKey ? key : name));
      this.decisions.set(key, decision);
    }
    return decision;
  }

  /**
   * Keeps a copy of `tensor` if `<name>[:kind]` is selected. `channelsLast` marks a 4-D [N, H, W, C] tensor,
   * which is stored as [N, C, H, W], the layout the reference module sees.
   */
  record(name: string, kind: CaptureKind, tensor: tf.Tensor, channelsLast = false): void {
    if (!this.wants(name, kind)) return;
    const key = captureKey(name, kind);
    // A module that runs twice in one call (e.g. the vision tower on the image and on a visual prompt) keeps
    // its first capture; later ones are numbered.
    let unique = key;
    for (let i = 1; unique in this.captures; i++) unique = `${key}#${i}`;
    // [N, H, W, C] -> [N, C, H, W]
    const stored = channelsLast && tensor.rank === 4 ? tf.transpose(tensor, [0, 3, 1, 2]) : tensor.clone();
    this.captures[unique] = tf.keep(stored);
  }

  /** Runs a module body, recording its input and output under `name`. */
  module<T extends tf.Tensor>(name: string, input: tf.Tensor, body: () => T, channelsLast = false): T {
    this.record(name, 'input', input, channelsLast);
    const output = body();
    this.record(name, 'output', output, channelsLast);
    return output;
  }
}

export function captureKey(name: string, kind: CaptureKind): string {
  return kind === 'output' ? name : `${name}:${kind}`;
}
