/**
 * The extension's load and fault paths against the real worker and tiny model: a folder scan that
 * survives a worker kill without losing or duplicating a result, 1,000 rapid hovers, and ten
 * explanation panels at once.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import type { Prediction } from '../../src/core/predictions';
import { resultsCsv, scanImages } from '../../src/extension/commands/folderScan';
import { HoverPreviews, previewCacheKey } from '../../src/extension/hover/hoverPreviews';
import { InferenceClient, InferenceService } from '../../src/extension/inference/inferenceClient';
import { ExplanationSession } from '../../src/extension/panel/explanationSession';
import { silentLogger } from '../../src/extension/util/logger';
import { ExtensionToWebviewMessage } from '../../src/shared/protocol';

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
    Array.from({ length: 120 }, async (_, i) => {
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

/** Batched inference differs from single-image inference in the last float bits. */
function assertSamePredictions(actual: Prediction[], expected: Prediction[]): void {
  assert.deepEqual(actual.map((p) => [p.index, p.label]), expected.map((p) => [p.index, p.label]));
  actual.forEach((p, i) => assert.ok(Math.abs(p.score - expected[i].score) < 1e-5, `${p.score} vs ${expected[i].score}`));
}

describe('under load and faults', () => {
  it('finishes a folder scan through a worker kill with no result lost or duplicated', async () => {
    const withBroken = [...files.slice(0, 60), path.join(tmp, 'missing.png'), ...files.slice(60)];
    let killed = false;
    const crashesBefore = client.stats.crashes;
    const scan = await scanImages(client, withBroken, {
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
    const scan = await scanImages(client, files, { topK: 1, batchSize: 4, signal: controller.signal, onProgress: (done) => done >= 8 && controller.abort() });
    assert.equal(scan.cancelled, true);
    assert.equal(scan.results.length, 8);
  });

  it('survives 1,000 rapid hovers over the same and different paths and answers correctly afterwards', async () => {
    await client.whenSettled();
    const model = client.model!;
    const previews = new HoverPreviews(client, { waitMs: 2, maxPending: 8 });
    const distinct = files.slice(0, 100);
    const keyOf = (file: string) => previewCacheKey(model.modelId, file, 5);
    const dispatchedBefore = client.stats.dispatched;
    const hovers: Promise<unknown>[] = [];
    for (let i = 0; i < 1000; i++) {
      const file = i % 2 === 0 ? files[0] : distinct[i % distinct.length];
      const hover = new AbortController();
      hovers.push(previews.preview(keyOf(file), file, 5, hover.signal));
      // Most hovers end (the cursor moves on) almost at once.
      if (i % 10 !== 0) setTimeout(() => hover.abort(), i % 3);
      if (i % 50 === 0) await sleep(1);
    }
    const outcomes = (await Promise.all(hovers)) as { kind: string }[];
    assert.ok(outcomes.every((o) => ['done', 'pending', 'cancelled', 'error'].includes(o.kind)));
    assert.ok(outcomes.every((o) => o.kind !== 'error'), 'no hover failed');
    // Far fewer worker requests than hovers: shared, cancelled and bounded.
    assert.ok(client.stats.dispatched - dispatchedBefore < 200, `dispatched ${client.stats.dispatched - dispatchedBefore}`);
    while (previews.pendingCount > 0 || client.queuedCount > 0) await sleep(10);

    const settled = new HoverPreviews(client, { waitMs: 30_000 });
    for (const file of [files[0], ...distinct.slice(0, 20)]) {
      const outcome = await settled.preview(keyOf(file), file, 5);
      assert.equal(outcome.kind, 'done');
      if (outcome.kind === 'done') {
        assert.deepEqual(outcome.preview.top, await reference.classify(file, 5));
        assert.match(outcome.preview.thumbnail, /^data:image\/(png|jpeg);base64,/);
      }
    }
  });

  it('serves ten explanation panels at once and frees their tensors when they close', async () => {
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
        imageSource: async () => `data:image/png;base64,`,
        settings: () => ({ topK: 5, hoverEnabled: true, hoverMaxBytes: 1e9, headFusion: 'mean', discardRatio: 0.9 }),
        saveExport: async () => undefined,
        log: silentLogger,
      });
      return { file, session, posted };
    });
    await Promise.all(panels.map((p) => p.session.receive({ type: 'ready' })));
    for (const p of panels) {
      const explanation = p.posted.find((m): m is Extract<ExtensionToWebviewMessage, { type: 'explanation' }> => m.type === 'explanation');
      assert.ok(explanation, `no explanation for ${p.file}`);
      const local = await reference.explain(p.file, { topK: 5 });
      assert.deepEqual(explanation.explanation.top, local.top);
      assert.deepEqual(explanation.explanation.patchArgmax, Array.from(local.patchArgmax));
    }
    await Promise.all(panels.map((p) => p.session.receive({ type: 'selectPatch', requestId: 1, patch: 5, layer: 0, head: 'mean' })));
    assert.ok(panels.every((p) => p.posted.some((m) => m.type === 'patchAttention')));
    for (const p of panels) p.session.dispose();
    await sleep(50);
    assert.equal(handles.length, 10);
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
        imageSource: async () => 'data:image/png;base64,',
        settings: () => ({ topK: 5, hoverEnabled: true, hoverMaxBytes: 1e9, headFusion: 'mean', discardRatio: 0.9 }),
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

