import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { loadPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { fromFloat16, toFloat16 } from '../../src/core/halfFloat';
import { ResultStore } from '../../src/core/scan/resultStore';
import { ResultTable } from '../../src/core/scan/resultTable';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { scanDataset, scanModelKey, type ScanModel, type ScanOptions, type ScanResult, type ScanSummary } from '../../src/core/scan/scanner';
import { loadDatasetEmbeddings, NO_HASH_REASON, NOT_STORED_REASON } from '../../src/core/similarity/datasetEmbeddings';
import { embeddingRow } from '../../src/core/similarity/embeddingSet';
import { collectScanEmbeddings } from '../../src/core/similarity/scanEmbeddings';
import { runScanJob } from '../../src/extension/worker/scanJob';
import { convertedTinyModel, expected, FIXTURE_DIR, FP16_U, maxAbsDiff, rawPixelValues, tempDir } from '../helpers/fixtures';
import { countingModel, fakeModel } from '../helpers/scanFixtures';

async function scan(options: ScanOptions): Promise<{ results: ScanResult[]; summary: ScanSummary }> {
  const results: ScanResult[] = [];
  const summary = await scanDataset({ ...options, onResult: (r) => void results.push(r) });
  return { results, summary };
}

async function withStore<T>(file: string, fn: (store: ResultStore) => Promise<T>): Promise<T> {
  const store = await ResultStore.open(file);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const byImage = (results: readonly ScanResult[]) => new Map(results.map((r) => [r.image, r]));
const half = (v: Float32Array) => fromFloat16(toFloat16(v));
/** The reference entry an image gets with the default preprocessing (EXIF applied, 16-bit scaled), as embed.test.ts picks it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const defaultEntry = (i: any) => i.variants?.exif_transposed ?? i.variants?.scaled_16bit_to_8bit ?? i;

/** Byte offsets of the log lines holding embedding records, in file order. */
function embeddingLines(cacheFile: string): Array<{ start: number; end: number; hash: string }> {
  const text = readFileSync(cacheFile, 'latin1');
  const out: Array<{ start: number; end: number; hash: string }> = [];
  let start = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; start = nl + 1, nl = text.indexOf('\n', start)) {
    const body = text.slice(start + 9, nl);
    if (body.startsWith('{"e":')) out.push({ start, end: nl + 1, hash: JSON.parse(body).e });
  }
  return out;
}

/**
 * train/ and val/ of fixture images: five distinct images in train, in val one more plus an exact copy of a
 * train image (the same content hash under another root) and two files that cannot be decoded.
 */
function makeSplitDataset(dir: string): { train: string; val: string; good: string[]; bad: string[]; reference: Map<string, string> } {
  const train = path.join(dir, 'train');
  const val = path.join(dir, 'val');
  mkdirSync(path.join(train, 'a'), { recursive: true });
  mkdirSync(path.join(val, 'b'), { recursive: true });
  const reference = new Map<string, string>();
  const good: string[] = [];
  const put = (fixture: string, to: string) => {
    copyFileSync(path.join(FIXTURE_DIR, fixture), to);
    reference.set(to, fixture);
    good.push(to);
  };
  const files = expected.images.map((i: { file: string }) => i.file) as string[];
  files.slice(0, 5).forEach((f) => put(f, path.join(train, 'a', path.basename(f))));
  put(files[5], path.join(val, 'b', path.basename(files[5])));
  put(files[0], path.join(val, 'b', `copy_of_${path.basename(files[0])}`));
  const bad = [path.join(train, 'a', 'broken.png'), path.join(val, 'b', 'empty.jpg')];
  writeFileSync(bad[0], readFileSync(path.join(FIXTURE_DIR, files[1])).subarray(0, 120));
  writeFileSync(bad[1], '');
  return { train, val, good, bad, reference };
}

describe('embeddings in the scan (tiny real model)', () => {
  let model: BeitModel;
  let data: ReturnType<typeof makeSplitDataset>;
  let roots: string[];
  let cacheFile: string;
  let first: { results: ScanResult[]; summary: ScanSummary };

  before(async () => {
    model = await BeitModel.load(await convertedTinyModel());
    data = makeSplitDataset(await tempDir('beit-emb-data-'));
    roots = [data.train, data.val];
    cacheFile = path.join(await tempDir('beit-emb-cache-'), 'cache.log');
  });
  after(async () => {
    await model.dispose();
  });
  /** Every distinct image went to the model (the exact copy may have been answered from its original's record). */
  const assertEveryImageRan = (images: number, what: string) => {
    const distinct = new Set(data.good.map(sha256)).size;
    assert.ok(images >= distinct && images <= data.good.length, `${what}: ${images} images went to the model`);
  };

  it('one model run gives the logits and the pooled output, matching the PyTorch reference within 1e-4', async () => {
    const { logits, embeddings } = await model.logitsAndEmbeddings(rawPixelValues(), 1);
    assert.deepEqual(logits, await model.logits(rawPixelValues(), 1));
    assert.deepEqual(embeddings, await model.embeddings(rawPixelValues(), 1));
    const d = maxAbsDiff(embeddings, expected.raw_input_check.pooled_output);
    assert.ok(d <= 1e-4, `pooled_output diff ${d}`);
  });

  it('stores each image embedding: BeitModel.embeddings of the image rounded to float16, with hash and root', async () => {
    const counting = countingModel(model, { embed: true });
    first = await withStore(cacheFile, (store) => scan({ roots, model: counting, store, batchSize: 1 }));
    const { results, summary } = first;
    assert.equal(summary.embeddings, 'stored');
    assert.equal(results.length, data.good.length + data.bad.length);
    // The copy and its original share one model run when one is answered before the other is looked up.
    assert.equal(counting.images, results.filter((r) => r.source === 'model').length);
    assert.ok(counting.images >= new Set(data.good.map(sha256)).size);
    const seen = byImage(results);
    for (const file of data.good) {
      const r = seen.get(file)!;
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.hash, sha256(file));
      assert.equal(r.root, file.startsWith(data.val) ? 1 : 0);
      assert.equal(r.rootName, roots[r.root]);
      assert.ok(r.embedding instanceof Float32Array && r.embedding.length === model.embeddingSize);
      const [alone] = await model.embedFiles([file], { batchSize: 1 });
      assert.deepEqual(r.embedding, half(alone.embedding!), `${file}: the float16-rounded embedding of the image alone`);
      const entry = defaultEntry(expected.images.find((i: { file: string }) => i.file === data.reference.get(file)));
      const ref: number[] = entry.pooled_output_first8;
      const tolerance = 1e-4 + Math.max(...ref.map(Math.abs)) * FP16_U;
      const d = maxAbsDiff(r.embedding.subarray(0, 8), ref);
      assert.ok(d <= tolerance, `${file}: pooled_output_first8 diff ${d} > ${tolerance}`);
    }
    for (const file of data.bad) {
      const r = seen.get(file)!;
      assert.ok(r.error, `${file} is an error row`);
      assert.equal(r.embedding, undefined);
      assert.equal(r.root, file.startsWith(data.val) ? 1 : 0);
    }
    assert.equal(seen.get(data.bad[0])!.hash, sha256(data.bad[0]), 'a file that was read has its hash even when it does not decode');
    const copy = data.good.find((f) => path.basename(f).startsWith('copy_of_'))!;
    const original = path.join(data.train, 'a', path.basename(copy).slice('copy_of_'.length));
    assert.equal(seen.get(copy)!.hash, seen.get(original)!.hash);
    assert.deepEqual(seen.get(copy)!.embedding, seen.get(original)!.embedding);
  });

  it('batches give the same stored vectors up to one float16 step', async () => {
    const { results } = await scan({ roots, model, batchSize: 4 });
    const firstBy = byImage(first.results);
    for (const r of results.filter((x) => x.embedding)) {
      const a = firstBy.get(r.image)!.embedding!;
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - r.embedding![i]) <= Math.abs(a[i]) * FP16_U * 1.01 + 1e-7, `${r.image}[${i}]: ${a[i]} vs ${r.embedding![i]}`);
    }
  });

  it('a re-scan serves the embeddings from the cache without calling the model; a new model key does not', async () => {
    const counting = countingModel(model, { embed: true });
    const again = await withStore(cacheFile, (store) => scan({ roots, model: counting, store, batchSize: 4 }));
    assert.equal(counting.images, 0, 'the model was not called');
    const firstBy = byImage(first.results);
    for (const r of again.results) {
      if (r.error !== undefined) continue;
      assert.equal(r.source, 'cache');
      assert.deepEqual(r.embedding, firstBy.get(r.image)!.embedding, `${r.image}: a cached scan gives the fresh scan's vector exactly`);
      assert.equal(r.hash, firstBy.get(r.image)!.hash);
    }
    const other = countingModel(model, { embed: true, modelId: 'another-model' });
    const otherScan = await withStore(cacheFile, (store) => scan({ roots, model: other, store, batchSize: 4 }));
    assertEveryImageRan(other.images, 'a different model key re-embeds every image');
    assert.ok(otherScan.results.every((r) => r.error !== undefined || r.source === 'model'));
    // And the original model's records are still there.
    const back = countingModel(model, { embed: true });
    await withStore(cacheFile, (store) => scan({ roots, model: back, store }));
    assert.equal(back.images, 0);
  });

  it('a cache with predictions but no embeddings is not a hit while embeddings are wanted', async () => {
    const file = path.join(await tempDir('beit-emb-old-'), 'cache.log');
    const plain = countingModel(model, { embed: true });
    const off = await withStore(file, (store) => scan({ roots, model: plain, store, embeddings: false }));
    assert.equal(off.summary.embeddings, 'off');
    assert.ok(off.results.every((r) => r.embedding === undefined));
    await withStore(file, async (store) => assert.equal(store.stats.embeddings, 0));
    const on = countingModel(model, { embed: true });
    const filled = await withStore(file, (store) => scan({ roots, model: on, store }));
    assertEveryImageRan(on.images, 'every classified image went to the model again for its embedding');
    assert.ok(filled.results.every((r) => r.error !== undefined || r.embedding));
    const cached = countingModel(model, { embed: true });
    await withStore(file, (store) => scan({ roots, model: cached, store }));
    assert.equal(cached.images, 0);
    // Without embeddings wanted, the old predictions are hits as before.
    const noEmbed = countingModel(model, { embed: true });
    await withStore(file, (store) => scan({ roots, model: noEmbed, store, embeddings: false }));
    assert.equal(noEmbed.images, 0);
  });

  /** A cache of train/ alone (five distinct images, so each embedding has exactly one record), batches of one. */
  const trainCache = async (prefix: string) => {
    const file = path.join(await tempDir(prefix), 'cache.log');
    const { results } = await withStore(file, (store) => scan({ roots: [data.train], model, store, batchSize: 1 }));
    const lines = embeddingLines(file);
    assert.equal(new Set(lines.map((l) => l.hash)).size, lines.length);
    return { file, lines, firstBy: byImage(results) };
  };

  it('a torn embedding record at the end of the log is cut off on open and that image re-embedded', async () => {
    const { file, lines, firstBy } = await trainCache('beit-emb-torn-');
    const last = lines.at(-1)!;
    assert.equal(last.end, statSync(file).size, 'the last record of the log is an embedding');
    truncateSync(file, last.start + Math.floor((last.end - last.start) / 2));
    const counting = countingModel(model, { embed: true });
    const { results } = await withStore(file, async (store) => {
      assert.ok(store.stats.truncatedBytes > 0);
      assert.equal(store.stats.embeddings, lines.length - 1);
      assert.equal(await store.lookupEmbedding(last.hash, scanModelKey(model), model.embeddingSize), undefined);
      // Batches of one, as the first scan ran, so a re-embedded vector is comparable bit for bit.
      return scan({ roots: [data.train], model: counting, store, batchSize: 1 });
    });
    assert.equal(counting.images, 1, 'only the image whose record was torn went to the model');
    assert.deepEqual(results.filter((r) => r.source === 'model').map((r) => r.hash), [last.hash]);
    for (const r of results.filter((x) => x.error === undefined)) assert.deepEqual(r.embedding, firstBy.get(r.image)!.embedding, r.image);
  });

  it('a bit flip inside an embedding record is caught by its checksum, on open and after it; never a wrong vector', async () => {
    const { file, lines, firstBy } = await trainCache('beit-emb-flip-');
    assert.ok(lines.length >= 3);
    const flip = (line: { start: number; end: number }) => {
      const bytes = readFileSync(file);
      // Inside the base64 text, a valid base64 character for another: still JSON, still a vector, but not the stored one.
      const at = line.end - 10;
      bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
      writeFileSync(file, bytes);
    };
    const key = scanModelKey(model);
    flip(lines[0]);
    const counting = countingModel(model, { embed: true });
    const { results } = await withStore(file, async (store) => {
      assert.equal(store.stats.corrupt, 1);
      assert.equal(await store.lookupEmbedding(lines[0].hash, key, model.embeddingSize), undefined);
      // Flipped while open: the lookup reads the record back and checks it again.
      assert.ok(await store.lookupEmbedding(lines[1].hash, key, model.embeddingSize));
      flip(lines[1]);
      assert.equal(await store.lookupEmbedding(lines[1].hash, key, model.embeddingSize), undefined);
      return scan({ roots: [data.train], model: counting, store, batchSize: 1 });
    });
    const again = results.filter((r) => r.source === 'model');
    assert.equal(counting.images, 2);
    assert.deepEqual(new Set(again.map((r) => r.hash)), new Set([lines[0].hash, lines[1].hash]), 'exactly the images whose records were damaged were embedded again');
    for (const r of results.filter((x) => x.error === undefined)) assert.deepEqual(r.embedding, firstBy.get(r.image)!.embedding, r.image);
  });

  it("the worker's scan job stores embeddings; loadDatasetEmbeddings joins its results file with the cache", async () => {
    const dir = await tempDir('beit-emb-job-');
    const resultsFile = path.join(dir, 'results.jsonl');
    const jobCache = path.join(dir, 'cache.log');
    await ResultTable.create(resultsFile).then((t) => t.close());
    const counting = countingModel(model, { embed: true });
    const summary = await runScanJob({ roots, resultsFile, cacheFile: jobCache, topK: 5, batchSize: 4 }, { model: counting, preprocess: {}, signal: new AbortController().signal, onProgress: () => undefined });
    assert.equal(summary.embeddings, 'stored');
    assertEveryImageRan(counting.images, 'a first scan');
    // A row from a results file written before rows had hashes.
    await appendFile(resultsFile, `${JSON.stringify({ image: path.join(data.val, 'old.png'), folder: 'b', folderLabel: 'b', top: [{ index: 0, label: 'x', score: 1 }] })}\n`);
    // A scan holding the cache's lock must not stop the reader.
    const writer = await ResultStore.open(jobCache);
    try {
      assert.equal(writer.isReadOnly, false);
      const loaded = await loadDatasetEmbeddings({ resultsFile, cacheFile: jobCache, modelKey: scanModelKey(model), dim: model.embeddingSize, roots });
      const { set, rowOfEntry, missing } = loaded;
      assert.equal(set.count, data.good.length);
      assert.equal(set.dim, model.embeddingSize);
      assert.equal(set.vectors.length, set.count * set.dim);
      assert.deepEqual(set.rootNames, roots);
      assert.equal(rowOfEntry.length, set.count);
      const table = await ResultTable.open(resultsFile);
      try {
        const rows = await table.read(rowOfEntry);
        const firstBy = byImage(first.results);
        rows.forEach((row, i) => {
          assert.equal(row.image, set.images[i], 'rowOfEntry points at the row of the same image');
          assert.equal(row.sha256, set.hashes[i]);
          assert.equal(set.roots[i], row.image.startsWith(data.val) ? 1 : 0);
          assert.equal(row.root, roots[set.roots[i]]);
          const fresh = firstBy.get(row.image)!.embedding!;
          const norm = Math.hypot(...fresh);
          const v = embeddingRow(set, i);
          assert.ok(maxAbsDiff(v, Array.from(fresh, (x) => x / norm)) <= 1e-6, `${row.image}: the stored vector, normalised`);
        });
      } finally {
        await table.close();
      }
      assert.deepEqual(missing.map((m) => m.image).sort(), [...data.bad, path.join(data.val, 'old.png')].sort());
      for (const m of missing) {
        if (data.bad.includes(m.image)) assert.match(m.reason, /./, 'the error row reason');
        else assert.equal(m.reason, NO_HASH_REASON);
      }
      assert.ok(missing.every((m) => Number.isInteger(m.row)));
    } finally {
      await writer.close();
    }
  });

  it('a graph without the embedding output still scans; its rows are listed as missing, not set rows', async () => {
    const dir = await tempDir('beit-emb-noemb-');
    const resultsFile = path.join(dir, 'results.jsonl');
    const file = path.join(dir, 'cache.log');
    const plain = countingModel(model);
    const table = await ResultTable.create(resultsFile);
    const { results, summary } = await withStore(file, (store) => scan({ roots, model: plain, store, onResult: undefined }));
    for (const r of results) table.append(r);
    await table.close();
    assert.equal(summary.embeddings, 'unavailable');
    assert.equal(summary.classified, data.good.length);
    assert.ok(results.every((r) => r.embedding === undefined));
    assert.ok(results.filter((r) => r.error === undefined).every((r) => r.hash && r.top?.length));
    const { set, missing } = await loadDatasetEmbeddings({ resultsFile, cacheFile: file, modelKey: scanModelKey(model), dim: model.embeddingSize });
    assert.equal(set.count, 0);
    assert.equal(missing.filter((m) => m.reason === NOT_STORED_REASON).length, data.good.length);
    await assert.rejects(collectScanEmbeddings({ roots, model: plain }), /no pooled_output output/);
  });

  it('collectScanEmbeddings: one set of every image with an embedding, errors apart; from the cache the second time', async () => {
    const file = path.join(await tempDir('beit-emb-collect-'), 'cache.log');
    const counting = countingModel(model, { embed: true });
    const one = await withStore(file, (store) => collectScanEmbeddings({ roots, model: counting, store, batchSize: 4 }));
    assert.equal(one.set.count, data.good.length);
    assert.equal(one.set.vectors.length, one.set.count * model.embeddingSize);
    assert.deepEqual([...one.set.images].sort(), [...data.good].sort());
    assert.deepEqual(one.errors.map((e) => e.image).sort(), [...data.bad].sort());
    assert.deepEqual(one.set.rootNames, roots);
    const counting2 = countingModel(model, { embed: true });
    const two = await withStore(file, (store) => collectScanEmbeddings({ roots, model: counting2, store }));
    assert.equal(counting2.images, 0);
    assert.equal(two.summary.classified, 0);
    assert.equal(two.set.count, data.good.length);
    const rowOf = new Map(one.set.images.map((img, i) => [img, i]));
    two.set.images.forEach((img, i) => assert.deepEqual(embeddingRow(two.set, i), embeddingRow(one.set, rowOf.get(img)!), img));
  });
});

describe('embedding storage size', () => {
  /** A fake model with real-size (768) embeddings derived from the input, so records have the real layout. */
  async function fakeEmbeddingModel(dim: number): Promise<ScanModel & { images: number }> {
    const preprocessor = await loadPreprocessorConfig(path.join(await convertedTinyModel(), 'preprocessor_config.json'));
    const base = fakeModel(preprocessor, ['a', 'b', 'c']);
    return Object.assign(base, {
      canEmbed: true,
      embeddingSize: dim,
      async logitsAndEmbeddings(pixelValues: Float32Array, n: number) {
        const logits = await base.logits(pixelValues, n);
        const per = pixelValues.length / n;
        const embeddings = new Float32Array(n * dim);
        for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) embeddings[i * dim + d] = pixelValues[i * per + ((d * 131) % per)] + d / dim;
        return { logits, embeddings };
      },
    });
  }

  it('measures the bytes per image that embeddings add to the cache log (768-d: one record of ~2.2 kB)', async () => {
    const dir = await tempDir('beit-emb-size-');
    const images = path.join(dir, 'images');
    const n = (await writeSyntheticDataset(images, { classes: ['a', 'b'], perClass: 20, width: 40, height: 40 })).length;
    const sizes: Record<string, number> = {};
    for (const embeddings of [false, true]) {
      const file = path.join(dir, `cache-${embeddings}.log`);
      const m = await fakeEmbeddingModel(768);
      await withStore(file, (store) => scan({ roots: [images], model: m, store, embeddings, pool: { workers: 0 } }));
      sizes[String(embeddings)] = statSync(file).size;
    }
    const perImage = (sizes.true - sizes.false) / n;
    const total = sizes.true / n;
    console.log(`embedding bytes per image (768-d float16, base64 in the log): ${perImage.toFixed(0)}; whole cache per image with embeddings: ${total.toFixed(0)}`);
    // 1536 bytes of float16 are 2048 base64 characters; the rest is the key (sha256 + model key) and the checksum.
    assert.ok(perImage >= 2048 && perImage <= 2300, `${perImage} bytes per image`);
  });
});
