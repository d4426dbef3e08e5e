/**
 * One `BeitModel.classifyFiles` call in a child process, for the memory tests: `node --require reportMaxRss.cjs
 * --import tsx classifyChild.ts MODEL_DIR BATCH FILE...`. Prints the results as one JSON array; the preloaded
 * reporter adds the peak RSS to stderr.
 */
import { BeitModel } from '../../src/core/beitModel';

async function main(): Promise<void> {
  const [modelDir, batch, ...files] = process.argv.slice(2);
  const model = await BeitModel.load(modelDir);
  const started = performance.now();
  const results = await model.classifyFiles(files, { batchSize: Number(batch), topK: 5 });
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - started, results })}\n`);
  await model.dispose();
}

void main();
