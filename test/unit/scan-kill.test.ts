import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { ResultStore } from '../../src/core/scan/resultStore';
import { scanDataset, type ScanResult } from '../../src/core/scan/scanner';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';
import { countingModel } from '../helpers/scanFixtures';

const CHILD = path.resolve(__dirname, '..', 'helpers', 'scanChild.ts');
const KILL_AFTER = 40;

/** Runs the child scan and SIGKILLs it once it has reported `after` results; returns what it reported. */
async function killMidScan(root: string, modelDir: string, cacheFile: string, after: number): Promise<Array<{ image: string; source: string }>> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, root, modelDir, cacheFile, '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const reported: Array<{ image: string; source: string }> = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout! })) {
    reported.push(JSON.parse(line));
    if (reported.length === after) child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL', 'the child was killed mid-scan, not finished');
  return reported;
}

describe('scan cache survives a killed scan', () => {
  it('loses and duplicates nothing across SIGKILL plus a torn record, and the re-run resumes', async () => {
    const root = await tempDir('beit-kill-');
    const files = await writeSyntheticDataset(root, { classes: ['tabby', 'river_otters', 'balloon', 'xyz'], perClass: 50, width: 40, height: 30, seed: 5 });
    const modelDir = await convertedTinyModel();
    const cacheFile = path.join(await tempDir('beit-kill-cache-'), 'cache.log');

    const reported = await killMidScan(root, modelDir, cacheFile, KILL_AFTER);
    assert.ok(reported.length >= KILL_AFTER && reported.length < files.length, `${reported.length} reported before the kill`);
    // A write interrupted half-way (the kill itself lands between whole-record writes).
    const torn = '1234abcd {"f":"/half/written';
    appendFileSync(cacheFile, torn);
    const tornSize = statSync(cacheFile).size;

    const model = await BeitModel.load(modelDir);
    const counting = countingModel(model);
    const store = await ResultStore.open(cacheFile);
    assert.equal(store.stats.truncatedBytes, torn.length, 'torn tail cut off');
    assert.equal(store.stats.corrupt, 0);
    assert.equal(statSync(cacheFile).size, tornSize - torn.length);
    const results: ScanResult[] = [];
    try {
      await scanDataset({ roots: [root], model: counting, store, topK: 5, batchSize: 4, onResult: (r) => void results.push(r) });
    } finally {
      await store.close();
      await model.dispose();
    }

    // Every file exactly once; nothing the killed run reported is classified again.
    const images = results.map((r) => r.image);
    assert.equal(new Set(images).size, images.length);
    assert.deepEqual([...images].sort(), [...files].sort());
    const source = new Map(results.map((r) => [r.image, r.source]));
    for (const r of reported) assert.equal(source.get(r.image), 'cache', `${r.image} was reported before the kill, so it is cached`);
    const cached = results.filter((r) => r.source === 'cache').length;
    assert.ok(cached >= reported.length);
    assert.equal(counting.images, files.length - cached);

    // One prediction record per content hash: the re-run appended none twice.
    const predictionKeys = readFileSync(cacheFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(1)
      .map((line) => JSON.parse(line.slice(9)))
      .filter((r) => typeof r.p === 'string')
      .map((r) => `${r.model}|${r.p}`);
    assert.equal(predictionKeys.length, files.length);
    assert.equal(new Set(predictionKeys).size, files.length);
  });
});
