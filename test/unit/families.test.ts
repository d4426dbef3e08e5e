/**
 * Every family and BEiT option converts and runs exactly: tiny random models made and run with transformers' own
 * modeling code (test/fixtures/families/generate.py), converted here by `convert`, then run by onnxruntime.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { ModelSession } from '../../src/core/backend/onnxRuntime';
import { convertModel } from '../../src/core/convert';
import { loadBeitConfig } from '../../src/core/modelConfig';
import { buildBeitGraph } from '../../src/core/onnx/beitGraph';
import { decodeModel } from '../../src/core/onnx/decodeModel';
import { getFloat, loadStateDict } from '../../src/core/weights/stateDict';
import { FIXTURE_IMAGES, maxAbsDiff, removedAfterTests } from '../helpers/fixtures';

const FAMILIES_DIR = path.resolve(__dirname, '..', 'fixtures', 'families');
const FAMILY_FIXTURES = ['beit-shared-bias', 'beit-absolute-position', 'beit-cls-pooling', 'beit-no-layer-scale-48', 'beit-64-patch16', 'data2vec-vision', 'vit'];
const tempDir = removedAfterTests();

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function fixture(name: string): { dir: string; expected: any; pixelValues: Float32Array; attentions: Float32Array } {
  const dir = path.join(FAMILIES_DIR, name);
  const floats = (file: string) => {
    const bytes = readFileSync(path.join(dir, file));
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  };
  return { dir, expected: JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')), pixelValues: floats('pixel_values.bin'), attentions: floats('attentions.bin') };
}

const flat = (rows: number[][]): number[] => rows.flat();

for (const name of FAMILY_FIXTURES) {
  describe(`${name}: converted and run against transformers' own modules`, () => {
    const f = fixture(name);
    const raw = f.expected.raw_input_check;
    const shape = raw.shape as number[];
    let converted: Promise<string> | undefined;
    const fp32Model = () => (converted ??= tempDir(`beit-family-${name}-`).then(async (out) => (await convertModel({ from: f.dir, out }), out)));

    it('the explanation graph gives the logits (1e-4), every attention probability (1e-5) and the embedding (1e-4)', async () => {
      const dir = await fp32Model();
      const session = await ModelSession.create(path.join(dir, 'model.onnx'), { provider: 'cpu' });
      try {
        const out = await session.run(f.pixelValues, shape, ['logits', 'attentions', 'pooled_output']);
        assert.ok(maxAbsDiff(out.logits.data, raw.logits) <= 1e-4, `logits ${maxAbsDiff(out.logits.data, raw.logits)}`);
        assert.ok(maxAbsDiff(out.attentions.data, f.attentions) <= 1e-5, `attentions ${maxAbsDiff(out.attentions.data, f.attentions)}`);
        assert.ok(maxAbsDiff(out.pooled_output.data, raw.pooled_output) <= 1e-4, `pooled ${maxAbsDiff(out.pooled_output.data, raw.pooled_output)}`);
        assert.deepEqual(out.attentions.dims, [1, ...raw.attentions.shape]);
      } finally {
        await session.release();
      }
    });

    it('the plain (PyTorch-export-like) graph agrees too: the unfused path reads the same weights', async () => {
      const config = await loadBeitConfig(path.join(f.dir, 'config.json'));
      const { stateDict, source } = await loadStateDict(f.dir);
      const bytes = buildBeitGraph(config, (n, s) => getFloat(stateDict, n, s, source), { outputs: 'full', style: 'plain', weightType: 'fp32', debugOutputs: true });
      if (config.architecture.sharedRelativeBias) {
        const tables = (decodeModel(bytes).graph?.initializer ?? []).filter((t) => t.name?.startsWith('shared_relative_position_bias_table'));
        assert.equal(tables.length, 1, 'the shared table is stored once');
      }
      const session = await ModelSession.create(bytes, { provider: 'cpu' });
      try {
        const out = await session.run(f.pixelValues, shape, ['logits', 'attentions', 'pooled_output']);
        assert.ok(maxAbsDiff(out.logits.data, raw.logits) <= 1e-4);
        assert.ok(maxAbsDiff(out.attentions.data, f.attentions) <= 1e-5);
        assert.ok(maxAbsDiff(out.pooled_output.data, raw.pooled_output) <= 1e-4);
      } finally {
        await session.release();
      }
    });

    it('classify, embed and explain end to end on the fixture images, through its own preprocessor_config.json', async () => {
      const model = await BeitModel.load(await fp32Model(), { verifier: false });
      try {
        assert.ok(maxAbsDiff(await model.logits(f.pixelValues, 1), raw.logits) <= 1e-4);
        assert.ok(maxAbsDiff(await model.embeddings(f.pixelValues, 1), raw.pooled_output) <= 1e-4);
        for (const ref of f.expected.images) {
          const file = path.join(FIXTURE_IMAGES, ref.file);
          const top = await model.classify(file, 1);
          assert.equal(top[0].index, ref.argmax, `${ref.file} top-1`);
          assert.ok(Math.abs(top[0].score - ref.top1_prob) <= 1e-4, `${ref.file} top-1 probability ${top[0].score} vs ${ref.top1_prob}`);
          const [embedded] = await model.embedFiles([file]);
          assert.ok(embedded.embedding && maxAbsDiff(embedded.embedding, ref.pooled_output) <= 1e-4, `${ref.file} embedding`);
          const e = await model.explain(file, { rollout: { headFusion: 'mean', discardRatio: 0 } });
          assert.equal(e.top[0].index, ref.argmax);
          assert.equal(e.grid ** 2 + 1, e.tokens);
          assert.ok(maxAbsDiff(e.rollout, flat(ref.attention_rollout_discard_0)) <= 1e-3, `${ref.file} rollout ${maxAbsDiff(e.rollout, flat(ref.attention_rollout_discard_0))}`);
        }
      } finally {
        await model.dispose();
      }
    });

    it('fp16 and int8 conversions run within the drift tolerances', async () => {
      for (const [dtype, tolerance] of [['fp16', 5e-3], ['int8', 0.1]] as const) {
        const out = await tempDir(`beit-family-${name}-${dtype}-`);
        await convertModel({ from: f.dir, out, dtype });
        const model = await BeitModel.load(out, { verifier: false, onNote: () => undefined });
        try {
          const d = maxAbsDiff(await model.logits(f.pixelValues, 1), raw.logits);
          assert.ok(d > 0 && d <= tolerance, `${dtype} logits diff ${d}`);
        } finally {
          await model.dispose();
        }
      }
    });
  });
}

describe('data2vec-vision from pytorch_model.bin (as facebook/data2vec-vision-base-ft1k ships it)', () => {
  it('reads torch.save output without running it and converts to the same logits', async () => {
    const f = fixture('data2vec-vision');
    const { copyFile } = await import('node:fs/promises');
    const from = await tempDir('beit-family-d2v-bin-');
    for (const file of ['config.json', 'preprocessor_config.json', 'pytorch_model.bin']) await copyFile(path.join(f.dir, file), path.join(from, file));
    const out = await tempDir('beit-family-d2v-bin-model-');
    const result = await convertModel({ from, out });
    assert.equal(result.manifest.source.weights, 'pytorch_model.bin');
    assert.equal(result.manifest.parameters, f.expected.parameters);
    const model = await BeitModel.load(out, { verifier: false });
    try {
      assert.ok(maxAbsDiff(await model.logits(f.pixelValues, 1), f.expected.raw_input_check.logits) <= 1e-4);
    } finally {
      await model.dispose();
    }
  });
});

describe('model info names the family', () => {
  it('ViT folders say ViT / ViTForImageClassification', async () => {
    const { describeModel } = await import('../../src/core/modelInfo');
    const out = await tempDir('beit-family-info-');
    await convertModel({ from: path.join(FAMILIES_DIR, 'vit'), out });
    const model = await BeitModel.load(out, { verifier: false });
    try {
      const info = await describeModel(model);
      assert.equal(info.family, 'ViT');
      assert.equal(info.architecture, 'ViTForImageClassification');
      assert.equal(info.config.numTokens, 17);
    } finally {
      await model.dispose();
    }
  });
});
