import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { occlusionMap, windowPatches } from '../../src/core/occlusion';
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
