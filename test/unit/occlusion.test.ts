import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { occlusionMap, windowPatches } from '../../src/core/occlusion';
import { attentionRollout } from '../../src/core/rollout';
import { randomPatchOrder } from '../../src/core/faithfulness';
import { faithfulnessScores, gaussianBlur, RANDOM_ORDER_SEED } from '../../src/core/faithfulnessScores';
import { convertedTinyModel, maxAbsDiff, rawPixelValues } from '../helpers/fixtures';

// Independent PyTorch references: test/fixtures/occlusion/generate.py
const reference = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/occlusion/occlusion.json'), 'utf8')) as {
  occlusion: { classIndex: number; window: number; baseProbability: number; map: number[] }[];
};

describe('occlusion maps on the classification graph (PyTorch references, test/fixtures/occlusion)', () => {
  let model: BeitModel;
  before(async () => {
    model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu', verifier: false });
  });
  after(() => model.dispose());
  const geometry = { channels: 3, grid: 14, patchSize: 16, numLabels: 10 };

  for (const ref of reference.occlusion) {
    // 2e-4, not 1e-4: the map divides probability drops by the largest one, which scales up the ~5e-7 logit
    // differences between two float32 implementations; the class-0 single-patch map measures 1.25e-4.
    it(`class ${ref.classIndex}, window ${ref.window}: within 2e-4 of the reference`, async () => {
      const result = await occlusionMap((b, n) => model.logits(b, n), rawPixelValues(), geometry, ref.classIndex, { window: ref.window, batchSize: 28 });
      assert.equal(result.map.length, 196);
      assert.ok(Math.abs(result.baseProbability - ref.baseProbability) <= 1e-6);
      assert.ok(maxAbsDiff(result.map, ref.map) <= 2e-4, `max diff ${maxAbsDiff(result.map, ref.map)}`);
      assert.equal(Math.max(...result.map), 1);
    });
  }

  it('refuses a class index outside the labels, and an even window', async () => {
    const run = (b: Float32Array, n: number) => model.logits(b, n);
    await assert.rejects(occlusionMap(run, rawPixelValues(), geometry, 10), /class index 10 is outside 0\.\.9/);
    await assert.rejects(occlusionMap(run, rawPixelValues(), geometry, -1), /class index -1 is outside 0\.\.9/);
    await assert.rejects(occlusionMap(run, rawPixelValues(), geometry, 0, { window: 2 }), /odd positive number of patches, got 2/);
  });

  it('a window is clipped at the border', () => {
    assert.deepEqual(windowPatches(0, 14, 3), [0, 1, 14, 15]);
    assert.deepEqual(windowPatches(15, 14, 3), [0, 1, 2, 14, 15, 16, 28, 29, 30]);
  });
});

describe('rollout read from the patch rows (PyTorch reference, test/fixtures/occlusion)', () => {
  const rollouts = (JSON.parse(readFileSync(path.join(__dirname, '../fixtures/occlusion/occlusion.json'), 'utf8')) as { rolloutFromPatches: { discardRatio: number; map: number[] }[] }).rolloutFromPatches;
  it('matches the mean of the patch-token rows, and differs from the CLS row', async () => {
    const model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu', verifier: false });
    try {
      const image = path.join(__dirname, '../fixtures/beit-tiny/images/gradient_640x480.jpg');
      const e = await model.explain(image, { rollout: { headFusion: 'mean', discardRatio: 0 } });
      const layout = { layers: e.layers, heads: e.heads, tokens: e.tokens, leadingTokens: e.leadingTokens };
      const ref = rollouts.find((r) => r.discardRatio === 0)!.map;
      const fromPatches = attentionRollout(e.attentions, layout, { headFusion: 'mean', discardRatio: 0, from: 'patches' });
      assert.ok(maxAbsDiff(fromPatches, ref) <= 1e-4, `max diff ${maxAbsDiff(fromPatches, ref)}`);
      const fromCls = attentionRollout(e.attentions, layout, { headFusion: 'mean', discardRatio: 0, from: 'cls' });
      assert.ok(maxAbsDiff(fromCls, ref) > 1e-2);
    } finally {
      await model.dispose();
    }
  });
});

describe('faithfulness scores (PyTorch reference, test/fixtures/occlusion)', () => {
  const ref = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/occlusion/occlusion.json'), 'utf8')) as {
    faithfulness: { classIndex: number; relevance: number[]; randomOrder: number[]; deletionCurve: number[]; insertionCurve: number[]; randomDeletionCurve: number[]; deletionAuc: number; insertionAuc: number; randomDeletionAuc: number };
    blurredSamplesChw: { at: [number, number, number]; value: number }[];
  };
  const geometry = { channels: 3, grid: 14, patchSize: 16, numLabels: 10 };
  it('the random order and the blurred image match the reference', () => {
    assert.deepEqual(randomPatchOrder(196, RANDOM_ORDER_SEED), ref.faithfulness.randomOrder);
    const blurred = gaussianBlur(rawPixelValues(), 3, 224);
    for (const s of ref.blurredSamplesChw) {
      const value = blurred[s.at[0] * 224 * 224 + s.at[1] * 224 + s.at[2]];
      assert.ok(Math.abs(value - s.value) <= 1e-6, `blurred ${s.at.join(',')}: ${value} vs ${s.value}`);
    }
  });
  it('deletion, insertion and random-deletion curves and AUCs of the reference map within 1e-4', async () => {
    const model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu', verifier: false });
    try {
      const f = ref.faithfulness;
      const run = (b: Float32Array, n: number) => model.logits(b, n);
      const scores = await faithfulnessScores(run, rawPixelValues(), geometry, f.classIndex, f.relevance, { batchSize: 21 });
      for (const key of ['deletionAuc', 'insertionAuc', 'randomDeletionAuc'] as const) assert.ok(Math.abs(scores[key] - f[key]) <= 1e-4, `${key}: ${scores[key]} vs ${f[key]}`);
      for (const key of ['deletionCurve', 'insertionCurve', 'randomDeletionCurve'] as const) {
        assert.equal(scores[key].length, 21);
        assert.ok(maxAbsDiff(scores[key], f[key]) <= 1e-4, `${key}: max diff ${maxAbsDiff(scores[key], f[key])}`);
      }
      // A batch that does not divide the 63 images gives the same numbers.
      const odd = await faithfulnessScores(run, rawPixelValues(), geometry, f.classIndex, f.relevance, { batchSize: 8 });
      assert.ok(Math.abs(odd.deletionAuc - scores.deletionAuc) <= 1e-6);
      await assert.rejects(faithfulnessScores(run, rawPixelValues(), geometry, 0, [1, 2]), /must hold 196 values, got 2/);
      await assert.rejects(faithfulnessScores(run, rawPixelValues(), geometry, 10, f.relevance), /class index 10 is outside 0\.\.9/);
    } finally {
      await model.dispose();
    }
  });
});
