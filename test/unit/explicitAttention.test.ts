import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { expandMultiHeadAttention, withExplicitAttention } from '../../src/core/onnx/explicitAttention';
import { convertToFloat16Compute } from '../../src/core/onnx/float16';
import { GraphBuilder } from '../../src/core/onnx/graphBuilder';
import { maxAbsDiff } from '../helpers/fixtures';

const T = 37;
const H = 24;
const HEADS = 3;

/** Deterministic values in [-scale, scale). */
function values(n: number, scale: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/** Attention computed directly in float64: softmax(scale q k^T + bias) v per head, q/k/v with their packed bias added. */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, batch: number, scale: number, bias?: Float32Array, attentionBias?: Float32Array): Float32Array {
  const hd = H / HEADS;
  const out = new Float32Array(batch * T * H);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < HEADS; h++) {
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(T);
        for (let j = 0; j < T; j++) {
          let d = 0;
          for (let c = 0; c < hd; c++) {
            const qc = q[(b * T + i) * H + h * hd + c] + (bias?.[h * hd + c] ?? 0);
            const kc = k[(b * T + j) * H + h * hd + c] + (bias?.[H + h * hd + c] ?? 0);
            d += qc * kc;
          }
          s[j] = d * scale + (attentionBias?.[(h * T + i) * T + j] ?? 0);
        }
        const max = Math.max(...s);
        let sum = 0;
        for (let j = 0; j < T; j++) sum += (s[j] = Math.exp(s[j] - max));
        for (let c = 0; c < hd; c++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += (s[j] / sum) * (v[(b * T + j) * H + h * hd + c] + (bias?.[2 * H + h * hd + c] ?? 0));
          out[(b * T + i) * H + h * hd + c] = acc;
        }
      }
    }
  }
  return out;
}

interface Form {
  bias?: Float32Array;
  attentionBias?: Float32Array;
  /** undefined: the op's default, 1/sqrt(head size). */
  scale?: number;
  extraAttribute?: boolean;
  padding?: boolean;
}

function mhaGraph(form: Form): Uint8Array {
  const g = new GraphBuilder('mha');
  const [q, k, v] = ['q', 'k', 'v'].map((n) => g.input(n, { elemType: 'float32', dims: ['batch', T, H] }));
  const inputs = [q, k, v, form.bias ? g.initializer('qkv_bias', form.bias, [3 * H]) : '', form.padding ? g.input('mask', { elemType: 'float32', dims: ['batch', T] }) /* never run: only the rewrite looks at it */ : '', form.attentionBias ? g.initializer('attention_bias', form.attentionBias, [1, HEADS, T, T]) : ''];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const attributes: Record<string, unknown> = { num_heads: HEADS };
  if (form.scale !== undefined) attributes.scale = { float: form.scale };
  if (form.extraAttribute) attributes.do_rotary = 1;
  const out = g.node('MultiHeadAttention', inputs, { domain: 'com.microsoft', attributes: attributes as never });
  g.output('out', out, { elemType: 'float32', dims: ['batch', T, H] });
  return g.encode({ opset: 17, msOpset: 1 });
}

/** Runs a q/k/v graph on the CPU provider (tests may use onnxruntime directly; src/core goes through ModelSession). */
async function run(bytes: Uint8Array, feeds: Record<string, Float32Array>, batch: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  try {
    const tensors = Object.fromEntries(Object.entries(feeds).map(([name, data]) => [name, new ort.Tensor('float32', data, [batch, T, H])]));
    return (await session.run(tensors)).out.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('MultiHeadAttention expanded to standard ops', () => {
  const batch = 2;
  const q = values(batch * T * H, 1.5, 1);
  const k = values(batch * T * H, 1.5, 2);
  const v = values(batch * T * H, 1, 3);
  const bias = values(3 * H, 0.5, 4);
  const attentionBias = values(HEADS * T * T, 2, 5);
  const forms: [string, Form, number][] = [
    ['packed bias, attention bias, scale 1 (what the converter emits)', { bias, attentionBias, scale: 1 }, 1],
    ['no bias, attention bias, scale 0.3', { attentionBias, scale: 0.3, bias: undefined }, 0.3],
    ['packed bias, default scale', { bias }, 1 / Math.sqrt(H / HEADS)],
    ['bare, scale 1', { scale: 1 }, 1],
  ];

  for (const [label, form, scale] of forms) {
    it(`${label}: same result as the fused node and as float64 attention`, async () => {
      const fused = mhaGraph(form);
      const expanded = withExplicitAttention(fused);
      assert.ok(expanded);
      const model = onnx.ModelProto.decode(expanded);
      assert.ok(!model.graph!.node!.some((n) => n.opType === 'MultiHeadAttention'));
      assert.ok(model.graph!.node!.every((n) => !n.domain));
      const feeds = { q, k, v };
      const want = reference(q, k, v, batch, scale, form.bias, form.attentionBias);
      const [a, b] = [await run(fused, feeds, batch), await run(expanded, feeds, batch)];
      assert.ok(maxAbsDiff(a, want) <= 1e-5, `fused vs float64 ${maxAbsDiff(a, want)}`);
      assert.ok(maxAbsDiff(b, want) <= 1e-5, `expanded vs float64 ${maxAbsDiff(b, want)}`);
    });
  }

  it('leaves other forms alone: a padding mask, an unknown attribute, a default scale without a bias to size it', () => {
    for (const form of [{ scale: 1, padding: true }, { scale: 1, extraAttribute: true }, {}] as Form[]) {
      assert.equal(withExplicitAttention(mhaGraph(form)), undefined);
      const model = onnx.ModelProto.decode(mhaGraph(form));
      assert.equal(expandMultiHeadAttention(model), 0);
    }
  });

  it('works on an fp16-compute graph (the scale constant is cast to the scores type)', async () => {
    const form = { bias, attentionBias, scale: 0.5 };
    const fp16 = convertToFloat16Compute(mhaGraph(form)).bytes;
    const expanded = withExplicitAttention(fp16);
    assert.ok(expanded);
    assert.ok(onnx.ModelProto.decode(expanded).graph!.node!.some((n) => n.opType === 'CastLike'));
    const want = reference(q, k, v, batch, 0.5, bias, attentionBias);
    const got = await run(expanded, { q, k, v }, batch);
    // fp16 inputs, weights and probabilities: ~u relative on values of size ~1 (u = 2^-11), through two products.
    assert.ok(maxAbsDiff(got, want) <= 2e-2, `fp16 expanded vs float64 ${maxAbsDiff(got, want)}`);
  });
});
