/** The building blocks against float64 references computed here: Linear, LayerNorm, activations, attention, embeddings; plus scopes and capture patterns. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { CheckpointKeyError, ConfigError, InvalidArgumentError, ShapeError } from '../src/errors.js';
import { activationByName, gelu, geluTanh, quickGelu, type Activation } from '../src/layers/activations.js';
import { Attention, BATCHED_ATTENTION_MAX_TOKENS } from '../src/layers/attention.js';
import { attendHead } from '../src/layers/attention_head.js';
import { ForwardContext } from '../src/layers/context.js';
import { Embedding } from '../src/layers/embedding.js';
import { LayerNorm } from '../src/layers/layer_norm.js';
import { Linear } from '../src/layers/linear.js';
import { MLP } from '../src/layers/mlp.js';
import { ParameterRegistry } from '../src/layers/scope.js';
import { assertClose } from './helpers/assert_close.js';
import { TEST_BACKENDS, useBackend } from './helpers/backends.js';

const values = (t: tf.Tensor) => Array.from(t.dataSync());

for (const backend of TEST_BACKENDS) {
  describe(`layers against float64 references (${backend})`, () => {
    test('Linear: x W + b over any leading shape', async () => {
      await useBackend(backend);
      const registry = new ParameterRegistry();
      const linear = new Linear(registry.root('proj'), 4, 3);
      registry.initialize(1);
      const x = tf.randomNormal([2, 5, 4], 0, 1, 'float32', 2);
      const y = tf.tidy(() => linear.forward(x, new ForwardContext()));
      assert.deepEqual(y.shape, [2, 5, 3]);
      const [xs, w, b] = [values(x), values(linear.weight.variable), values(linear.bias!.variable)];
      const expected = Array.from({ length: 10 * 3 }, (_, i) => {
        const [row, col] = [Math.floor(i / 3), i % 3];
        let s = b[col]!;
        for (let k = 0; k < 4; k++) s += xs[row * 4 + k]! * w[k * 3 + col]!;
        return s;
      });
      assertClose(y, expected, 'linear', { atol: 1e-5 });
      tf.dispose([x, y]);
      registry.dispose();
    });

    test('LayerNorm: biased variance, eps inside the root, affine', async () => {
      await useBackend(backend);
      const registry = new ParameterRegistry();
      const norm = new LayerNorm(registry.root('ln'), 6, 1e-5);
      registry.initialize();
      norm.weight.assign(Float32Array.from([1, 2, 0.5, -1, 3, 1]));
      norm.bias.assign(Float32Array.from([0, 1, 0, 0.5, 0, -2]));
      const rows = [[1, 2, 3, 4, 5, 6], [0.001, 0.002, -0.001, 0, 0.0005, 0.003]];
      const x = tf.tensor2d(rows);
      const y = tf.tidy(() => norm.forward(x, new ForwardContext()));
      const w = [1, 2, 0.5, -1, 3, 1];
      const b = [0, 1, 0, 0.5, 0, -2];
      const expected = rows.flatMap((r) => {
        const mean = r.reduce((a, v) => a + v, 0) / r.length;
        const variance = r.reduce((a, v) => a + (v - mean) ** 2, 0) / r.length;
        return r.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * w[i]! + b[i]!);
      });
      assertClose(y, expected, 'layer norm', { atol: 1e-5 });
      tf.dispose([x, y]);
      registry.dispose();
    });

    test('activations', async () => {
      await useBackend(backend);
      const xs = [-3, -1, -0.25, 0, 0.5, 1, 2.5];
      const x = tf.tensor1d(xs);
      const erf = (v: number) => {
        // The Maclaurin series of erf, exact to double precision for |v| <= 3 with 60 terms.
        let sum = 0;
        let term = v;
        for (let n = 0; n < 60; n++) {
          sum += term / (2 * n + 1);
          term *= (-v * v) / (n + 1);
        }
        return (2 / Math.sqrt(Math.PI)) * sum;
      };
      const check = (name: string, fn: (t: tf.Tensor) => tf.Tensor, ref: (v: number) => number) => {
        const y = tf.tidy(() => fn(x));
        assertClose(y, xs.map(ref), name, { atol: 2e-6 });
        y.dispose();
      };
      // Each activation's value, its derivative and the gradient tfjs takes through it. A smooth derivative is
      // checked against a central difference of the float64 reference (error O(eps^2)); relu's is PyTorch's step,
      // 0 at 0.
      const sig = (v: number) => 1 / (1 + Math.exp(-1.702 * v));
      const references: [Activation, (v: number) => number, ((v: number) => number)?][] = [
        [quickGelu, (v) => v * sig(v)],
        [gelu, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))],
        [geluTanh, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))],
        [activationByName('relu'), (v) => Math.max(v, 0), (v) => (v > 0 ? 1 : 0)],
      ];
      const eps = 1e-5;
      for (const [activation, ref, slope] of references) {
        const derivative = slope ?? ((v: number) => (ref(v + eps) - ref(v - eps)) / (2 * eps));
        check(activation.name, activation.apply, ref);
        check(`the derivative of ${activation.name}`, activation.derivative, derivative);
        check(`the gradient through ${activation.name}`, (t) => tf.grad(activation.apply)(t), derivative);
      }
      assert.equal(activationByName('gelu_pytorch_tanh'), geluTanh);
      assert.throws(() => activationByName('swish'), (e: unknown) => e instanceof ConfigError && /hidden_act: expected one of quick_gelu, relu, gelu, gelu_new, gelu_pytorch_tanh, got 'swish'/.test(e.message));
      x.dispose();
    });

    for (const T of [5, BATCHED_ATTENTION_MAX_TOKENS + 2]) {
      test(`Attention (${T} tokens, ${T <= BATCHED_ATTENTION_MAX_TOKENS ? 'batched' : 'per-head'} path): softmax(q k^T / sqrt(d) + mask) v per head, heads merged in order`, async () => {
        await useBackend(backend);
        const registry = new ParameterRegistry();
        const [B, D, H] = [2, 8, 2];
        const attention = new Attention(registry.root('self_attn'), D, H, { inProjStd: 0.5, outProjStd: 0.5 });
        registry.initialize(3);
        const x = tf.randomNormal([B, T, D], 0, 1, 'float32', 4);
        const maskValues = new Float32Array(B * T * T);
        for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) if (j > i) maskValues[(b * T + i) * T + j] = -1e9;
        const mask = tf.tensor3d(maskValues, [B, T, T]);
        const out = tf.tidy(() => attention.forward(x, mask, new ForwardContext({ outputAttentions: true })) as unknown as tf.TensorContainer) as unknown as { output: tf.Tensor; weights: tf.Tensor };
        assert.deepEqual(out.weights.shape, [B, H, T, T]);

        const project = (lin: Linear, rows: number[]) => {
          const w = values(lin.weight.variable);
          const bias = values(lin.bias!.variable);
          return Array.from({ length: B * T * D }, (_, i) => {
            const [r, c] = [Math.floor(i / D), i % D];
            let s = bias[c]!;
            for (let k = 0; k < D; k++) s += rows[r * D + k]! * w[k * D + c]!;
            return s;
          });
        };
        const xs = values(x);
        const [q, k, v] = [project(attention.qProj, xs), project(attention.kProj, xs), project(attention.vProj, xs)];
        const dh = D / H;
        const context = new Array<number>(B * T * D).fill(0);
        const probs: number[] = [];
        for (let b = 0; b < B; b++) {
          for (let h = 0; h < H; h++) {
            for (let i = 0; i < T; i++) {
              const scores = Array.from({ length: T }, (_, j) => {
                let s = 0;
                for (let d = 0; d < dh; d++) s += q[(b * T + i) * D + h * dh + d]! * k[(b * T + j) * D + h * dh + d]!;
                return s / Math.sqrt(dh) + maskValues[(b * T + i) * T + j]!;
              });
              const max = Math.max(...scores);
              const e = scores.map((s) => Math.exp(s - max));
              const sum = e.reduce((a, c) => a + c, 0);
              e.forEach((p, j) => {
                probs.push(p / sum);
                for (let d = 0; d < dh; d++) context[(b * T + i) * D + h * dh + d] += (p / sum) * v[(b * T + j) * D + h * dh + d]!;
              });
            }
          }
        }
        assertClose(out.weights, probs, 'attention weights', { atol: 1e-5 });
        const expected = project(attention.outProj, context);
        assertClose(out.output, expected, 'attention output', { atol: 1e-4 });

        // Without weights the per-head path has its own gradient; both paths must give the same output and gradients.
        const r = tf.randomNormal([B, T, D], 0, 1, 'float32', 5);
        const run = (outputAttentions: boolean) =>
          tf.variableGrads(() => tf.sum(tf.mul(attention.forward(x, mask, new ForwardContext({ outputAttentions })).output, r)));
        const plain = tf.tidy(() => attention.forward(x, mask, new ForwardContext()).output);
        assertClose(plain, expected, 'attention output without weights', { atol: 1e-4 });
        const [own, composed] = [run(false), run(true)];
        assert.equal(Object.keys(own.grads).length, 8);
        for (const name of Object.keys(composed.grads)) {
          assertClose(own.grads[name]!, values(composed.grads[name]!), `d/d${name}`, { atol: 1e-4, rtol: 1e-4 });
        }
        tf.dispose([x, mask, r, plain, out.output, out.weights, own.value, composed.value, ...Object.values(own.grads), ...Object.values(composed.grads)]);
        registry.dispose();
      });
    }

    test('attendHead: gradients of a peaked head under a small upstream gradient (the subnormal range) equal float64 ones', async () => {
      await useBackend(backend);
      const before = tf.memory().numTensors;
      const [T, Dh] = [40, 4];
      // Scores of standard deviation 50 leave many probabilities below 1e-30 but not all zero; an upstream gradient
      // of 1e-9 puts their products with it below float32's smallest normal number.
      const q = tf.randomNormal([T, Dh], 0, 5, 'float32', 11) as tf.Tensor2D;
      const kT = tf.randomNormal([Dh, T], 0, 5, 'float32', 12) as tf.Tensor2D;
      const v = tf.randomNormal([T, Dh], 0, 1, 'float32', 13) as tf.Tensor2D;
      const r = tf.randomNormal([T, Dh], 0, 1e-9, 'float32', 14);
      const [dq, dkT, dv] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(attendHead(a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor2D, undefined), r)))([q, kT, v]);
      const [qs, ks, vs, dy] = [values(q), values(kT), values(v), values(r)];
      const p = Array.from({ length: T }, (_, i) => {
        const s = Array.from({ length: T }, (_, j) => {
          let acc = 0;
          for (let d = 0; d < Dh; d++) acc += qs[i * Dh + d]! * ks[d * T + j]!;
          return acc;
        });
        const max = Math.max(...s);
        const e = s.map((x) => Math.exp(x - max));
        const sum = e.reduce((a, c) => a + c, 0);
        return e.map((x) => x / sum);
      });
      const tiny = p.flat().filter((x) => x > 0 && x < 1e-30).length;
      assert.ok(tiny > T, `${tiny} probabilities in (0, 1e-30): the head is peaked enough`);
      // dP = dy v^T; dS = P * (dP - rowsum(dP * P)); dq = dS k; dkT = q^T dS; dv = P^T dy.
      const dp = p.map((_, i) => Array.from({ length: T }, (_, j) => {
        let acc = 0;
        for (let d = 0; d < Dh; d++) acc += dy[i * Dh + d]! * vs[j * Dh + d]!;
        return acc;
      }));
      const ds = p.map((row, i) => {
        const c = row.reduce((a, x, j) => a + x * dp[i]![j]!, 0);
        return row.map((x, j) => x * (dp[i]![j]! - c));
      });
      const wantDq = Array.from({ length: T * Dh }, (_, n) => {
        const [i, d] = [Math.floor(n / Dh), n % Dh];
        return ds[i]!.reduce((a, x, j) => a + x * ks[d * T + j]!, 0);
      });
      const wantDkT = Array.from({ length: Dh * T }, (_, n) => {
        const [d, j] = [Math.floor(n / T), n % T];
        return ds.reduce((a, row, i) => a + qs[i * Dh + d]! * row[j]!, 0);
      });
      const wantDv = Array.from({ length: T * Dh }, (_, n) => {
        const [j, d] = [Math.floor(n / Dh), n % Dh];
        return p.reduce((a, row, i) => a + row[j]! * dy[i * Dh + d]!, 0);
      });
      for (const [name, got, want] of [['dq', dq, wantDq], ['dkT', dkT, wantDkT], ['dv', dv, wantDv]] as const) {
        const scale = Math.max(...want.map(Math.abs));
        assert.ok(scale > 0 && scale < 1e-6, `${name}: gradients of the upstream's size (${scale})`);
        assertClose(got!, want, name, { atol: 1e-4 * scale, rtol: 1e-3 });
      }
      tf.dispose([q, kT, v, r, dq!, dkT!, dv!]);
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    });

    test('MLP: run as one op, the same output and gradients as layer by layer (which a capture inside it selects), no tensor left', async () => {
      await useBackend(backend);
      for (const activation of [quickGelu, gelu, geluTanh, activationByName('relu')]) {
        const before = tf.memory().numTensors;
        const registry = new ParameterRegistry();
        const mlp = new MLP(registry.root('mlp'), 6, 24, activation, { fc1Std: 0.5, fc2Std: 0.5 });
        registry.initialize(7);
        const x = tf.tidy(() => tf.variable(tf.randomNormal([2, 5, 6], 0, 1, 'float32', 8), true, `mlp_input_${backend}_${activation.name}`));
        const r = tf.randomNormal([2, 5, 6], 0, 1, 'float32', 9);
        const run = (ctx: ForwardContext) => tf.variableGrads(() => tf.sum(tf.mul(mlp.forward(x, ctx), r)));
        const layered = new ForwardContext({ capture: ['mlp.fc1'] });
        const [fused, stepwise] = [run(new ForwardContext()), run(layered)];
        // The capture proves the second run went layer by layer.
        assert.deepEqual(Object.keys(layered.captures), ['mlp.fc1:input', 'mlp.fc1']);
        assert.deepEqual(values(fused.value), values(stepwise.value), `${activation.name}: the same floats`);
        const parameters = [mlp.fc1.weight, mlp.fc1.bias!, mlp.fc2.weight, mlp.fc2.bias!].map((p) => p.variable.name);
        assert.deepEqual(Object.keys(fused.grads).sort(), [x.name, ...parameters].sort());
        for (const name of Object.keys(stepwise.grads)) {
          assertClose(fused.grads[name]!, values(stepwise.grads[name]!), `${activation.name}: d/d${name}`, { atol: 1e-6, rtol: 1e-5 });
        }
        tf.dispose([x, r, fused.value, stepwise.value, ...Object.values(fused.grads), ...Object.values(stepwise.grads), ...Object.values(layered.captures)]);
        registry.dispose();
        assert.equal(tf.memory().numTensors, before, `${activation.name}: no tensor left behind`);
      }
    });

    test('Embedding: rows by id, and a scatter-add gradient (repeated ids accumulate)', async () => {
      await useBackend(backend);
      const registry = new ParameterRegistry();
      const embedding = new Embedding(registry.root('token_embedding'), 5, 3, { kind: 'normal', std: 1 });
      registry.initialize(5);
      const ids = tf.tensor2d([[1, 4, 1], [0, 1, 2]], [2, 3], 'int32');
      const table = values(embedding.weight.variable);
      const y = tf.tidy(() => embedding.forward(ids, new ForwardContext()));
      assertClose(y, [1, 4, 1, 0, 1, 2].flatMap((id) => table.slice(id * 3, id * 3 + 3)), 'lookup', { atol: 0 });
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(embedding.forward(ids, new ForwardContext()), tf.range(1, 19).reshape([2, 3, 3]))) as tf.Scalar, [embedding.weight.variable]);
      // Row 1 is used at flat positions 0, 2 and 4, whose upstream gradients are [1,2,3], [7,8,9], [13,14,15].
      assertClose(grads[embedding.weight.variable.name]!, [10, 11, 12, 21, 24, 27, 16, 17, 18, 0, 0, 0, 4, 5, 6], 'gradient', { atol: 0 });
      tf.dispose([ids, y, value, ...Object.values(grads)]);
      registry.dispose();
    });
  });
}

describe('parameter scopes', () => {
  test('keys follow the module path; variables get unique engine names; trainability reaches the variable', async () => {
    await useBackend('cpu');
    const registry = new ParameterRegistry();
    const layer = registry.root().child('clip').child('encoder').child('layers').child(3);
    const p = layer.child('mlp').child('fc1').param('weight', [2, 2], { kind: 'zeros' });
    assert.equal(p.key, 'clip.encoder.layers.3.mlp.fc1.weight');
    assert.equal(layer.name, 'clip.encoder.layers.3');
    assert.throws(() => p.variable, (e: unknown) => e instanceof CheckpointKeyError && /parameter 'clip\.encoder\.layers\.3\.mlp\.fc1\.weight' has no value/.test(e.message));
    registry.initialize();
    assert.equal(p.variable.name, `clipseg${registry.id}/clip.encoder.layers.3.mlp.fc1.weight`);
    p.trainable = false;
    assert.equal(p.variable.trainable, false);
    assert.throws(() => layer.child('mlp').child('fc1').param('weight', [1], { kind: 'zeros' }), (e: unknown) => e instanceof InvalidArgumentError && /registered twice/.test(e.message));
    assert.throws(() => p.assign(new Float32Array(3)), (e: unknown) => e instanceof ShapeError && /expected 4 values for shape \[2, 2\], got 3 values/.test(e.message));
    const before = tf.memory().numTensors;
    p.assign(Float32Array.from([1, 2, 3, 4]));
    assert.equal(tf.memory().numTensors, before, 'assigning replaces the value without new live tensors');
    assert.deepEqual(values(p.variable), [1, 2, 3, 4]);
    registry.dispose();
    assert.equal(tf.memory().numTensors, before - 1);
  });
});

describe('capture patterns', () => {
  const ctx = new ForwardContext({ capture: ['clip.vision_model.encoder.layers.*', 'decoder.**.self_attn:attn_weights', '*.film_mul:input', 'decoder.layers.?'] });
  const cases: [string, 'output' | 'input' | 'attn_weights', boolean][] = [
    ['clip.vision_model.encoder.layers.3', 'output', true],
    ['clip.vision_model.encoder.layers.3', 'input', true],
    ['clip.vision_model.encoder.layers.3.mlp', 'output', false],
    ['decoder.layers.1.self_attn', 'attn_weights', true],
    ['decoder.layers.1.self_attn', 'output', false],
    ['decoder.film_mul', 'input', true],
    ['decoder.film_mul', 'output', false],
    ['decoder.layers.2', 'output', true],
    ['decoder.layers.12', 'output', false],
  ];
  for (const [name, kind, expected] of cases) {
    test(`${name}:${kind} ${expected ? 'is' : 'is not'} selected`, () => assert.equal(ctx.wants(name, kind), expected));
  }

  test('a module recorded twice keeps both, numbered', async () => {
    await useBackend('cpu');
    const c = new ForwardContext({ capture: ['a'] });
    const t = tf.scalar(1);
    c.record('a', 'output', t);
    c.record('a', 'output', t);
    assert.deepEqual(Object.keys(c.captures), ['a', 'a#1']);
    assert.equal(new ForwardContext().capturing, false);
    tf.dispose([t, ...Object.values(c.captures)]);
  });
});
