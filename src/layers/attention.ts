/**
 * Multi-head self-attention as transformers' `CLIPSegAttention` (eager path): separate q/k/v/out projections
 * with bias, softmax(q k^T * head_dim^-0.5 + mask) v, heads merged, out_proj.
 *
 * On tfjs-wasm a batched matMul over [B*H, T, Dh] runs 3 to 4 times slower than the same work as B*H plain 2-D
 * products once T is in the hundreds (vision and decoder: 485 tokens), so there the scores are computed per
 * (batch, head) from one transposed K per batch element. For short sequences (text prompts) the cost is per
 * operation instead, and one batched product is ~15 times faster (`benchmarks/probes/attention.ts`). Each head of
 * the per-head path is one op with its own gradient (`attention_head.ts`), whose backward transposes explicitly:
 * tfjs's own matMul gradient uses transposed-operand products, which the wasm kernel runs in a naive loop (a
 * full-fine-tuning step of a 96 px, patch-8 model took 1.4 s instead of 0.5-0.85 s), and differentiated op by op
 * the head left six [T, T] matrices alive until the backward pass ended.
 */
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from './context.js';
import { attendHead, headProbabilities } from './attention_head.js';
import { Linear } from './linear.js';
import { linearProduct } from './product.js';
import type { ParameterScope } from './scope.js';

/** Sequences up to this length use one batched product over all heads (measured crossover: 20 to 77 tokens). */
export const BATCHED_ATTENTION_MAX_TOKENS = 48;

export interface AttentionInit {
  /** Std of the q/k/v weights. */
  inProjStd: number;
  /** Std of the out_proj weight. */
  outProjStd: number;
}

export interface AttentionOutput {
  /** [B, T, D] */
  output: tf.Tensor;
  /** [B, H, T, T], the softmax probabilities; present when the context asks for attentions. */
  weights?: tf.Tensor;
}

export class Attention {
  readonly name: string;
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly scale: number;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly qProj: Linear;
  readonly outProj: Linear;

  constructor(scope: ParameterScope, embedDim: number, numHeads: number, init: AttentionInit) {
    this.name = scope.name;
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.scale = this.headDim ** -0.5;
    const inProj = { weightInit: { kind: 'normal', std: init.inProjStd } } as const;
    // Registration order follows the reference module (k, v, q, out), so saved files list keys the same way.
    this.kProj = new Linear(scope.child('k_proj'), embedDim, embedDim, inProj);
    this.vProj = new Linear(scope.child('v_proj'), embedDim, embedDim, inProj);
    this.qProj = new Linear(scope.child('q_proj'), embedDim, embedDim, inProj);
    this.outProj = new Linear(scope.child('out_proj'), embedDim, embedDim, {
      weightInit: { kind: 'normal', std: init.outProjStd },
    });
  }

  /**
   * x: [B, T, D]. `mask`: additive [B, T, T] (0 where allowed, a large negative value where not), or undefined.
   */
  forward(x: tf.Tensor, mask: tf.Tensor | undefined, ctx: ForwardContext): AttentionOutput {
    ctx.record(this.name, 'input', x);
    const [batch, tokens] = x.shape as [number, number, number];
    const wantWeights = ctx.outputAttentions || ctx.wants(this.name, 'attn_weights');
    // The scale is a power of two for every published head size (64, 16, 4), so scaling q before the product
    // gives the same floats as scaling the scores after it, on T*Dh values instead of T*T.
    const q = tf.mul(this.qProj.forward(x, ctx), this.scale);
    const k = this.kProj.forward(x, ctx);
    const v = this.vProj.forward(x, ctx);
    const { context, weights } =
      tokens <= BATCHED_ATTENTION_MAX_TOKENS
        ? this.batched(q, k, v, mask, batch, tokens)
        : this.perHead(q, k, v, mask, batch, tokens, wantWeights);
    const output = this.outProj.forward(context, ctx);
    ctx.record(this.name, 'output', output);
    if (!wantWeights) return { output };
    ctx.record(this.name, 'attn_weights', weights!);
    return { output, weights };
  }

  /** All heads in one batched product: [B*H, T, Dh] x [B*H, Dh, T]. */
  private batched(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, batch: number, tokens: number) {
    const { numHeads, headDim, embedDim } = this;
    // [B, T, D] -> [B, T, H, Dh] -> (perm) -> [B*H, ...]
    const split = (t: tf.Tensor, perm: number[], shape: number[]) => tf.transpose(t.reshape([batch, tokens, numHeads, headDim]), perm).reshape(shape);
    const qh = split(q, [0, 2, 1, 3], [batch * numHeads, tokens, headDim]) as tf.Tensor3D;
    const kT = split(k, [0, 2, 3, 1], [batch * numHeads, headDim, tokens]) as tf.Tensor3D;
    const vh = split(v, [0, 2, 1, 3], [batch * numHeads, tokens, headDim]) as tf.Tensor3D;
    // [B*H, T, T] -> [B, H, T, T]; the mask [B, T, T] -> [B, 1, T, T] is shared by the heads.
    let scores = tf.matMul(qh, kT).reshape([batch, numHeads, tokens, tokens]);
    if (mask !== undefined) scores = tf.add(scores, mask.reshape([batch, 1, tokens, tokens]));
    const weights = tf.softmax(scores);
    const heads = tf.matMul(weights.reshape([batch * numHeads, tokens, tokens]) as tf.Tensor3D, vh);
    // [B*H, T, Dh] -> [B, H, T, Dh] -> [B, T, H, Dh] -> [B, T, D]
    const context = tf.transpose(heads.reshape([batch, numHeads, tokens, headDim]), [0, 2, 1, 3]).reshape([batch, tokens, embedDim]);
    return { context, weights };
  }

  /**
   * One pair of 2-D products per (batch, head), from a single transposed K per batch element. The pieces come from
   * `tf.unstack` of a heads-first transpose: on tfjs-wasm a slice copies its whole input whatever it returns, and a
   * column block of [T, D] is then gathered in a JavaScript loop, while the rows of [H, T, Dh] are contiguous
   * copies (one heap-to-heap copy each with the `Unpack` of wasm_kernels.ts); the gradient of an unstack is one stack
   * where that of a slice pads each piece to the full size.
   */
  private perHead(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, batch: number, tokens: number, wantWeights: boolean) {
    const { numHeads, embedDim: dim } = this;
    const qs = rows(q, batch, tokens, dim);
    const ks = rows(k, batch, tokens, dim);
    const vs = rows(v, batch, tokens, dim);
    const masks = mask === undefined ? undefined : rows(mask, batch, tokens, tokens);
    const merged: tf.Tensor[] = [];
    const probabilities: tf.Tensor[] = [];
    for (let b = 0; b < batch; b++) {
      // Each element's scores die with its own scope: kept to the end of the layer, a batch of 32 at 485 tokens
      // held 0.7 GB of them, which with the rest of the layer outgrew the wasm backend's 4 GB.
      const [context, ...weights] = tf.tidy(() => this.element(qs[b]!, ks[b]!, vs[b]!, masks?.[b], tokens, wantWeights));
      merged.push(context!);
      probabilities.push(...weights);
    }
    // B x [T, D] -> [B, T, D]
    const context = batch === 1 ? merged[0]!.reshape([1, tokens, dim]) : tf.stack(merged);
    // B*H x [T, T] -> [B, H, T, T]
    const weights = wantWeights ? tf.stack(probabilities).reshape([batch, numHeads, tokens, tokens]) : undefined;
    return { context, weights };
  }

  /** One batch element: its context [T, D], then its H probability matrices [T, T] when `wantWeights`. */
  private element(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined, tokens: number, wantWeights: boolean): tf.Tensor[] {
    const { numHeads, headDim } = this;
    const qh = this.splitHeads(q, tokens);
    const vh = this.splitHeads(v, tokens);
    // [T, D] -> [D, T] -> [H, Dh, T]: head h's K^T
    const kT = tf.transpose(k);
    const kh = numHeads === 1 ? [kT] : tf.unstack(kT.reshape([numHeads, headDim, tokens]));
    const heads: tf.Tensor[] = [];
    const probabilities: tf.Tensor[] = [];
    for (let h = 0; h < numHeads; h++) {
      const [qs, ks, vs] = [qh[h] as tf.Tensor2D, kh[h] as tf.Tensor2D, vh[h] as tf.Tensor2D];
      if (wantWeights) {
        const p = headProbabilities(qs, ks, mask);
        probabilities.push(p);
        heads.push(linearProduct(p, vs));
      } else {
        heads.push(attendHead(qs, ks, vs, mask));
      }
    }
    // H x [T, Dh] -> [T, D]: concatenating along the feature axis merges the heads in order.
    return [numHeads === 1 ? heads[0]! : tf.concat(heads, 1), ...probabilities];
  }

  /** [T, D] -> H x [T, Dh]. */
  private splitHeads(x: tf.Tensor, tokens: number): tf.Tensor[] {
    if (this.numHeads === 1) return [x];
    // [T, D] -> [T, H, Dh] -> [H, T, Dh]
    return tf.unstack(tf.transpose(x.reshape([tokens, this.numHeads, this.headDim]), [1, 0, 2]));
  }
}

/** The B elements of a [B, R, C] tensor, each [R, C] (a free reshape when B is 1). */
function rows(t: tf.Tensor, batch: number, rowCount: number, cols: number): tf.Tensor[] {
  // [1, R, C] -> [R, C]
  if (batch === 1) return [t.reshape([rowCount, cols])];
  return tf.unstack(t);
}
