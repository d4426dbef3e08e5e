/**
 * A scan in a child process, for the kill test: `node --import tsx scanChild.ts ROOT MODEL_DIR CACHE DELAY_MS`.
 * Prints one JSON line per result as it is reported (the scanner has already appended it to the cache).
 */
import { BeitModel } from '../../src/core/beitModel';
import { ResultStore } from '../../src/core/scan/resultStore';
import { scanDataset } from '../../src/core/scan/scanner';
import { countingModel } from './scanFixtures';

async function main(): Promise<void> {
  const [root, modelDir, cacheFile, delay] = process.argv.slice(2);
  const model = await BeitModel.load(modelDir);
  const store = await ResultStore.open(cacheFile);
  await scanDataset({
    roots: [root],
    model: countingModel(model, { delayMs: Number(delay) }),
    store,
    topK: 5,
    batchSize: 4,
    onResult: (r) => {
      process.stdout.write(`${JSON.stringify({ image: r.image, source: r.source, error: r.error })}\n`);
    },
  });
  await store.close();
  await model.dispose();
}

void main();
