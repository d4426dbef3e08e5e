import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { ResultStore } from '../../src/core/scan/resultStore';
import { scanDataset } from '../../src/core/scan/scanner';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';
import { fakeModel } from '../helpers/scanFixtures';

const IMAGES = 2000;
/**
 * The stated bound: during a 2,000-image scan the main thread's JS heap plus array buffers grows by less than
 * 100 MB. Holding every preprocessed image would take 2,000 x 602 KB = 1.2 GB; holding every result, a few MB
 * more than the pipeline's fixed working set (about 3 batches of model input plus file bytes in flight).
 */
const HEAP_GROWTH_BOUND = 100e6;
/** Whole process including the preprocessing worker and sharp/libvips caches. */
const RSS_BOUND = 600e6;

describe('scan memory stays bounded', () => {
  it(`scans ${IMAGES} model-size images with a fast fake model within the bound`, async () => {
    const root = await tempDir('beit-mem-');
    // Already 224x224, so preprocessing is decode + normalise and the test stays quick on 2 cores.
    await writeSyntheticDataset(root, { classes: ['a', 'b', 'c', 'd'], perClass: IMAGES / 4, width: 224, height: 224 });
    const preprocessor = await loadPreprocessorConfig(path.join(await convertedTinyModel(), 'preprocessor_config.json'));
    const model = fakeModel(preprocessor, Array.from({ length: 1000 }, (_, i) => `label ${i}`));
    const store = await ResultStore.open(path.join(await tempDir('beit-mem-cache-'), 'cache.log'));
    const before = process.memoryUsage();
    let peakHeap = 0;
    let peakRss = 0;
    const sample = () => {
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed + m.arrayBuffers);
      peakRss = Math.max(peakRss, m.rss);
    };
    const timer = setInterval(sample, 10);
    let done = 0;
    try {
      const summary = await scanDataset({ roots: [root], model, store, batchSize: 16, topK: 5, onResult: () => void done++ });
      assert.equal(summary.classified, IMAGES);
    } finally {
      clearInterval(timer);
      await store.close();
    }
    sample();
    const growth = peakHeap - (before.heapUsed + before.arrayBuffers);
    process.stderr.write(`[scan-memory] ${IMAGES} images: heap+buffers peak growth ${(growth / 1e6).toFixed(1)} MB, peak RSS ${(peakRss / 1e6).toFixed(0)} MB\n`);
    assert.equal(done, IMAGES);
    assert.equal(model.images, IMAGES);
    assert.ok(growth < HEAP_GROWTH_BOUND, `heap grew ${(growth / 1e6).toFixed(1)} MB`);
    assert.ok(peakRss < RSS_BOUND, `RSS peaked at ${(peakRss / 1e6).toFixed(0)} MB`);
  });
});
