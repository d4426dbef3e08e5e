import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { scanDataset, type ScanModel, type ScanOptions, type ScanResult } from '../../src/core/scan/scanner';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { convertedTinyModel, maxAbsDiff, tempDir } from '../helpers/fixtures';

async function scan(options: ScanOptions): Promise<ScanResult[]> {
  const results: ScanResult[] = [];
  await scanDataset({ ...options, onResult: (r) => void results.push(r) });
  return results;
}

/** The model with a fixed wait per batch (long enough for preprocessing to get ahead), counting the batches it runs at once. */
function overlapCounting(model: BeitModel, delayMs: number): ScanModel & { maxAtOnce: number; images: number } {
  let running = 0;
  const wrapper = {
    maxAtOnce: 0,
    images: 0,
    modelId: model.modelId,
    labels: model.labels,
    directory: model.directory,
    async logits(values: Float32Array, n: number): Promise<Float32Array> {
      running++;
      wrapper.maxAtOnce = Math.max(wrapper.maxAtOnce, running);
      wrapper.images += n;
      try {
        await new Promise((r) => setTimeout(r, delayMs));
        return await model.logits(values, n);
      } finally {
        running--;
      }
    },
  };
  return wrapper;
}

describe('scanDataset batchesInFlight', () => {
  let model: BeitModel;
  let dir: string;

  before(async () => {
    model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu', verifier: false });
    dir = await tempDir('beit-scan-inflight-');
    await writeSyntheticDataset(dir, { classes: ['a', 'b'], perClass: 12, width: 16, height: 16 });
  });
  after(async () => {
    await model.dispose();
  });

  it('gives the model up to that many batches at once, each image answered once, equal to one at a time', async () => {
    const one = overlapCounting(model, 200);
    const three = overlapCounting(model, 200);
    const serial = await scan({ roots: [dir], model: one, topK: 5, batchSize: 4, embeddings: false });
    const parallel = await scan({ roots: [dir], model: three, topK: 5, batchSize: 4, batchesInFlight: 3, embeddings: false });
    assert.equal(one.maxAtOnce, 1);
    assert.equal(three.maxAtOnce, 3);
    assert.equal(three.images, 24);
    assert.equal(parallel.length, 24);
    assert.equal(new Set(parallel.map((r) => r.image)).size, 24);
    const want = new Map(serial.map((r) => [r.image, r]));
    for (const r of parallel) {
      const w = want.get(r.image)!;
      assert.deepEqual(r.top!.map((p) => p.index), w.top!.map((p) => p.index));
      assert.ok(maxAbsDiff(r.top!.map((p) => p.score), w.top!.map((p) => p.score)) <= 1e-6);
    }
  });

  it('still retries a failing batch image by image, and fails outright when the model fails on everything', async () => {
    const batchShy = { ...overlapCounting(model, 5), logits: (v: Float32Array, n: number) => (n > 1 ? Promise.reject(new Error('batch too big')) : model.logits(v, n)) };
    const results = await scan({ roots: [dir], model: batchShy, topK: 3, batchSize: 4, batchesInFlight: 2, embeddings: false });
    assert.equal(results.filter((r) => r.top).length, 24);
    const broken = { ...batchShy, logits: () => Promise.reject(new Error('no session')) };
    await assert.rejects(scan({ roots: [dir], model: broken, topK: 3, batchSize: 4, batchesInFlight: 2 }), /no session/);
  });
});
