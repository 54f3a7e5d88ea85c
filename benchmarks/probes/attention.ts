/**
 * Attention formulations on tfjs for one ViT-B/16 layer at 352x352 (485 tokens, 12 heads of 64): milliseconds per
 * call, the fastest of 7 after a warm-up (the minimum is the least disturbed by other load on the machine).
 * Usage: node --import tsx benchmarks/probes/attention.ts [wasm|cpu]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

const T = 485;
const D = 768;
const H = 12;
const Dh = D / H;

async function time(name: string, fn: () => tf.Tensor, runs = 7): Promise<void> {
  let best = Infinity;
  for (let i = 0; i <= runs; i++) {
    const start = performance.now();
    const y = tf.tidy(fn);
    await y.data();
    y.dispose();
    if (i > 0) best = Math.min(best, performance.now() - start);
  }
  console.log(`${name.padEnd(58)} ${best.toFixed(1)} ms`);
}

await tf.setBackend(process.argv[2] ?? 'wasm');
await tf.ready();
console.log(`backend ${tf.getBackend()}`);
const q = tf.randomNormal([T, D]);
const k = tf.randomNormal([T, D]);
const v = tf.randomNormal([T, D]);

// Per-head 2-D products on column slices of q and v, K^T sliced by rows.
await time('per head: column slices, one K^T, concat', () => {
  const kT = tf.transpose(k);
  const heads = [];
  for (let h = 0; h < H; h++) {
    const s = tf.matMul(tf.slice(q, [0, h * Dh], [T, Dh]), tf.slice(kT, [h * Dh, 0], [Dh, T]));
    heads.push(tf.matMul(tf.softmax(s), tf.slice(v, [0, h * Dh], [T, Dh])));
  }
  return tf.concat(heads, 1);
});

// Heads split by one transpose each, then contiguous first-axis slices.
await time('per head: [H, T, Dh] transposes, unstack, merge transpose', () => {
  // [T, D] -> [T, H, Dh] -> [H, T, Dh]
  const qh = tf.unstack(tf.transpose(q.reshape([T, H, Dh]), [1, 0, 2]));
  const vh = tf.unstack(tf.transpose(v.reshape([T, H, Dh]), [1, 0, 2]));
  // [T, D] -> [D, T] -> [H, Dh, T]
  const kT = tf.unstack(tf.transpose(k).reshape([H, Dh, T]));
  const heads = qh.map((qi, h) => tf.matMul(tf.softmax(tf.matMul(qi, kT[h]!)), vh[h]!));
  // [H, T, Dh] -> [T, H, Dh] -> [T, D]
  return tf.transpose(tf.stack(heads), [1, 0, 2]).reshape([T, D]);
});

await time('batched: [H, T, Dh] x [H, Dh, T]', () => {
  const qh = tf.transpose(q.reshape([T, H, Dh]), [1, 0, 2]);
  const vh = tf.transpose(v.reshape([T, H, Dh]), [1, 0, 2]);
  const kT = tf.transpose(k).reshape([H, Dh, T]);
  const p = tf.softmax(tf.matMul(qh, kT));
  return tf.transpose(tf.matMul(p, vh), [1, 0, 2]).reshape([T, D]);
});

await time('batched with transposeB', () => {
  const qh = tf.transpose(q.reshape([T, H, Dh]), [1, 0, 2]);
  const kh = tf.transpose(k.reshape([T, H, Dh]), [1, 0, 2]);
  const vh = tf.transpose(v.reshape([T, H, Dh]), [1, 0, 2]);
  const p = tf.softmax(tf.matMul(qh, kh, false, true));
  return tf.transpose(tf.matMul(p, vh), [1, 0, 2]).reshape([T, D]);
});

const w = tf.randomNormal([D, D]);
const bias = tf.randomNormal([D]);
await time('projection: matMul + add', () => tf.add(tf.matMul(q, w), bias));
await time('projection: fused matMul with bias', () => tf.fused.matMul({ a: q, b: w, bias }));
const w3 = tf.randomNormal([D, 3 * D]);
await time('q, k, v as one [D, 3D] product', () => tf.matMul(q, w3));
await time('concat of three [D, D] weights', () => tf.concat([w, w, w], 1));
const hidden = tf.randomNormal([T, 4 * D]);
await time('quick_gelu on [T, 4D]', () => tf.mul(hidden, tf.sigmoid(tf.mul(hidden, 1.702))));
await time('layer norm [T, D], explicit mean and variance', () => {
  const centered = tf.sub(q, tf.mean(q, -1, true));
  return tf.mul(centered, tf.rsqrt(tf.add(tf.mean(tf.square(centered), -1, true), 1e-5)));
});
await time('softmax of 12 x [T, T] stacked', () => tf.softmax(tf.randomNormal([H, T, T])));

// Text-sized attention: 8 prompts of 7 tokens, 8 heads of 64. Few, tiny products: per-op overhead dominates.
for (const [B, Tt] of [[8, 7], [8, 20], [2, 77], [1, 485]] as const) {
  const Ht = 8;
  const Dt = 512;
  const dh = Dt / Ht;
  const qt = tf.randomNormal([B, Tt, Dt]);
  const kt = tf.randomNormal([B, Tt, Dt]);
  const vt = tf.randomNormal([B, Tt, Dt]);
  await time(`B=${B} T=${Tt}: per (batch, head) 2-D products`, () => {
    const rows = [];
    for (let b = 0; b < B; b++) {
      const qb = tf.slice(qt, [b, 0, 0], [1, Tt, Dt]).reshape([Tt, Dt]);
      const kb = tf.transpose(tf.slice(kt, [b, 0, 0], [1, Tt, Dt]).reshape([Tt, Dt]));
      const vb = tf.slice(vt, [b, 0, 0], [1, Tt, Dt]).reshape([Tt, Dt]);
      const heads = [];
      for (let h = 0; h < Ht; h++) {
        const p = tf.softmax(tf.matMul(tf.slice(qb, [0, h * dh], [Tt, dh]), tf.slice(kb, [h * dh, 0], [dh, Tt])));
        heads.push(tf.matMul(p, tf.slice(vb, [0, h * dh], [Tt, dh])));
      }
      rows.push(tf.concat(heads, 1));
    }
    return tf.stack(rows);
  });
  await time(`B=${B} T=${Tt}: one batched product over B*H`, () => {
    // [B, T, D] -> [B, T, H, dh] -> [B, H, T, dh] -> [B*H, T, dh]
    const split = (x: tf.Tensor, perm: number[], shape: number[]) => tf.transpose(x.reshape([B, Tt, Ht, dh]), perm).reshape(shape);
    const p = tf.softmax(tf.matMul(split(qt, [0, 2, 1, 3], [B * Ht, Tt, dh]), split(kt, [0, 2, 3, 1], [B * Ht, dh, Tt])));
    const context = tf.matMul(p, split(vt, [0, 2, 1, 3], [B * Ht, Tt, dh]));
    // [B*H, T, dh] -> [B, H, T, dh] -> [B, T, H, dh] -> [B, T, D]
    return tf.transpose(context.reshape([B, Ht, Tt, dh]), [0, 2, 1, 3]).reshape([B, Tt, Dt]);
  });
}

// The per-head path in training: the decoder's attention at batch 8 (485 tokens, 4 heads of 16), forward and
// backward, with the rows and heads taken by tf.slice or by tf.unstack of a heads-first transpose. A slice's
// gradient pads each piece back to the full input size; an unstack's is one stack.
{
  const B = 8;
  const Hd = 4;
  const Dd = 64;
  const dh = Dd / Hd;
  const qd = tf.randomNormal([B, T, Dd]);
  const kd = tf.randomNormal([B, T, Dd]);
  const vd = tf.randomNormal([B, T, Dd]);
  const attend = (qh: tf.Tensor[], kh: tf.Tensor[], vh: tf.Tensor[]) =>
    tf.concat(qh.map((qi, h) => tf.matMul(tf.softmax(tf.matMul(qi as tf.Tensor2D, kh[h] as tf.Tensor2D)), vh[h] as tf.Tensor2D)), 1);
  const bySlices = (q3: tf.Tensor, k3: tf.Tensor, v3: tf.Tensor) =>
    tf.stack(
      Array.from({ length: B }, (_, b) => {
        // [B, T, D] -> [T, D]
        const row = (t: tf.Tensor) => tf.slice(t, [b, 0, 0], [1, T, Dd]).reshape([T, Dd]);
        const [qb, vb] = [row(q3), row(v3)];
        const kT = tf.transpose(row(k3));
        const heads = (t: tf.Tensor) => Array.from({ length: Hd }, (_, h) => tf.slice(t, [0, h * dh], [T, dh]));
        return attend(heads(qb), Array.from({ length: Hd }, (_, h) => tf.slice(kT, [h * dh, 0], [dh, T])), heads(vb));
      }),
    );
  const byUnstack = (q3: tf.Tensor, k3: tf.Tensor, v3: tf.Tensor) => {
    const [qs, ks, vs] = [tf.unstack(q3), tf.unstack(k3), tf.unstack(v3)];
    // [T, D] -> [T, H, dh] -> [H, T, dh]
    const heads = (t: tf.Tensor) => tf.unstack(tf.transpose(t.reshape([T, Hd, dh]), [1, 0, 2]));
    // [T, D] -> [D, T] -> [H, dh, T]
    return tf.stack(qs.map((qb, b) => attend(heads(qb), tf.unstack(tf.transpose(ks[b]!).reshape([Hd, dh, T])), heads(vs[b]!))));
  };
  for (const [name, f] of [['tf.slice rows and heads', bySlices], ['tf.unstack rows and heads', byUnstack]] as const) {
    await time(`B=${B} decoder attention forward+backward: ${name}`, () => {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(f(a, b, c))))([qd, kd, vd]);
      return tf.concat(grads.map((g) => g.flatten()));
    });
  }
}
