/**
 * The Dataset view's similarity features through the real inference worker with the tiny model: a scan by
 * the worker stores embeddings, `loadEmbeddings` holds them behind a handle, and neighbours, duplicate groups
 * and uniqueness come back as results-table row ids. Neighbours are checked against cosines computed here by
 * hand from the same stored vectors (and, for an image outside the dataset, from the model run here); the
 * session turns them into the view's row sets, similarity column, uniqueness order and Duplicates tab.
 */
import assert from 'node:assert/strict';
import { copyFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { scanModelKey } from '../../src/core/scan/scanner';
import { ResultTable, type TableRow } from '../../src/core/scan/resultTable';
import { loadDatasetEmbeddings } from '../../src/core/similarity/datasetEmbeddings';
import { DatasetSession } from '../../src/extension/dataset/datasetSession';
import { splitFolders, splitOf } from '../../src/extension/dataset/datasetSimilarity';
import { runDatasetScan } from '../../src/extension/dataset/scanRunner';
import { InferenceClient, isInferenceError } from '../../src/extension/inference/inferenceClient';
import { silentLogger } from '../../src/extension/util/logger';
import type { DatasetHostMessage } from '../../src/shared/protocol';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';

const root = path.resolve(__dirname, '../..');

let tmp: string;
let data: string;
let resultsFile: string;
let cacheFile: string;
let outside: string;
let duplicate: { original: string; copy: string };
let corrupt: string;
let reference: BeitModel;
let client: InferenceClient;
let rows: TableRow[];

before(async () => {
  tmp = await tempDir('beit-similarity-worker-');
  data = path.join(tmp, 'data');
  // Split folders with class folders inside, as datasets on disk often are: data/train/cat, data/test/dog.
  const train = await writeSyntheticDataset(path.join(data, 'train'), { classes: ['tabby', 'balloon'], perClass: 5, width: 40, height: 30, seed: 3 });
  await writeSyntheticDataset(path.join(data, 'test'), { classes: ['tabby', 'balloon'], perClass: 5, width: 40, height: 30, seed: 4 });
  // The classic split bug: a training image copied into the test split.
  duplicate = { original: train[2], copy: path.join(data, 'test', 'balloon', 'copied.png') };
  await copyFile(duplicate.original, duplicate.copy);
  [outside] = await writeSyntheticDataset(path.join(tmp, 'elsewhere'), { classes: ['x'], perClass: 1, width: 40, height: 30, seed: 11 });
  corrupt = path.join(data, 'train', 'balloon', 'broken.png');
  await writeFile(corrupt, 'not pixels\n');

  const modelDir = await convertedTinyModel();
  reference = await BeitModel.load(modelDir, { provider: 'cpu' });
  client = new InferenceClient({ workerScript: path.join(root, 'src/extension/worker/inferenceWorker.ts'), execArgv: ['--import', 'tsx'], log: silentLogger });
  const state = await client.setModel({ source: { kind: 'folder', dir: modelDir }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } });
  assert.equal(state.kind, 'ready');
  resultsFile = path.join(tmp, 'results.jsonl');
  cacheFile = path.join(tmp, 'scan-cache.log');
  const outcome = await runDatasetScan(client, { roots: [data], resultsFile, cacheFile, topK: 5, batchSize: 4 });
  assert.equal(outcome.cancelled, false);
  const table = await ResultTable.open(resultsFile);
  rows = [];
  for await (const row of table.entries()) rows.push(row);
  await table.close();
  assert.equal(rows.length, 22);
});

after(async () => {
  await client?.dispose();
  await reference?.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const rowOf = (file: string) => rows.find((r) => r.image === file)!.row;

/** The stored (float16-rounded) unit vectors by table row, read here with the core's loader. */
async function storedVectors(): Promise<Map<number, Float32Array>> {
  const key = scanModelKey(reference, { fast: false, applyExifOrientation: true });
  const { set, rowOfEntry } = await loadDatasetEmbeddings({ resultsFile, cacheFile, modelKey: key, dim: reference.embeddingSize });
  const byRow = new Map<number, Float32Array>();
  rowOfEntry.forEach((row, entry) => byRow.set(row, set.vectors.slice(entry * set.dim, (entry + 1) * set.dim)));
  return byRow;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

function naiveTop(vectors: Map<number, Float32Array>, query: ArrayLike<number>, k: number, leaveOut: number): Array<{ row: number; similarity: number }> {
  return [...vectors]
    .filter(([row]) => row !== leaveOut)
    .map(([row, v]) => ({ row, similarity: cosine(query, v) }))
    .sort((a, b) => b.similarity - a.similarity || a.row - b.row)
    .slice(0, k);
}

describe('similarity calls in the real worker', () => {
  it('loads the embeddings of the scanned rows (error rows listed as missing) behind a handle', async () => {
    const info = await client.call('loadEmbeddings', { resultsFile, cacheFile, indexFile: path.join(tmp, 'results.index') });
    assert.equal(info.images, 21);
    assert.equal(info.missing, 1);
    assert.equal(info.dim, reference.embeddingSize);
    assert.match(info.missingExamples[0].image, /broken\.png$/);
    await client.call('releaseEmbeddings', { handle: info.handle });
  });

  it('neighbours of a row, of a file in the dataset and of a file outside it equal hand-computed cosines', async () => {
    const { handle } = await client.call('loadEmbeddings', { resultsFile, cacheFile });
    const vectors = await storedVectors();
    const query = rows.find((r) => r.image.startsWith(path.join(data, 'test', 'tabby') + path.sep))!.row;
    const byRow = await client.call('similarImages', { handle, query: { row: query }, k: 6 });
    const expected = naiveTop(vectors, vectors.get(query)!, 6, query);
    assert.deepEqual(byRow.map((n) => n.row), expected.map((n) => n.row));
    for (const [i, n] of byRow.entries()) assert.ok(Math.abs(n.similarity - expected[i].similarity) < 1e-5, `${n.similarity} vs ${expected[i].similarity}`);
    assert.ok(!byRow.some((n) => n.row === query), 'the query row is left out');

    // The same image named by its path: found among the rows, so the same answer.
    const byFile = await client.call('similarImages', { handle, query: { file: rows[query].image }, k: 6 });
    assert.deepEqual(byFile, byRow);

    // An image outside the scanned folder: embedded by the worker's model.
    const [fresh] = await reference.embedFiles([outside]);
    const far = await client.call('similarImages', { handle, query: { file: outside }, k: 4 });
    const expectedFar = naiveTop(vectors, fresh.embedding!, 4, -1);
    assert.deepEqual(far.map((n) => n.row), expectedFar.map((n) => n.row));
    for (const [i, n] of far.entries()) assert.ok(Math.abs(n.similarity - expectedFar[i].similarity) < 1e-4);

    // The exact copy is its original's nearest neighbour, at cosine 1.
    const [nearest] = await client.call('similarImages', { handle, query: { row: rowOf(duplicate.original) }, k: 1 });
    assert.equal(nearest.row, rowOf(duplicate.copy));
    assert.ok(nearest.similarity > 0.99999);

    await assert.rejects(client.call('similarImages', { handle, query: { row: rowOf(corrupt) }, k: 3 }), /no embedding/);
    await assert.rejects(client.call('similarImages', { handle, query: { file: corrupt }, k: 3 }), /broken\.png/);
    await assert.rejects(client.call('similarImages', { handle, query: { file: 'relative.png' }, k: 3 }), /absolute/);
  });

  it('duplicate groups and uniqueness by table row; a released handle, or one from before a model change, says EMBEDDINGS_GONE', async () => {
    const { handle } = await client.call('loadEmbeddings', { resultsFile, cacheFile });
    const groups = await client.call('duplicateGroups', { handle, threshold: 0.999999 });
    const exact = groups.find((g) => g.kind === 'exact');
    assert.ok(exact, JSON.stringify(groups));
    assert.deepEqual([...exact.rows].sort((a, b) => a - b), [rowOf(duplicate.original), rowOf(duplicate.copy)].sort((a, b) => a - b));
    assert.equal(exact.similarity, 1);

    const values = await client.call('uniqueness', { handle });
    assert.ok(values instanceof Float32Array);
    assert.ok(Number.isNaN(values[rowOf(corrupt)]), 'a row without an embedding has no uniqueness');
    for (const r of rows) if (r.row !== rowOf(corrupt)) assert.ok(values[r.row] >= 0 && values[r.row] <= 1, `${r.image}: ${values[r.row]}`);
    // An image with an exact copy is among the least unique.
    const ranked = rows.filter((r) => r.row !== rowOf(corrupt)).sort((a, b) => values[a.row] - values[b.row]);
    assert.ok(ranked.slice(0, 2).some((r) => r.row === rowOf(duplicate.original) || r.row === rowOf(duplicate.copy)));

    await client.call('releaseEmbeddings', { handle });
    await assert.rejects(client.call('uniqueness', { handle }), (err: unknown) => isInferenceError(err, 'EMBEDDINGS_GONE'));

    // A model change drops every handle: the embeddings were the old model's.
    const again = await client.call('loadEmbeddings', { resultsFile, cacheFile });
    await client.setModel({ source: { kind: 'folder', dir: await convertedTinyModel() }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } });
    await assert.rejects(client.call('similarImages', { handle: again.handle, query: { row: 0 }, k: 1 }), (err: unknown) => isInferenceError(err, 'EMBEDDINGS_GONE'));
  });
});

describe('the dataset view session with similarity', () => {
  it('Find Similar → a row set with the similarity column; uniqueness order; Duplicates with leakage across splits', async () => {
    const posted: DatasetHostMessage[] = [];
    const session = new DatasetSession('Dataset: data', data, {
      inference: client,
      post: (m) => void posted.push(m),
      openImage: () => undefined,
      copyText: async () => undefined,
      pickExportFile: async () => undefined,
      overrides: { get: () => ({}), set: () => undefined },
      log: silentLogger,
      embeddings: { resultsFile, cacheFile, indexFile: path.join(tmp, 'session.index') },
      similarTopK: () => 5,
    });
    const table = await ResultTable.open(resultsFile);
    try {
      await session.setTable(table);
      await session.loadSimilarity();
      const state = posted.filter((m) => m.type === 'similarity').pop();
      assert.ok(state?.type === 'similarity');
      assert.equal(state.state.status, 'ready');
      assert.equal(state.state.images, 21);
      assert.deepEqual(state.state.splits, ['test', 'train']);
      const generation = session.currentGeneration;

      const vectors = await storedVectors();
      const query = rowOf(duplicate.original);
      await session.receive({ type: 'findSimilar', generation, row: query });
      const rowSet = posted.filter((m) => m.type === 'rowSet').pop();
      assert.ok(rowSet?.type === 'rowSet');
      assert.equal(rowSet.set.kind, 'similar');
      assert.equal(rowSet.set.count, 5);
      assert.equal(rowSet.set.label, `Similar to ${path.basename(duplicate.original)}`);

      await session.receive({ type: 'query', requestId: 1, generation, query: { mode: 'all', filter: {}, sort: { key: 'given', descending: false }, rowSet: rowSet.set.id }, offset: 0, limit: 100 });
      const page = posted.filter((m) => m.type === 'page').pop();
      assert.ok(page?.type === 'page');
      const expected = naiveTop(vectors, vectors.get(query)!, 5, query);
      assert.deepEqual(page.rows.map((r) => r.row), expected.map((n) => n.row));
      for (const [i, r] of page.rows.entries()) assert.ok(Math.abs(r.similarity! - expected[i].similarity) < 1e-5);
      assert.ok(page.rows.every((r) => typeof r.uniqueness === 'number'));

      // Most unique first, error rows last.
      await session.receive({ type: 'query', requestId: 2, generation, query: { mode: 'all', filter: {}, sort: { key: 'uniqueness', descending: true } }, offset: 0, limit: 100 });
      const ranked = posted.filter((m) => m.type === 'page').pop();
      assert.ok(ranked?.type === 'page');
      assert.equal(ranked.total, 22);
      const values = ranked.rows.map((r) => r.uniqueness);
      assert.equal(values[values.length - 1], undefined, 'the broken file sorts last');
      for (let i = 1; i < values.length - 1; i++) assert.ok(values[i - 1]! >= values[i]!, `uniqueness not descending at ${i}`);

      await session.receive({ type: 'duplicates', requestId: 3, generation, threshold: 0.999999 });
      const dups = posted.filter((m) => m.type === 'duplicates').pop();
      assert.ok(dups?.type === 'duplicates');
      const group = dups.groups.find((g) => g.kind === 'exact')!;
      assert.deepEqual([...group.images].sort(), [duplicate.copy, duplicate.original].sort());
      assert.equal(group.leakage, true);
      assert.deepEqual(group.splits, ['test', 'train']);
      assert.ok(dups.leakage >= 1);

      // A group clicked in the tab: the table shows just its rows.
      await session.receive({ type: 'showRows', generation, rows: group.rows, label: 'Exact duplicates of a.png' });
      const groupSet = posted.filter((m) => m.type === 'rowSet').pop();
      assert.ok(groupSet?.type === 'rowSet' && groupSet.set.kind === 'group' && groupSet.set.count === 2);

      // Find Similar from the explorer for an image outside the dataset.
      assert.equal(await session.findSimilarToFile(outside), 5);
      const last = posted.filter((m) => m.type === 'rowSet').pop();
      assert.ok(last?.type === 'rowSet' && last.set.label === `Similar to ${path.basename(outside)}`);

      // A new table forgets the row sets (their ids named the old rows).
      await session.setTable(await ResultTable.open(resultsFile));
      posted.length = 0;
      await session.receive({ type: 'query', requestId: 4, generation: session.currentGeneration, query: { mode: 'all', filter: {}, sort: { key: 'given', descending: false }, rowSet: last.set.id }, offset: 0, limit: 10 });
      const error = posted.find((m) => m.type === 'error');
      assert.ok(error?.type === 'error' && /no longer held/.test(error.message));
      await session.currentTable?.close();
    } finally {
      session.dispose();
      await table.close();
    }
  });

  it('split folders: two or more split-named top-level folders; class folders are not splits', () => {
    assert.deepEqual(splitFolders(['train', 'val', 'README']), ['train', 'val']);
    assert.deepEqual(splitFolders(['Train', 'Test']), ['Test', 'Train']);
    assert.deepEqual(splitFolders(['tabby', 'balloon']), []);
    assert.deepEqual(splitFolders(['train']), [], 'one split is no split');
    assert.equal(splitOf('/d', '/d/train/cat/a.png', ['test', 'train']), 'train');
    assert.equal(splitOf('/d', '/d/extra/a.png', ['test', 'train']), '');
  });
});
