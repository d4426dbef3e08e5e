import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { ModelSession } from '../../src/core/backend/onnxRuntime';
import { BeitConfig, loadBeitConfig } from '../../src/core/modelConfig';
import { buildBeitGraph, BeitGraphOptions } from '../../src/core/onnx/beitGraph';
import { patchArgmax, topKPredictions } from '../../src/core/predictions';
import { preprocessImage } from '../../src/core/preprocess';
import { loadPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { getFloat, loadStateDict } from '../../src/core/weights/stateDict';
import { FIXTURE_DIR, FIXTURE_IMAGES, maxAbsDiff, rawPixelValues } from '../helpers/fixtures';

const SIZE = 3 * 224 * 224;

describe('int8 graphs on the tiny fixture', () => {
  let config: BeitConfig;
  let build: (options: Omit<BeitGraphOptions, 'debugOutputs'>) => Uint8Array;
  /** pixel_values_0.bin and every fixture image. */
  const inputs: Float32Array[] = [];

  before(async () => {
    config = await loadBeitConfig(path.join(FIXTURE_DIR, 'config.json'));
    const { stateDict, source } = await loadStateDict(FIXTURE_DIR);
    build = (options) => buildBeitGraph(config, (n, s) => getFloat(stateDict, n, s, source), options);
    const preprocessor = await loadPreprocessorConfig(path.join(FIXTURE_DIR, 'preprocessor_config.json'));
    inputs.push(rawPixelValues());
    for (const file of readdirSync(FIXTURE_IMAGES).sort()) inputs.push((await preprocessImage(path.join(FIXTURE_IMAGES, file), preprocessor)).pixelValues);
  });

  async function run(bytes: Uint8Array, outputs: string[]): Promise<Record<string, Float32Array>[]> {
    const session = await ModelSession.create(bytes, { provider: 'cpu' });
    try {
      const results: Record<string, Float32Array>[] = [];
      for (const x of inputs) {
        const out = await session.run(x, [1, 3, 224, 224], outputs);
        results.push(Object.fromEntries(outputs.map((name) => [name, out[name].data])));
      }
      return results;
    } finally {
      await session.release();
    }
  }

  it('keeps the classifier in fp32 and gives every other projection int8 weights, a rounding residual and its corrections', () => {
    const graph = onnx.ModelProto.decode(build({ outputs: 'logits', style: 'optimized', weightType: 'int8' })).graph!;
    const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const classifier = initializers.get('classifier_wT');
    assert.equal(classifier?.dataType, onnx.TensorProto.DataType.FLOAT);
    assert.deepEqual(classifier?.dims?.map(Number), [config.hiddenSize, config.numLabels]);
    assert.ok(![...initializers.keys()].some((n) => n.startsWith('classifier') && n.includes('int8')));

    const int8Weights = [...initializers.values()].filter((t) => t.dataType === onnx.TensorProto.DataType.INT8).map((t) => t.name!);
    const main = int8Weights.filter((n) => n.endsWith('_w_int8'));
    const residual = int8Weights.filter((n) => n.endsWith('_w_residual_int8'));
    // Per layer: QKV, attention output, MLP in, MLP out.
    assert.equal(main.length, 4 * config.numLayers);
    assert.deepEqual(residual.sort(), main.map((n) => n.replace('_w_int8', '_w_residual_int8')).sort());

    const consumers = (name: string) => graph.node!.filter((n) => n.input!.includes(name)).map((n) => n.opType).sort();
    for (const w of main) {
      const r = w.replace('_w_int8', '_w_residual_int8');
      if (w.includes('intermediate')) {
        // The MLP's first projection: the residual is a second integer matmul over every token.
        assert.deepEqual(consumers(w), ['DynamicQuantizeMatMul', 'MatMulIntegerToFloat'], w);
        assert.deepEqual(consumers(r), ['MatMulIntegerToFloat'], r);
      } else {
        // The others: int8 matmul plus activation and weight rounding corrections from the token means.
        assert.deepEqual(consumers(w), ['DynamicQuantizeMatMul', 'MatMulIntegerToFloat'], w);
        assert.deepEqual(consumers(r), ['DynamicQuantizeMatMul'], r);
      }
    }
    assert.ok(!graph.node!.some((n) => n.opType === 'MatMul' && n.input!.some((i) => initializers.get(i)?.dims?.length === 2 && i !== 'classifier_wT' && i !== 'token_mean_row')));
  });

  it('agrees with fp32 on every fixture input: logits within 0.025 (plain int8 was 0.063), same top-5 order', async () => {
    const fp32 = await run(build({ outputs: 'logits', style: 'optimized', weightType: 'fp32' }), ['logits']);
    for (const style of ['optimized', 'plain'] as const) {
      const int8 = await run(build({ outputs: 'logits', style, weightType: 'int8' }), ['logits']);
      int8.forEach((out, i) => {
        const d = maxAbsDiff(out.logits, fp32[i].logits);
        assert.ok(d > 0 && d <= 0.025, `${style} input ${i}: int8 logits diff ${d}`);
        assert.deepEqual(topKPredictions(out.logits, [], 5).map((p) => p.index), topKPredictions(fp32[i].logits, [], 5).map((p) => p.index), `${style} input ${i}`);
      });
    }
  });

  it('the full int8 graph gives the logits graph\'s logits and per-patch predictions close to fp32', async () => {
    const fp32 = await run(build({ outputs: 'full', style: 'optimized', weightType: 'fp32' }), ['logits', 'patch_logits', 'attentions']);
    const logitsOnly = await run(build({ outputs: 'logits', style: 'optimized', weightType: 'int8' }), ['logits']);
    const full = await run(build({ outputs: 'full', style: 'optimized', weightType: 'int8' }), ['logits', 'patch_logits', 'attentions']);
    const patches = config.numTokens - config.architecture.leadingTokens;
    full.forEach((out, i) => {
      assert.ok(maxAbsDiff(out.logits, logitsOnly[i].logits) <= 1e-3, `input ${i}: full vs logits graph`);
      assert.ok(maxAbsDiff(out.attentions, fp32[i].attentions) <= 0.02, `input ${i}: attentions`);
      const grid = patchArgmax(out.patch_logits, patches, config.numLabels);
      const reference = patchArgmax(fp32[i].patch_logits, patches, config.numLabels);
      const same = grid.filter((c, p) => c === reference[p]).length;
      assert.ok(same >= 0.9 * patches, `input ${i}: ${same}/${patches} patch argmax equal`);
    });
  });

  it('a batch of all the inputs stays within the same bound (each image is corrected by its own token means)', async () => {
    const batch = new Float32Array(inputs.length * SIZE);
    inputs.forEach((x, i) => batch.set(x, i * SIZE));
    const fp32 = await ModelSession.create(build({ outputs: 'logits', style: 'optimized', weightType: 'fp32' }), { provider: 'cpu' });
    const int8 = await ModelSession.create(build({ outputs: 'logits', style: 'optimized', weightType: 'int8' }), { provider: 'cpu' });
    try {
      const dims = [inputs.length, 3, 224, 224];
      const d = maxAbsDiff((await int8.run(batch, dims, ['logits'])).logits.data, (await fp32.run(batch, dims, ['logits'])).logits.data);
      assert.ok(d <= 0.025, `batched int8 logits diff ${d}`);
    } finally {
      await fp32.release();
      await int8.release();
    }
  });
});
