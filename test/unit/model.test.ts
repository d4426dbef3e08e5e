import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ModelSession } from '../../src/core/backend/onnxRuntime';
import { BeitModel } from '../../src/core/beitModel';
import { BEIT_FLOAT16_OPTIONS } from '../../src/core/convert';
import { loadBeitConfig } from '../../src/core/modelConfig';
import { buildBeitGraph, BeitGraphOptions, WeightType } from '../../src/core/onnx/beitGraph';
import { convertToFloat16Compute } from '../../src/core/onnx/float16';
import { relativePositionIndex } from '../../src/core/models/beit/relativePosition';
import { patchArgmax, topKPredictions } from '../../src/core/predictions';
import { attentionRollout } from '../../src/core/rollout';
import { getFloat, loadStateDict } from '../../src/core/weights/stateDict';
import { convertedTinyModel, expected, FIXTURE_DIR, FIXTURE_IMAGES, hfFolderWith, maxAbsDiff, rawPixelValues } from '../helpers/fixtures';

const T = 197;

/** weightType fp16 builds the fp32 graph and converts it to fp16 compute, as `convert --dtype fp16` does. */
async function runGraph(weightsFile: 'model.safetensors' | 'pytorch_model.bin', options: Omit<BeitGraphOptions, 'debugOutputs' | 'weightType'> & { weightType: WeightType }) {
  const dir = await hfFolderWith(weightsFile);
  const config = await loadBeitConfig(path.join(dir, 'config.json'));
  const { stateDict, source } = await loadStateDict(dir);
  const fp32 = buildBeitGraph(config, (n, s) => getFloat(stateDict, n, s, source), { ...options, weightType: options.weightType === 'int8' ? 'int8' : 'fp32', debugOutputs: true });
  const bytes = options.weightType === 'fp16' ? convertToFloat16Compute(fp32, BEIT_FLOAT16_OPTIONS).bytes : fp32;
  const session = await ModelSession.create(bytes, { provider: 'cpu' });
  const outputs = await session.run(rawPixelValues(), [1, 3, 224, 224], session.outputNames);
  await session.release();
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.data]));
}

/** Checks attention probabilities of every layer and head against the reference's summaries. */
function checkAttentions(att: Float32Array, reference: { heads: Record<string, number | number[]>[] }[], tol: number): void {
  reference.forEach((layer, l) => {
    layer.heads.forEach((ref, h) => {
      const plane = (l * 4 + h) * T * T;
      const cls = att.subarray(plane, plane + T);
      const patch0 = att.subarray(plane + T, plane + 2 * T);
      assert.ok(maxAbsDiff(cls.subarray(0, 8), ref.cls_row_first8 as number[]) <= tol, `layer ${l} head ${h} cls row`);
      assert.ok(maxAbsDiff(patch0.subarray(0, 8), ref.patch0_row_first8 as number[]) <= tol, `layer ${l} head ${h} patch0 row`);
      assert.equal(cls.indexOf(Math.max(...cls)), ref.cls_row_argmax);
      assert.ok(Math.abs(Math.max(...cls) - (ref.cls_row_max as number)) <= tol);
      let diag = 0;
      let max = 0;
      for (let i = 0; i < T; i++) diag += att[plane + i * T + i] / T;
      for (let i = 0; i < T * T; i++) max = Math.max(max, att[plane + i]);
      assert.ok(Math.abs(diag - (ref.diag_mean as number)) <= tol, `layer ${l} head ${h} diag mean`);
      assert.ok(Math.abs(max - (ref.max as number)) <= tol, `layer ${l} head ${h} max`);
    });
  });
}

for (const weightsFile of ['model.safetensors', 'pytorch_model.bin'] as const) {
  for (const style of ['optimized', 'plain'] as const) {
    describe(`model from ${weightsFile} (${style} graph) on pixel_values_0.bin`, () => {
      it('matches the PyTorch reference: logits, pooled output, hidden states, attentions, patch grid, rollout', async () => {
        const out = await runGraph(weightsFile, { outputs: 'full', style, weightType: 'fp32' });
        const raw = expected.raw_input_check;
        assert.ok(maxAbsDiff(out.logits, raw.logits) <= 1e-4, `logits diff ${maxAbsDiff(out.logits, raw.logits)}`);
        assert.equal(out.logits.indexOf(Math.max(...out.logits)), raw.argmax);
        assert.ok(maxAbsDiff(out.pooled_output, raw.pooled_output) <= 1e-4);
        for (const hs of raw.hidden_states) {
          const base = hs.index * T * 32;
          const layer = out.hidden_states.subarray(base, base + T * 32);
          assert.ok(maxAbsDiff(layer.subarray(0, 8), hs.token0_first8) <= 1e-4, `hidden ${hs.index} token0`);
          assert.ok(maxAbsDiff(layer.subarray(32, 40), hs.token1_first8) <= 1e-4, `hidden ${hs.index} token1`);
          assert.ok(maxAbsDiff(layer.subarray(196 * 32, 196 * 32 + 8), hs.token196_first8) <= 1e-4, `hidden ${hs.index} token196`);
          const mean = layer.reduce((a, b) => a + b, 0) / layer.length;
          assert.ok(Math.abs(mean - hs.mean) <= 1e-4);
        }
        const image0 = expected.images[0];
        assert.equal(expected.raw_input_check.source_image, image0.file);
        assert.ok(maxAbsDiff(out.attentions.subarray(0, T), image0.attention_layer0_head0_cls_row) <= 1e-5);
        checkAttentions(out.attentions, image0.attentions, 1e-5);
        assert.deepEqual(Array.from(patchArgmax(out.patch_logits, 196, 10)), image0.per_patch.argmax_grid_14x14.flat());
        assert.ok(maxAbsDiff(out.patch_logits.subarray(0, 10), image0.per_patch.patch0_logits) <= 1e-4);
        const rollout = attentionRollout(out.attentions, { layers: 2, heads: 4, tokens: T, leadingTokens: 1 }, { headFusion: 'mean', discardRatio: 0.9 });
        assert.ok(maxAbsDiff(rollout, image0.attention_rollout.diagnostic_only_row_normalised_variant_14x14.flat()) <= 1e-3);
      });
    });
  }
}

describe('logits-only graphs', () => {
  it('the fused logits graph agrees with the reference within 1e-4', async () => {
    const out = await runGraph('model.safetensors', { outputs: 'logits', style: 'optimized', weightType: 'fp32' });
    assert.ok(maxAbsDiff(out.logits, expected.raw_input_check.logits) <= 1e-4);
  });

  it('fp16 weights stay within 5e-3 and int8 within 0.1 of the reference logits', async () => {
    const fp16 = await runGraph('model.safetensors', { outputs: 'logits', style: 'optimized', weightType: 'fp16' });
    const int8 = await runGraph('model.safetensors', { outputs: 'logits', style: 'optimized', weightType: 'int8' });
    const d16 = maxAbsDiff(fp16.logits, expected.raw_input_check.logits);
    const d8 = maxAbsDiff(int8.logits, expected.raw_input_check.logits);
    assert.ok(d16 > 0 && d16 <= 5e-3, `fp16 diff ${d16}`);
    assert.ok(d8 > 0 && d8 <= 0.1, `int8 diff ${d8}`);
  });
});

describe('relative position index', () => {
  it('follows the formula and equals the buffers stored in pytorch_model.bin', async () => {
    const index = relativePositionIndex(14);
    assert.equal(index[0], 731);
    assert.equal(index[5], 729);
    assert.equal(index[5 * T], 730);
    // patch (0,0) -> patch (13,13): (0 - 13 + 13) * 27 + (0 - 13 + 13) = 0
    assert.equal(index[1 * T + 196], 0);
    assert.equal(index[196 * T + 1], 26 * 27 + 26);
    const { stateDict } = await loadStateDict(await hfFolderWith('pytorch_model.bin'));
    const stored = stateDict.get('beit.encoder.layer.1.attention.attention.relative_position_bias.relative_position_index');
    assert.ok(stored);
    assert.deepEqual(Array.from(stored.data as BigInt64Array, Number), Array.from(index));
  });
});

describe('BeitModel end to end on the fixture images', () => {
  const cases: { file: string; entry: (img: any) => any; options: { applyExifOrientation: boolean } }[] = expected.images.map((img: any) => ({
    file: img.file,
    options: { applyExifOrientation: true },
    // Defaults follow HF pipelines: EXIF applied, 16-bit scaled to 8-bit.
    entry: (i: any) => i.variants?.exif_transposed ?? i.variants?.scaled_16bit_to_8bit ?? i,
  }));
  cases.push({ file: 'images/exif_orientation6_320x240.jpg', options: { applyExifOrientation: false }, entry: (i: any) => i });

  for (const c of cases) {
    it(`${c.file} (EXIF ${c.options.applyExifOrientation ? 'applied' : 'ignored'}) gives the reference logits and top-5`, async () => {
      const model = await BeitModel.load(await convertedTinyModel(), { preprocess: c.options });
      try {
        const ref = c.entry(expected.images.find((i: any) => i.file === c.file));
        const top = await model.classify(path.join(FIXTURE_DIR, c.file), 5);
        assert.deepEqual(top.map((p) => p.index), ref.top5.map((p: any) => p.index));
        assert.deepEqual(top.map((p) => p.label), ref.top5.map((p: any) => p.label));
        assert.ok(maxAbsDiff(top.map((p) => p.score), ref.top5.map((p: any) => p.prob)) <= 1e-5);
        const e = await model.explain(path.join(FIXTURE_DIR, c.file));
        assert.ok(maxAbsDiff(e.top.map((p) => p.score), ref.top5.map((p: any) => p.prob)) <= 1e-5);
      } finally {
        await model.dispose();
      }
    });
  }

  it('batches keep per-image results and a bad file does not spoil its batch', async () => {
    const model = await BeitModel.load(await convertedTinyModel());
    try {
      const files = ['gradient_640x480.jpg', 'does-not-exist.png', 'alpha_300x200.png', 'gray_256x256.png'].map((f) => path.join(FIXTURE_IMAGES, f));
      const seen: string[] = [];
      const results = await model.classifyFiles(files, { batchSize: 3, topK: 3, onResult: (r) => seen.push(r.image) });
      assert.deepEqual(seen, files);
      assert.match(results[1].error ?? '', /does-not-exist\.png: .*not found/);
      for (const i of [0, 2, 3]) {
        const alone = await model.classify(files[i], 3);
        assert.deepEqual(results[i].top?.map((p) => p.index), alone.map((p) => p.index));
        assert.ok(maxAbsDiff(results[i].top!.map((p) => p.score), alone.map((p) => p.score)) <= 1e-6);
      }
    } finally {
      await model.dispose();
    }
  });
});

describe('topKPredictions', () => {
  it('returns the K largest in order with float64 softmax scores', () => {
    const logits = Float32Array.from([0.5, 3, -1, 3, 2]);
    const top = topKPredictions(logits, ['a', 'b', 'c', 'd', 'e'], 3);
    assert.deepEqual(top.map((p) => p.index), [1, 3, 4]);
    const z = [0.5, 3, -1, 3, 2].reduce((s, v) => s + Math.exp(v - 3), 0);
    assert.ok(Math.abs(top[0].score - 1 / z) < 1e-15);
    assert.equal(topKPredictions(logits, [], 10).length, 5);
    assert.equal(topKPredictions(logits, [], 0).length, 0);
  });
});

describe('reference_model.onnx agrees with our converted graph', () => {
  it('same logits on pixel_values_0.bin within 1e-5', async () => {
    const session = await ModelSession.create(path.join(FIXTURE_DIR, 'reference_model.onnx'), { provider: 'cpu' });
    const ref = await session.run(rawPixelValues(), [1, 3, 224, 224], ['logits']);
    await session.release();
    const model = await BeitModel.load(await convertedTinyModel());
    const ours = await model.logits(rawPixelValues(), 1);
    await model.dispose();
    assert.ok(maxAbsDiff(ours, ref.logits.data) <= 1e-5, `diff ${maxAbsDiff(ours, ref.logits.data)}`);
  });
});
