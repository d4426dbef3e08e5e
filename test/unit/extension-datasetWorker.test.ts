/**
 * Dataset scans in the real inference worker with the tiny model: results streamed to a results file the
 * extension host follows, the persistent cache (a re-scan reads only it), cancellation with the partial
 * summary and resumption, a worker killed mid-scan (resumed, nothing lost or duplicated), hovers getting
 * in between scan batches, and the label calls and thumbnails the dataset view makes.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BeitModel } from '../../src/core/beitModel';
import type { Prediction } from '../../src/core/predictions';
import { ResultTable, type TableRow } from '../../src/core/scan/resultTable';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { scanModelKey } from '../../src/core/scan/scanner';
import { loadDatasetEmbeddings } from '../../src/core/similarity/datasetEmbeddings';
import { DatasetSession } from '../../src/extension/dataset/datasetSession';
import { runDatasetScan, type DatasetScanOutcome } from '../../src/extension/dataset/scanRunner';
import { InferenceClient } from '../../src/extension/inference/inferenceClient';
import { silentLogger } from '../../src/extension/util/logger';
import type { ScanJobArgs } from '../../src/extension/worker/workerProtocol';
import type { DatasetHostMessage } from '../../src/shared/protocol';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';

const root = path.resolve(__dirname, '../..');
const CLASSES = ['tabby', 'river_otters', 'balloon', 'xyz'];
const PER_CLASS = 50;

let tmp: string;
let data: string;
let images: string[];
let bad: Record<string, RegExp>;
let expected: string[];
let reference: BeitModel;
let client: InferenceClient;
let jobs = 0;

before(async () => {
  tmp = await tempDir('beit-dataset-worker-');
  data = path.join(tmp, 'data');
  images = await writeSyntheticDataset(data, { classes: CLASSES, perClass: PER_CLASS, width: 40, height: 30 });
  // Misfiled: other classes' pictures in the tabby folder (seed 2: content unlike any other file).
  const misfiled = await writeSyntheticDataset(path.join(tmp, 'other'), { classes: ['misfiled'], perClass: 3, width: 40, height: 30, seed: 2 });
  for (const [i, file] of misfiled.entries()) {
    const target = path.join(data, 'tabby', `misfiled_${i}.png`);
    await writeFile(target, await readFile(file));
    images.push(target);
  }
  bad = {
    [path.join(data, 'balloon', 'empty.jpg')]: /empty \(0 bytes\)/,
    [path.join(data, 'xyz', 'notes.png')]: /not a recognised image/,
    [path.join(data, 'river_otters', 'truncated.png')]: /decode|truncat|premature|end|corrupt/i,
  };
  await writeFile(path.join(data, 'balloon', 'empty.jpg'), Buffer.alloc(0));
  await writeFile(path.join(data, 'xyz', 'notes.png'), 'these are not pixels\n');
  const valid = await readFile(images[0]);
  await writeFile(path.join(data, 'river_otters', 'truncated.png'), valid.subarray(0, Math.floor(valid.length / 2)));
  expected = [...images, ...Object.keys(bad)].sort();

  const modelDir = await convertedTinyModel();
  reference = await BeitModel.load(modelDir, { provider: 'cpu' });
  client = new InferenceClient({ workerScript: path.join(root, 'src/extension/worker/inferenceWorker.ts'), execArgv: ['--import', 'tsx'], log: silentLogger });
  const state = await client.setModel({ source: { kind: 'folder', dir: modelDir }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } });
  assert.equal(state.kind, 'ready');
});

after(async () => {
  await client?.dispose();
  await reference?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

function job(cache: string, overrides: Partial<ScanJobArgs> = {}): ScanJobArgs {
  return { roots: [data], resultsFile: path.join(tmp, `results-${++jobs}.jsonl`), cacheFile: path.join(tmp, cache), topK: 5, batchSize: 4, ...overrides };
}

async function allRows(file: string): Promise<TableRow[]> {
  const table = await ResultTable.open(file);
  try {
    const rows: TableRow[] = [];
    for await (const row of table.entries()) rows.push(row);
    return rows;
  } finally {
    await table.close();
  }
}

/** Batched inference differs from single-image inference in the last float bits. */
function assertSamePredictions(actual: Prediction[], expectedTop: Prediction[], what: string): void {
  assert.deepEqual(actual.map((p) => p.index), expectedTop.map((p) => p.index), what);
  actual.forEach((p, i) => assert.ok(Math.abs(p.score - expectedTop[i].score) < 1e-4, `${what}: ${p.score} vs ${expectedTop[i].score}`));
}

async function assertCompleteResults(file: string): Promise<TableRow[]> {
  const rows = await allRows(file);
  const seen = rows.map((r) => r.image);
  assert.equal(new Set(seen).size, seen.length, 'no image twice');
  assert.deepEqual([...seen].sort(), expected, 'every image once');
  for (const row of rows) {
    const reason = bad[row.image];
    if (reason) {
      assert.match(row.error ?? '', reason, row.image);
      assert.equal(row.top, undefined);
    } else {
      assert.equal(row.error, undefined, `${row.image}: ${row.error}`);
      assert.equal(row.top?.length, 5);
      assert.equal(row.folderLabel, path.basename(path.dirname(row.image)));
    }
  }
  return rows;
}

/**
 * Follows a scan's results file the way the dataset view does, and calls `when` once it holds `rows` rows
 * (polling faster than the worker's progress ticks, so a small scan is still caught in the middle).
 */
function follow(file: string, rows: number, when: () => void): { stop(): Promise<number> } {
  let stopped = false;
  let fired = false;
  let seen = 0;
  const loop = (async () => {
    while (!stopped) {
      try {
        const table = await ResultTable.open(file);
        seen = table.size;
        await table.close();
      } catch {
        // Not created yet.
      }
      if (!fired && seen >= rows) {
        fired = true;
        when();
      }
      await sleep(5);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return seen;
    },
  };
}

describe('dataset scans in the inference worker', () => {
  it('scans into a results file the host follows as it grows, with error rows, matching the model', async () => {
    const args = job('cache-a.log');
    const host = await ResultTable.create(args.resultsFile);
    const sizesDuringScan: number[] = [];
    const progress: number[] = [];
    const outcome = await runDatasetScan(client, args, {
      onProgress: (p) => {
        progress.push(p.done);
        void host.refresh().then(() => sizesDuringScan.push(host.size));
      },
    });
    await host.refresh();
    assert.equal(outcome.cancelled, false);
    assert.equal(outcome.restarts, 0);
    const s = outcome.summary!;
    assert.equal(s.found, expected.length);
    assert.equal(s.classified, images.length);
    assert.equal(s.errors, Object.keys(bad).length);
    assert.equal(s.cached, 0);
    assert.equal(s.rows, expected.length);
    assert.equal(s.written, expected.length);
    assert.ok(progress.length >= 2, 'progress was streamed');
    assert.equal(host.size, expected.length);
    const rows = await assertCompleteResults(args.resultsFile);
    for (const row of rows.filter((r) => r.top).slice(0, 12)) assertSamePredictions(row.top!, await reference.classify(row.image, 5), row.image);
    await host.close();
    // The worker's model passed the embedding fetch through: the cache holds every classified image's embedding.
    assert.equal(s.embeddings, 'stored');
    const { set, missing } = await loadDatasetEmbeddings({
      resultsFile: args.resultsFile,
      cacheFile: args.cacheFile!,
      modelKey: scanModelKey(reference, { fast: false, applyExifOrientation: true }),
      dim: reference.embeddingSize,
      roots: args.roots,
    });
    assert.equal(set.count, images.length);
    assert.deepEqual(missing.map((m) => m.image).sort(), Object.keys(bad).sort());
    for (let i = 0; i < 4; i++) {
      const [alone] = await reference.embedFiles([set.images[i]]);
      const norm = Math.hypot(...alone.embedding!);
      const v = set.vectors.subarray(i * set.dim, (i + 1) * set.dim);
      // float16 storage (and batch-vs-single rounding): a few float16 steps of a unit vector.
      assert.ok(v.every((x, d) => Math.abs(x - alone.embedding![d] / norm) < 2e-3), set.images[i]);
    }
  });

  it('re-scans an unchanged folder from the cache alone', async () => {
    const outcome = await runDatasetScan(client, job('cache-a.log'));
    const s = outcome.summary!;
    assert.equal(s.classified, 0, 'nothing reached the model');
    assert.equal(s.modelBatches, 0);
    assert.equal(s.cached, images.length);
    assert.equal(s.errors, Object.keys(bad).length, 'decode errors are cached too');
  });

  it('lets other requests in between scan batches', async () => {
    const args = job('cache-hover.log', { batchSize: 2 });
    let scanDone = false;
    const scan = runDatasetScan(client, args).then((o) => ((scanDone = true), o));
    await new Promise<void>((resolve) => {
      const watch = follow(args.resultsFile, 4, () => void watch.stop().then(() => resolve()));
    });
    const top = await client.call('classify', { file: images[7], topK: 3 }, { lane: 'hover' });
    assert.equal(scanDone, false, 'the hover was answered while the scan was still running');
    assertSamePredictions(top, await reference.classify(images[7], 3), 'hover');
    await scan;
  });

  it('cancels with the partial summary; the next scan resumes from the cache', async () => {
    const args = job('cache-c.log');
    const controller = new AbortController();
    const watch = follow(args.resultsFile, 30, () => controller.abort());
    const outcome = await runDatasetScan(client, args, { signal: controller.signal });
    await watch.stop();
    assert.equal(outcome.cancelled, true);
    assert.equal(outcome.summary?.cancelled, true, 'the worker answered the cancel with its summary');
    const partial = await allRows(args.resultsFile);
    assert.ok(partial.length >= 30 && partial.length < expected.length, `${partial.length} rows`);
    assert.equal(new Set(partial.map((r) => r.image)).size, partial.length);
    const classifiedBefore = partial.filter((r) => r.top).length;

    const again = job('cache-c.log');
    const resumed = await runDatasetScan(client, again);
    assert.ok(resumed.summary!.cached >= classifiedBefore, `${resumed.summary!.cached} from cache, ${classifiedBefore} classified before`);
    assert.equal(resumed.summary!.cached + resumed.summary!.classified, images.length);
    await assertCompleteResults(again.resultsFile);
  });

  it('survives a worker kill mid-scan: resumed, with no result lost or duplicated', async () => {
    const args = job('cache-k.log');
    const crashesBefore = client.stats.crashes;
    const restarts: string[] = [];
    let killed = false;
    const watch = follow(args.resultsFile, 40, () => (killed = client.kill()));
    const outcome: DatasetScanOutcome = await runDatasetScan(client, args, { onRestart: (r) => restarts.push(r.reason) });
    const seenAtKill = await watch.stop();
    assert.ok(killed, 'the worker was killed');
    assert.equal(client.stats.crashes, crashesBefore + 1);
    assert.equal(outcome.restarts, 1);
    assert.match(restarts[0], /killed \(SIGKILL\)/);
    assert.equal(outcome.cancelled, false);
    const s = outcome.summary!;
    assert.ok(s.alreadyInFile >= 40 && s.alreadyInFile < expected.length, `resumed with ${s.alreadyInFile} rows in the file (${seenAtKill} seen)`);
    assert.equal(s.rows, expected.length);
    assert.equal(s.written + s.alreadyInFile, expected.length, 'each row written exactly once across both runs');
    assert.ok(s.cached >= s.alreadyInFile - Object.keys(bad).length, 'what was classified before the kill came from the cache');
    const rows = await assertCompleteResults(args.resultsFile);
    for (const row of rows.filter((r) => r.top).filter((_, i) => i % 20 === 0)) assertSamePredictions(row.top!, await reference.classify(row.image, 5), row.image);
  });

  it('maps folders to labels, searches labels, and makes thumbnails for the dataset view', async () => {
    const mappings = await client.call('mapFolders', { folders: CLASSES, overrides: { xyz: [4] } });
    const byFolder = Object.fromEntries(mappings.map((m) => [m.folder, m]));
    assert.equal(byFolder.river_otters.kind, 'exact');
    assert.equal(byFolder.tabby.kind, 'fuzzy');
    assert.equal(byFolder.balloon.label, 'hot air balloon');
    assert.equal(byFolder.xyz.kind, 'override');
    assert.deepEqual(byFolder.xyz.acceptedLabels, ['glacier lily']);
    assert.deepEqual(await client.call('searchLabels', { query: 'otter', limit: 5 }), [{ index: 7, label: 'river otter' }]);
    assert.deepEqual((await client.call('searchLabels', { query: 'ballon', limit: 3 })).map((m) => m.label), ['hot air balloon'], 'a typo still finds it');

    const args = job('cache-a.log');
    await runDatasetScan(client, args);
    const table = await ResultTable.open(args.resultsFile);
    const posted: DatasetHostMessage[] = [];
    const session = new DatasetSession('Dataset: data', data, {
      inference: client,
      post: (m) => posted.push(m),
      openImage: () => undefined,
      copyText: async () => undefined,
      pickExportFile: async () => undefined,
      overrides: { get: () => ({}), set: () => undefined },
      log: silentLogger,
    });
    try {
      await session.setTable(table);
      await session.receive({ type: 'ready' });
      const check = posted.find((m) => m.type === 'labelCheck');
      assert.ok(check && check.type === 'labelCheck');
      assert.equal(check.check.checked, images.length);
      await session.receive({ type: 'thumbnails', generation: session.currentGeneration, rows: [0, 1, 2] });
      for (let i = 0; i < 200 && posted.filter((m) => m.type === 'thumbnail').length < 3; i++) await sleep(20);
      const thumbnails = posted.filter((m): m is Extract<DatasetHostMessage, { type: 'thumbnail' }> => m.type === 'thumbnail');
      assert.equal(thumbnails.length, 3);
      assert.ok(thumbnails.every((t) => /^data:image\/jpeg;base64,/.test(t.src)));
    } finally {
      session.dispose();
      await table.close();
    }
  });
});
