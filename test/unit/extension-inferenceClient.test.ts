/**
 * The InferenceClient against the real worker process (forked from source through tsx) running
 * the tiny fixture model: results, crash and restart, load, cancellation, fairness.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { InferenceClient, InferenceError, ModelState } from '../../src/extension/inference/inferenceClient';
import { silentLogger } from '../../src/extension/util/logger';
import { LoadModelArgs } from '../../src/extension/worker/workerProtocol';

const root = path.resolve(__dirname, '../..');
const fixtureImages = path.join(root, 'test/fixtures/beit-tiny/images');
const workerScript = path.join(root, 'src/extension/worker/inferenceWorker.ts');

let tmp: string;
let modelDir: string;
let reference: BeitModel;
const clients: InferenceClient[] = [];

function newClient(overrides: Partial<ConstructorParameters<typeof InferenceClient>[0]> = {}): InferenceClient {
  const client = new InferenceClient({ workerScript, execArgv: ['--import', 'tsx'], log: silentLogger, ...overrides });
  clients.push(client);
  return client;
}

function loadArgs(dir = modelDir): LoadModelArgs {
  return { source: { kind: 'folder', dir }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } };
}

async function readyClient(overrides: Partial<ConstructorParameters<typeof InferenceClient>[0]> = {}): Promise<InferenceClient> {
  const client = newClient(overrides);
  const state = await client.setModel(loadArgs());
  assert.equal(state.kind, 'ready', JSON.stringify(state));
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<InferenceError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof InferenceError, `expected an InferenceError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the promise to reject');
}

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'beit-lens-client-'));
  modelDir = path.join(tmp, 'model');
  await convertModel({ from: path.join(root, 'test/fixtures/beit-tiny'), out: modelDir });
  reference = await BeitModel.load(modelDir, { provider: 'cpu' });
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await reference?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('InferenceClient with the real worker', () => {
  it('classifies exactly as BeitModel does in-process', async () => {
    const client = await readyClient();
    const image = path.join(fixtureImages, 'gradient_640x480.jpg');
    const remote = await client.call('classify', { file: image, topK: 5 });
    const local = await reference.classify(image, 5);
    assert.deepEqual(remote.map((p) => [p.index, p.label]), local.map((p) => [p.index, p.label]));
    remote.forEach((p, i) => assert.ok(Math.abs(p.score - local[i].score) < 1e-9));
    const model = client.model!;
    assert.equal(model.modelId, reference.modelId);
    assert.equal(model.provider, 'cpu');
    assert.equal(model.canExplain, true);
  });

  it('reports per-file errors in a batch and keeps the rest', async () => {
    const client = await readyClient();
    const good = path.join(fixtureImages, 'gray_256x256.png');
    const results = await client.call('classifyBatch', { files: [good, path.join(tmp, 'missing.png')], topK: 3 });
    assert.equal(results.length, 2);
    assert.deepEqual(results[0].top, await reference.classify(good, 3));
    assert.match(results[1].error ?? '', /not found/);
  });

  it('keeps explanation tensors in the worker and answers follow-up questions there', async () => {
    const client = await readyClient();
    const image = path.join(fixtureImages, 'alpha_300x200.png');
    const summary = await client.call('explain', { file: image, topK: 5, headFusion: 'mean', discardRatio: 0.9 });
    const local = await reference.explain(image, { topK: 5, rollout: { headFusion: 'mean', discardRatio: 0.9 } });
    assert.equal(summary.grid, 14);
    assert.equal(summary.width, 300);
    assert.equal(summary.height, 200);
    assert.deepEqual(summary.patchArgmax, Array.from(local.patchArgmax));
    assert.equal(summary.patchScore.length, 196);
    assert.ok(summary.patchScore.every((s) => s > 0 && s <= 1));
    assert.equal(summary.legend.reduce((n, l) => n + l.patches, 0), 196);
    summary.rollout.map.forEach((v, i) => assert.ok(Math.abs(v - local.rollout[i]) < 1e-6));

    const maxRollout = await client.call('rollout', { handle: summary.handle, headFusion: 'max', discardRatio: 0.5 });
    assert.equal(maxRollout.length, 196);
    assert.notDeepEqual(maxRollout, summary.rollout.map);

    const heat = await client.call('classHeatmap', { handle: summary.handle, classIndex: 3 });
    assert.equal(heat.label, reference.labels[3]);
    assert.deepEqual(heat.logits, Array.from(reference.classHeatmap(local, 3)));

    const attention = await client.call('patchAttention', { handle: summary.handle, patch: 17, layer: 1, head: 'mean' });
    assert.equal(attention.length, 196);

    const outOfRange = await rejection(client.call('patchAttention', { handle: summary.handle, patch: 196, layer: 0, head: 0 }));
    assert.equal(outOfRange.code, 'BAD_REQUEST');

    await client.call('release', { handle: summary.handle });
    const gone = await rejection(client.call('rollout', { handle: summary.handle, headFusion: 'mean', discardRatio: 0.9 }));
    assert.equal(gone.code, 'EXPLANATION_GONE');
  });

  it('fails the in-flight request when the worker is killed, restarts it, and serves the next one', async () => {
    const client = await readyClient();
    const exits: unknown[] = [];
    client.onDidWorkerExit((e) => exits.push(e));
    const firstPid = client.workerPid;
    const image = path.join(fixtureImages, 'gray_256x256.png');
    const inFlight = client.call('classify', { file: image, topK: 5 });
    const queued = client.call('classify', { file: path.join(fixtureImages, 'tiny_17x9.png'), topK: 5 });
    assert.ok(client.kill());
    const err = await rejection(inFlight);
    assert.equal(err.code, 'WORKER_CRASHED');
    assert.match(err.message, /inference worker was killed \(SIGKILL\).*restarted/);
    // The request that had not reached the worker yet is not lost: it runs after the restart.
    assert.deepEqual(await queued, await reference.classify(path.join(fixtureImages, 'tiny_17x9.png'), 5));
    assert.deepEqual(await client.call('classify', { file: image, topK: 5 }), await reference.classify(image, 5));
    assert.equal(client.state.kind, 'ready');
    assert.notEqual(client.workerPid, firstPid);
    assert.equal(exits.length, 1);
    assert.equal(client.stats.restarts, 1);
  });

  it('answers 200 concurrent requests for distinct images correctly and in FIFO order', async () => {
    const dir = path.join(tmp, 'many');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    const files = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const file = path.join(dir, `img-${i}.png`);
        const pixels = Buffer.alloc(24 * 16 * 3);
        for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 7) + i * 31) % 256;
        await sharp(pixels, { raw: { width: 24, height: 16, channels: 3 } }).png().toFile(file);
        return file;
      }),
    );
    const client = await readyClient();
    const order: number[] = [];
    const results = await Promise.all(files.map((file, i) => client.call('classify', { file, topK: 3 }).then((r) => (order.push(i), r))));
    assert.deepEqual(order, files.map((_, i) => i));
    for (let i = 0; i < files.length; i++) assert.deepEqual(results[i], await reference.classify(files[i], 3));
    assert.ok(new Set(results.map((r) => JSON.stringify(r))).size > 1, 'distinct images should not all classify the same');
  });

  it('cancels queued requests without running them', async () => {
    const client = await readyClient();
    const image = path.join(fixtureImages, 'gradient_640x480.jpg');
    const before = client.stats.dispatched;
    const controllers = Array.from({ length: 20 }, () => new AbortController());
    const calls = controllers.map((c) => client.call('classify', { file: image, topK: 1 }, { signal: c.signal }));
    // The first is already in the worker; cancel every odd one still waiting.
    for (let i = 1; i < 20; i += 2) controllers[i].abort();
    const settled = await Promise.allSettled(calls);
    for (let i = 0; i < 20; i++) {
      if (i % 2 === 1) {
        assert.equal(settled[i].status, 'rejected');
        assert.equal(((settled[i] as PromiseRejectedResult).reason as InferenceError).code, 'CANCELLED');
      } else {
        assert.equal(settled[i].status, 'fulfilled');
      }
    }
    assert.equal(client.stats.dispatched - before, 10);
    const cancelledUpFront = await rejection(client.call('classify', { file: image, topK: 1 }, { signal: AbortSignal.abort() }));
    assert.equal(cancelledUpFront.code, 'CANCELLED');
  });

  it('takes turns between lanes so one long queue cannot starve another', async () => {
    const client = await readyClient();
    const image = path.join(fixtureImages, 'gray_256x256.png');
    const finished: string[] = [];
    const scan = Array.from({ length: 8 }, (_, i) => client.call('classify', { file: image, topK: 1 }, { lane: 'scan' }).then(() => finished.push(`scan${i}`)));
    const hover = client.call('classify', { file: image, topK: 1 }, { lane: 'hover' }).then(() => finished.push('hover'));
    await Promise.all([...scan, hover]);
    assert.ok(finished.indexOf('hover') <= 2, `hover finished at ${finished.indexOf('hover')}: ${finished.join(',')}`);
  });

  it('restarts a stuck worker when a request times out', async () => {
    const client = await readyClient();
    const image = path.join(fixtureImages, 'gradient_640x480.jpg');
    const err = await rejection(client.call('classifyBatch', { files: Array(64).fill(image), topK: 1 }, { timeoutMs: 5 }));
    assert.equal(err.code, 'TIMEOUT');
    assert.deepEqual(await client.call('classify', { file: image, topK: 2 }), await reference.classify(image, 2));
  });

  it('stops restarting a worker that keeps crashing', async () => {
    const client = await readyClient({ maxRestarts: 1, restartWindowMs: 60_000 });
    const image = path.join(fixtureImages, 'gray_256x256.png');
    for (let i = 0; i < 2; i++) {
      await client.whenSettled();
      const call = client.call('classify', { file: image, topK: 1 });
      client.kill();
      await rejection(call);
    }
    const state = await client.whenSettled();
    assert.equal(state.kind, 'failed');
    assert.match((state as Extract<ModelState, { kind: 'failed' }>).message, /crashed 2 times/);
    assert.equal((await rejection(client.call('classify', { file: image, topK: 1 }))).code, 'MODEL_FAILED');
    // Choosing the model again starts over.
    assert.equal((await client.setModel(loadArgs())).kind, 'ready');
  });

  it('reports a missing or broken model as a state, and fails model calls at once', async () => {
    const client = newClient();
    const noCache = await client.setModel({ ...loadArgs(), source: { kind: 'cache', cacheDirs: [path.join(tmp, 'empty-cache')] } });
    assert.equal(noCache.kind, 'noModel');
    const err = await rejection(client.call('classify', { file: path.join(fixtureImages, 'gray_256x256.png'), topK: 1 }));
    assert.equal(err.code, 'NO_MODEL');
    assert.match(err.message, /Download Model/);
    const broken = await client.setModel(loadArgs(path.join(tmp, 'nowhere')));
    assert.equal(broken.kind, 'failed');
    assert.match((broken as Extract<ModelState, { kind: 'failed' }>).message, /model folder not found/);
  });

  it('queues model calls while the model loads and answers them once it is ready', async () => {
    const client = newClient();
    const image = path.join(fixtureImages, 'gray_256x256.png');
    const early = client.call('classify', { file: image, topK: 2 });
    const loading = client.setModel(loadArgs());
    assert.equal(client.state.kind, 'loading');
    assert.deepEqual(await early, await reference.classify(image, 2));
    assert.equal((await loading).kind, 'ready');
  });

  it('switches models while a request is running without breaking it', async () => {
    const client = await readyClient();
    const image = path.join(fixtureImages, 'gradient_640x480.jpg');
    const running = client.call('classifyBatch', { files: Array(16).fill(image), topK: 2 });
    const switched = client.setModel(loadArgs());
    const results = await running;
    assert.equal(results.length, 16);
    assert.ok(results.every((r) => r.top?.length === 2));
    assert.equal((await switched).kind, 'ready');
    assert.deepEqual(await client.call('classify', { file: image, topK: 2 }), await reference.classify(image, 2));
  });

  it('fails everything pending and ends the process on dispose', async () => {
    const client = await readyClient();
    const pid = client.workerPid!;
    const image = path.join(fixtureImages, 'gradient_640x480.jpg');
    const pending = Array.from({ length: 5 }, () => rejection(client.call('classify', { file: image, topK: 1 })));
    await client.dispose();
    for (const p of pending) assert.equal((await p).code, 'DISPOSED');
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    assert.equal((await rejection(client.call('classify', { file: image, topK: 1 }))).code, 'DISPOSED');
  });
});
