/**
 * The extension's load and fault paths against the real worker and tiny model: a folder scan that
 * survives a worker kill without losing or duplicating a result, 200 concurrent classify requests
 * for distinct images, 1,000 rapid hovers, and ten explanation panels at once. Around each load the
 * extension host's memory (after forced GC) and the worker's RSS are measured and must return near
 * their baseline; the figures are printed as test diagnostics for the README.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import type { Prediction } from '../../src/core/predictions';
import { resultsCsv, classifySelection } from '../../src/extension/commands/classifySelection';
import { HoverPreviews, previewCacheKey } from '../../src/extension/hover/hoverPreviews';
import { InferenceClient, InferenceService } from '../../src/extension/inference/inferenceClient';
import { ExplanationSession } from '../../src/extension/panel/explanationSession';
import { silentLogger } from '../../src/extension/util/logger';
import { ExtensionToWebviewMessage } from '../../src/shared/protocol';
import { mb, MB, rssOfProcess, snapshot } from '../helpers/memory';

/**
 * How far memory may stay above its pre-load baseline once a load is over. The host keeps only bounded
 * caches (hover LRU, file hashes); anything beyond these bounds would be requests, listeners or results
 * kept alive. The worker's RSS also holds onnxruntime's and libvips' arenas, which are warm before the
 * baseline is taken, so growth there means tensors or buffers that were not released.
 */
const HOST_HEAP_BOUND = 8 * MB;
const HOST_RSS_BOUND = 48 * MB;
const WORKER_RSS_BOUND = 64 * MB;

const root = path.resolve(__dirname, '../..');
let tmp: string;
let reference: BeitModel;
let client: InferenceClient;
let files: string[];

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'beit-lens-load-'));
  const modelDir = path.join(tmp, 'model');
  await convertModel({ from: path.join(root, 'test/fixtures/beit-tiny'), out: modelDir });
  reference = await BeitModel.load(modelDir, { provider: 'cpu' });
  const dir = path.join(tmp, 'images');
  await mkdir(dir);
  files = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const file = path.join(dir, `img-${String(i).padStart(3, '0')}.png`);
      const pixels = Buffer.alloc(32 * 24 * 3);
      for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 3) + i * 17) % 256;
      await sharp(pixels, { raw: { width: 32, height: 24, channels: 3 } }).png().toFile(file);
      return file;
    }),
  );
  client = new InferenceClient({ workerScript: path.join(root, 'src/extension/worker/inferenceWorker.ts'), execArgv: ['--import', 'tsx'], log: silentLogger });
  const state = await client.setModel({ source: { kind: 'folder', dir: modelDir }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } });
  assert.equal(state.kind, 'ready');
});

after(async () => {
  await client?.dispose();
  await reference?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/**
 * Runs a load and measures the host (forced GC, then RSS and heap) and the worker (RSS) before and after,
 * once the client is idle again. The worker must be the same process throughout: no crash hid a leak.
 */
async function measuredLoad<T>(t: TestContext, label: string, load: () => Promise<T>): Promise<T> {
  await client.whenSettled();
  const pid = client.workerPid!;
  const host0 = await snapshot();
  const worker0 = rssOfProcess(pid);
  const result = await load();
  while (client.queuedCount > 0) await sleep(10);
  await client.whenSettled();
  // Give the worker a moment to drop per-request buffers after its last reply.
  await sleep(200);
  assert.equal(client.workerPid, pid, 'the worker restarted during the load');
  const host1 = await snapshot();
  const worker1 = rssOfProcess(pid);
  t.diagnostic(
    `load ${label}: host RSS ${mb(host0.rss)} -> ${mb(host1.rss)}, host heap ${mb(host0.heapUsed)} -> ${mb(host1.heapUsed)}, worker RSS ${mb(worker0)} -> ${mb(worker1)}`,
  );
  assert.ok(host1.heapUsed - host0.heapUsed < HOST_HEAP_BOUND, `host heap grew ${mb(host1.heapUsed - host0.heapUsed)}`);
  assert.ok(host1.rss - host0.rss < HOST_RSS_BOUND, `host RSS grew ${mb(host1.rss - host0.rss)}`);
  assert.ok(worker1 - worker0 < WORKER_RSS_BOUND, `worker RSS grew ${mb(worker1 - worker0)}`);
  return result;
}

/** Batched inference differs from single-image inference in the last float bits. */
function assertSamePredictions(actual: Prediction[], expected: Prediction[]): void {
  assert.deepEqual(actual.map((p) => [p.index, p.label]), expected.map((p) => [p.index, p.label]));
  actual.forEach((p, i) => assert.ok(Math.abs(p.score - expected[i].score) < 1e-5, `${p.score} vs ${expected[i].score}`));
}

describe('under load and faults', () => {
  it('finishes a folder scan through a worker kill with no result lost or duplicated', async () => {
    const withBroken = [...files.slice(0, 60), path.join(tmp, 'missing.png'), ...files.slice(60, 120)];
    let killed = false;
    const crashesBefore = client.stats.crashes;
    const scan = await classifySelection(client, withBroken, {
      topK: 3,
      batchSize: 8,
      onProgress: (done) => {
        if (!killed && done >= 40) killed = client.kill();
      },
    });
    assert.ok(killed);
    assert.equal(client.stats.crashes, crashesBefore + 1);
    assert.equal(scan.cancelled, false);
    assert.ok(scan.batchesRetried >= 1);
    assert.deepEqual(scan.results.map((r) => r.image), withBroken);
    for (const r of scan.results) {
      if (r.image.endsWith('missing.png')) assert.match(r.error ?? '', /not found/);
      else assertSamePredictions(r.top!, await reference.classify(r.image, 3));
    }
    const csv = resultsCsv(scan.results, 3).trim().split('\n');
    assert.equal(csv.length, withBroken.length + 1);
    assert.equal(csv[0], 'file,label1,score1,label2,score2,label3,score3,error');
  });

  it('stops a scan when cancelled and reports what it has', async () => {
    const controller = new AbortController();
    const scan = await classifySelection(client, files, { topK: 1, batchSize: 4, signal: controller.signal, onProgress: (done) => done >= 8 && controller.abort() });
    assert.equal(scan.cancelled, true);
    assert.equal(scan.results.length, 8);
  });

  it('answers 200 concurrent classify requests for distinct images correctly, and memory returns to baseline', async (t) => {
    await client.whenSettled();
    // Warm the worker's arenas and caches first, so the baseline is a steady state rather than a cold start.
    await Promise.all(files.slice(0, 16).map((file) => client.call('classify', { file, topK: 3 })));
    const results = await measuredLoad(t, '200 concurrent classify requests', () => Promise.all(files.map((file) => client.call('classify', { file, topK: 3 }))));
    assert.equal(results.length, 200);
    for (let i = 0; i < files.length; i++) assert.deepEqual(results[i], await reference.classify(files[i], 3), files[i]);
  });

  it('survives 1,000 rapid hovers over the same and different paths and answers correctly afterwards', async (t) => {
    await client.whenSettled();
    const model = client.model!;
    const previews = new HoverPreviews(client, { waitMs: 2, maxPending: 8 });
    const distinct = files.slice(0, 100);
    const keyOf = (file: string) => previewCacheKey(model.modelId, file, 5);
    // What the hover provider passes on: the file as it read and hashed it.
    const bytes = new Map(files.map((file) => [file, readFileSync(file)]));
    const bytesOf = (file: string) => bytes.get(file)!;
    const dispatchedBefore = client.stats.dispatched;
    const outcomes = await measuredLoad(t, '1,000 rapid hovers', async () => {
      const hovers: Promise<unknown>[] = [];
      for (let i = 0; i < 1000; i++) {
        const file = i % 2 === 0 ? files[0] : distinct[i % distinct.length];
        const hover = new AbortController();
        hovers.push(previews.preview(keyOf(file), bytesOf(file), 5, hover.signal));
        // Most hovers end (the cursor moves on) almost at once.
        if (i % 10 !== 0) setTimeout(() => hover.abort(), i % 3);
        if (i % 50 === 0) await sleep(1);
      }
      const settled = (await Promise.all(hovers)) as { kind: string }[];
      while (previews.pendingCount > 0) await sleep(10);
      return settled;
    });
    assert.ok(outcomes.every((o) => ['done', 'pending', 'cancelled', 'error'].includes(o.kind)));
    assert.ok(outcomes.every((o) => o.kind !== 'error'), 'no hover failed');
    // Far fewer worker requests than hovers: shared, cancelled and bounded.
    assert.ok(client.stats.dispatched - dispatchedBefore < 200, `dispatched ${client.stats.dispatched - dispatchedBefore}`);
    while (previews.pendingCount > 0 || client.queuedCount > 0) await sleep(10);

    const settled = new HoverPreviews(client, { waitMs: 30_000 });
    for (const file of [files[0], ...distinct.slice(0, 20)]) {
      const outcome = await settled.preview(keyOf(file), bytesOf(file), 5);
      assert.equal(outcome.kind, 'done');
      if (outcome.kind === 'done') {
        assert.deepEqual(outcome.preview.top, await reference.classify(file, 5));
        assert.match(outcome.preview.thumbnail, /^data:image\/(png|jpeg);base64,/);
      }
    }
  });

  it('serves ten explanation panels at once and frees their tensors when they close', async (t) => {
    const handles: string[] = [];
    const recording: InferenceService = Object.assign(Object.create(client) as InferenceClient, {
      call: (async (name: string, args: never, options: never) => {
        const result = await client.call(name as never, args, options);
        if (name === 'explain') handles.push((result as { handle: string }).handle);
        return result;
      }) as InferenceClient['call'],
    });
    const panels = files.slice(0, 10).map((file) => {
      const posted: ExtensionToWebviewMessage[] = [];
      const session = new ExplanationSession({
        imagePath: file,
        inference: recording,
        post: (m) => posted.push(m),
        settings: () => ({ topK: 5, hoverEnabled: true, hoverMaxBytes: 1e9, headFusion: 'mean', discardRatio: 0.9, similarTopK: 24 }),
        saveExport: async () => undefined,
        log: silentLogger,
      });
      return { file, session, posted };
    });
    // Compute the expected explanations and load the worker's explanation graph (one panel opened and closed)
    // before the baseline, so neither the test's own reference model nor a first-use load counts as growth.
    const expected = new Map<string, Awaited<ReturnType<BeitModel['explain']>>>();
    for (const p of panels) expected.set(p.file, await reference.explain(p.file, { topK: 5 }));
    const warmUp = new ExplanationSession({
      imagePath: files[10],
      inference: client,
      post: () => undefined,
      settings: () => ({ topK: 5, hoverEnabled: true, hoverMaxBytes: 1e9, headFusion: 'mean', discardRatio: 0.9, similarTopK: 24 }),
      saveExport: async () => undefined,
      log: silentLogger,
    });
    await warmUp.receive({ type: 'ready' });
    warmUp.dispose();
    await measuredLoad(t, '10 explanation panels open at once', async () => {
      await Promise.all(panels.map((p) => p.session.receive({ type: 'ready' })));
      for (const p of panels) {
        const explanation = p.posted.find((m): m is Extract<ExtensionToWebviewMessage, { type: 'explanation' }> => m.type === 'explanation');
        assert.ok(explanation, `no explanation for ${p.file}`);
        // The image comes with the explanation, from the worker's one decode: the webview loads no file.
        assert.match(explanation.explanation.image.src, /^data:image\/jpeg;base64,/);
        const local = expected.get(p.file)!;
        assert.deepEqual(explanation.explanation.top, local.top);
        assert.deepEqual(explanation.explanation.patchArgmax, Array.from(local.patchArgmax));
      }
      await Promise.all(panels.map((p) => p.session.receive({ type: 'selectPatch', requestId: 1, patch: 5, layer: 0, head: 'mean' })));
      assert.ok(panels.every((p) => p.posted.some((m) => m.type === 'patchAttention')));
      for (const p of panels) p.session.dispose();
      // Closing a panel releases its tensors in the worker; the measurement waits for that.
      await sleep(50);
      // The panels' own messages are the test's, not the extension's: drop them before measuring.
      for (const p of panels) p.posted.length = 0;
    });
    assert.equal(handles.length, 10, 'the warm-up panel used the client directly, so only the ten panels are recorded');
    for (const handle of handles) {
      await assert.rejects(client.call('rollout', { handle, headFusion: 'mean', discardRatio: 0.9 }), /no longer in memory/);
    }
  });

  it('cancels the queued work of panels that close before their explanation is ready', async () => {
    await client.whenSettled();
    const cancelledBefore = client.stats.cancelled;
    const dispatchedBefore = client.stats.dispatched;
    const sessions = files.slice(20, 30).map((file) => {
      const posted: ExtensionToWebviewMessage[] = [];
      const session = new ExplanationSession({
        imagePath: file,
        inference: client,
        post: (m) => posted.push(m),
        settings: () => ({ topK: 5, hoverEnabled: true, hoverMaxBytes: 1e9, headFusion: 'mean', discardRatio: 0.9, similarTopK: 24 }),
        saveExport: async () => undefined,
        log: silentLogger,
      });
      void session.explain();
      return { session, posted };
    });
    // Let every panel's request reach the queue before the panels close.
    await sleep(20);
    assert.ok(client.queuedCount >= 8, `queued ${client.queuedCount}`);
    for (const s of sessions) s.session.dispose();
    await sleep(200);
    while (client.queuedCount > 0) await sleep(10);
    // At most the one already in the worker ran; the other nine never left the queue.
    assert.ok(client.stats.dispatched - dispatchedBefore <= 2, `dispatched ${client.stats.dispatched - dispatchedBefore}`);
    assert.ok(client.stats.cancelled - cancelledBefore >= 9);
    assert.ok(sessions.every((s) => !s.posted.some((m) => m.type === 'explanation' || m.type === 'error')));
  });
});

