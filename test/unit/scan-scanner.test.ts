import assert from 'node:assert/strict';
import { readFileSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { encodePng } from '../../src/core/image';
import { fsPath } from '../../src/core/scan/fileNames';
import { ResultStore } from '../../src/core/scan/resultStore';
import { scanDataset, type ScanOptions, type ScanProgress, type ScanResult, type ScanSummary } from '../../src/core/scan/scanner';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { walkImages } from '../../src/core/scan/walk';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';
import { countingModel, makeScanFixture, type ScanFixture } from '../helpers/scanFixtures';

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

const byImage = (results: ScanResult[]) => new Map(results.map((r) => [r.image, r]));

describe('scanDataset (tiny real model, generated ImageFolder fixture)', () => {
  let fixture: ScanFixture;
  let model: BeitModel;
  let cacheFile: string;
  let first: { results: ScanResult[]; summary: ScanSummary };
  let classifiable: number;

  before(async () => {
    fixture = await makeScanFixture(await tempDir('beit-scan-'));
    model = await BeitModel.load(await convertedTinyModel());
    cacheFile = path.join(await tempDir('beit-scan-cache-'), 'cache.log');
    classifiable = fixture.expected.length - Object.keys(fixture.errors).length;
  });
  after(async () => {
    await model.dispose();
  });

  it('accounts for every file exactly once, with error rows for bad files', async () => {
    assert.ok(fixture.expected.length >= 200);
    const counting = countingModel(model);
    const progress: ScanProgress[] = [];
    first = await withStore(cacheFile, (store) => scan({ roots: [fixture.root], model: counting, store, topK: 5, batchSize: 8, onProgress: (p) => progress.push(p), progressIntervalMs: 20 }));
    const { results, summary } = first;
    const images = results.map((r) => r.image);
    assert.equal(new Set(images).size, images.length, 'no file twice');
    assert.deepEqual([...images].sort(), [...fixture.expected].sort());
    assert.deepEqual(
      results.map((r) => r.seq).sort((a, b) => a - b),
      results.map((_, i) => i),
    );

    for (const r of results) {
      const reason = fixture.errors[r.image];
      if (reason) {
        assert.equal(r.top, undefined);
        assert.match(r.error ?? '', reason, r.image);
        assert.ok(r.errorCode, r.image);
      } else {
        assert.equal(r.error, undefined, `${r.image}: ${r.error}`);
        assert.equal(r.top?.length, 5);
      }
      assert.equal(r.folderLabel, path.basename(path.dirname(r.image)));
    }
    assert.equal(summary.errors, Object.keys(fixture.errors).length);
    assert.equal(summary.classified, classifiable);
    assert.equal(summary.cached, 0);
    assert.equal(counting.images, classifiable, 'each image through the model once');
    assert.ok(progress.length > 0 && progress.at(-1)!.finished && progress.at(-1)!.done === fixture.expected.length);
    assert.ok(progress.some((p) => p.total === fixture.expected.length));
  });

  it('gives the same top-K as BeitModel.classify on the same file (sample)', async () => {
    const results = byImage(first.results);
    const sample = [fixture.nonUtf8, fixture.longName, ...Object.keys(fixture.misfiled), ...fixture.expected.filter((_, i) => i % 23 === 0)].filter((f) => !fixture.errors[f]);
    assert.ok(sample.length >= 12);
    for (const file of sample) {
      const reference = await model.classify(readFileSync(fsPath(file)), 5);
      const got = results.get(file)!.top!;
      assert.deepEqual(
        got.map((p) => p.index),
        reference.map((p) => p.index),
        file,
      );
      got.forEach((p, i) => assert.ok(Math.abs(p.score - reference[i].score) < 1e-5, `${file} #${i}: ${p.score} vs ${reference[i].score}`));
      assert.deepEqual(
        got.map((p) => p.label),
        reference.map((p) => p.label),
      );
    }
  });

  it('re-scans an unchanged folder from the cache alone, without invoking the model', async () => {
    const counting = countingModel(model);
    const again = await withStore(cacheFile, (store) => scan({ roots: [fixture.root], model: counting, store, topK: 5 }));
    assert.equal(counting.images, 0);
    assert.equal(again.summary.classified, 0);
    assert.equal(again.summary.cached, classifiable);
    assert.equal(again.summary.errors, Object.keys(fixture.errors).length);
    const before = byImage(first.results);
    for (const r of again.results) {
      assert.deepEqual(r.top, before.get(r.image)!.top, r.image);
      assert.equal(r.error, before.get(r.image)!.error);
    }
    // Fewer labels than cached are served from the cache too; more are not.
    const fewer = countingModel(model);
    await withStore(cacheFile, (store) => scan({ roots: [fixture.root], model: fewer, store, topK: 3 }));
    assert.equal(fewer.images, 0);
  });

  it('re-classifies exactly the one file that changed; a touched but identical file is only re-hashed', async () => {
    const changed = path.join(fixture.root, 'balloon', 'balloon_00007.png');
    const touched = path.join(fixture.root, 'balloon', 'balloon_00008.png');
    const rgb = new Uint8Array(40 * 30 * 3).map((_, i) => (i * 13) & 255);
    writeFileSync(changed, await encodePng(rgb, 40, 30, 3));
    const future = new Date(Date.now() + 60_000);
    utimesSync(touched, future, future);
    const counting = countingModel(model);
    const { results, summary } = await withStore(cacheFile, (store) => scan({ roots: [fixture.root], model: counting, store, topK: 5 }));
    assert.equal(counting.images, 1);
    assert.equal(summary.classified, 1);
    const r = byImage(results);
    assert.equal(r.get(changed)!.source, 'model');
    assert.equal(r.get(touched)!.source, 'cache');
    const reference = await model.classify(changed, 5);
    assert.deepEqual(r.get(changed)!.top!.map((p) => p.index), reference.map((p) => p.index));
  });

  it('misses the cache for a different model id, and for a different preprocessing variant', async () => {
    const other = countingModel(model, { modelId: 'someone-else@abc' });
    await withStore(cacheFile, (store) => scan({ roots: [fixture.root], model: other, store, topK: 5 }));
    assert.equal(other.images, classifiable);
    const fast = countingModel(model);
    await withStore(cacheFile, (store) => scan({ roots: [path.join(fixture.root, 'xyz')], model: fast, store, topK: 5, preprocess: { fast: true } }));
    assert.ok(fast.images > 40);
  });

  it('makes a file that vanishes between walk and read an error row', async () => {
    const dir = await tempDir('beit-scan-vanish-');
    const files = await writeSyntheticDataset(dir, { classes: ['a'], perClass: 6, width: 16, height: 16 });
    const victim = files[2];
    const walk: typeof walkImages = async function* (roots, options) {
      for await (const entry of walkImages(roots, options)) {
        if (entry.path === victim) unlinkSync(victim);
        yield entry;
      }
    };
    const { results, summary } = await scan({ roots: [dir], model, topK: 3, walk });
    assert.equal(results.length, 6);
    const row = results.find((r) => r.image === victim)!;
    assert.equal(row.errorCode, 'FILE_NOT_FOUND');
    assert.match(row.error!, /not found/);
    assert.equal(summary.classified, 5);
  });

  it('cancels promptly on abort, keeps what was done, and the next scan resumes', async () => {
    const file = path.join(await tempDir('beit-scan-cancel-'), 'cache.log');
    const slow = countingModel(model, { delayMs: 40 });
    const controller = new AbortController();
    let abortedAt = 0;
    const seen: ScanResult[] = [];
    const summary = await withStore(file, (store) =>
      scanDataset({
        roots: [fixture.root],
        model: slow,
        store,
        topK: 5,
        batchSize: 4,
        signal: controller.signal,
        onResult: (r) => {
          seen.push(r);
          if (seen.length === 20) {
            abortedAt = performance.now();
            controller.abort();
          }
        },
      }),
    );
    const stopMs = performance.now() - abortedAt;
    assert.ok(summary.cancelled);
    assert.ok(stopMs < 1000, `stopped ${stopMs.toFixed(0)} ms after abort`);
    assert.ok(seen.length >= 20 && seen.length < fixture.expected.length / 2, `${seen.length} results before stopping`);
    const classifiedBefore = seen.filter((r) => r.source === 'model').length;

    const resume = countingModel(model);
    const next = await withStore(file, (store) => scan({ roots: [fixture.root], model: resume, store, topK: 5 }));
    assert.ok(!next.summary.cancelled);
    assert.equal(resume.images, classifiable - classifiedBefore, 'only what the cancelled scan had not done');
    const images = next.results.map((r) => r.image);
    assert.deepEqual([...images].sort(), [...fixture.expected].sort());
    for (const r of seen.filter((x) => x.source === 'model')) assert.equal(byImage(next.results).get(r.image)!.source, 'cache');
  });

  it('retries a failing batch image by image, and fails outright when the model fails on everything', async () => {
    const dir = await tempDir('beit-scan-retry-');
    await writeSyntheticDataset(dir, { classes: ['a'], perClass: 10, width: 16, height: 16 });
    const batchShy = { ...model, modelId: model.modelId, labels: model.labels, directory: model.directory, logits: (v: Float32Array, n: number) => (n > 1 ? Promise.reject(new Error('batch too big')) : model.logits(v, n)) };
    const ok = await scan({ roots: [dir], model: batchShy, topK: 3, batchSize: 4 });
    assert.equal(ok.summary.classified, 10);
    assert.equal(ok.summary.errors, 0);
    const broken = { ...batchShy, logits: () => Promise.reject(new Error('no session')) };
    await assert.rejects(scan({ roots: [dir], model: broken, topK: 3, batchSize: 4 }), /no session/);
  });

  it('reports a worker script that cannot start as a failure, not as error rows', async () => {
    await assert.rejects(scan({ roots: [path.join(fixture.root, 'tabby')], model, pool: { workers: 1, workerScript: path.join(fixture.root, 'missing-worker.js') } }), /failed to start/);
  });

  it('gives identical results with in-process preprocessing (workers: 0)', async () => {
    const dir = path.join(fixture.root, 'river_otters');
    const inProcess = await scan({ roots: [dir], model, topK: 5, pool: { workers: 0 } });
    const pooled = byImage(first.results);
    for (const r of inProcess.results) if (r.top) assert.deepEqual(r.top.map((p) => p.index), pooled.get(r.image)!.top!.map((p) => p.index));
  });
});
