/**
 * Timing for the probes: variants run in interleaved rounds (A, B, C, A, B, C, ...) so that a machine whose load
 * changes during the probe shifts every variant alike; the median of each variant's rounds is reported.
 */
import * as tf from '@tensorflow/tfjs';

export interface Variant {
  name: string;
  /** Builds the result inside a tidy; the probe downloads it (so the time includes the work) and disposes it. */
  run: () => tf.Tensor;
}

export interface VariantTiming {
  name: string;
  median_ms: number;
  min_ms: number;
}

export async function timeInterleaved(variants: readonly Variant[], rounds: number, warmup = 1): Promise<VariantTiming[]> {
  const samples = variants.map(() => [] as number[]);
  for (let round = 0; round < warmup + rounds; round++) {
    for (const [i, variant] of variants.entries()) {
      const start = performance.now();
      const y = tf.tidy(variant.run);
      await y.data();
      y.dispose();
      if (round >= warmup) samples[i]!.push(performance.now() - start);
    }
  }
  return variants.map((v, i) => {
    const sorted = samples[i]!.sort((a, b) => a - b);
    return { name: v.name, median_ms: sorted[sorted.length >> 1]!, min_ms: sorted[0]! };
  });
}

/** Largest absolute difference between two tensors' values, to show that variants compute the same thing. */
export async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const value = (await d.data())[0]!;
  d.dispose();
  return value;
}
