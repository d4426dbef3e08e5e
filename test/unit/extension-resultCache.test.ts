/**
 * The hover's caches and queueing: the LRU, content hashing, and HoverPreviews (one request per
 * image however many hovers ask, cancellation when the hover goes away, a bound on waiting work),
 * plus the fair queue in front of the worker. Uses a fake inference service.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileHasher, readFileBytes } from '../../src/extension/hover/fileHasher';
import { HoverPreviews, previewCacheKey } from '../../src/extension/hover/hoverPreviews';
import { LruCache } from '../../src/extension/hover/lruCache';
import { FairQueue } from '../../src/extension/inference/fairQueue';
import { InferenceError, InferenceService, ModelState } from '../../src/extension/inference/inferenceClient';
import { Emitter } from '../../src/extension/util/emitter';
import { HoverPreview } from '../../src/extension/worker/workerProtocol';

describe('LruCache', () => {
  it('evicts the least recently used entry', () => {
    const c = new LruCache<string, number>({ maxEntries: 3 });
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    assert.equal(c.get('a'), 1); // a is now the most recent
    c.set('d', 4);
    assert.deepEqual(c.keys(), ['c', 'a', 'd']);
    assert.equal(c.has('b'), false);
    assert.equal(c.size, 3);
  });

  it('bounds the total weight and refuses entries heavier than the budget', () => {
    const c = new LruCache<string, string>({ maxEntries: 100, maxWeight: 10, weigh: (v) => v.length });
    c.set('a', 'xxxx');
    c.set('b', 'xxxx');
    c.set('c', 'xxxx');
    assert.deepEqual(c.keys(), ['b', 'c']);
    assert.equal(c.weight, 8);
    c.set('huge', 'x'.repeat(11));
    assert.equal(c.has('huge'), false);
    assert.deepEqual(c.keys(), ['b', 'c']);
    c.set('b', 'x');
    assert.equal(c.weight, 5);
    c.delete('c');
    assert.equal(c.weight, 1);
    c.clear();
    assert.equal(c.size, 0);
    assert.equal(c.weight, 0);
  });

  it('stays bounded under many inserts', () => {
    const c = new LruCache<number, number>({ maxEntries: 50 });
    for (let i = 0; i < 10_000; i++) c.set(i, i);
    assert.equal(c.size, 50);
    assert.deepEqual(c.keys(), Array.from({ length: 50 }, (_, i) => 9950 + i));
  });
});

describe('FileHasher', () => {
  it('reads once, hashes what it read, remembers by path/size/mtime, and notices edits', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'beit-lens-hash-'));
    try {
      const file = path.join(dir, 'a.png');
      await writeFile(file, 'first version');
      let reads = 0;
      const hasher = new FileHasher(100, (f, max) => (reads++, readFileBytes(f, max)));
      const v1 = { size: 13, mtimeMs: 1000 };
      assert.equal(hasher.known(file, v1), undefined);
      const [a, b] = await Promise.all([hasher.read(file, v1), hasher.read(file, v1)]);
      assert.equal(reads, 1, 'concurrent hovers share one read');
      assert.equal(a, b);
      assert.equal(a.bytes.toString(), 'first version');
      assert.equal(a.sha256, createHash('sha256').update('first version').digest('hex'));
      // Same identity: known without reading, even though the bytes changed underneath.
      await writeFile(file, 'other content');
      assert.equal(hasher.known(file, v1), a.sha256);
      assert.equal(reads, 1);
      const v2 = await hasher.read(file, { size: 13, mtimeMs: 2000 });
      assert.equal(v2.sha256, createHash('sha256').update('other content').digest('hex'));
      // Never reads past the size seen at stat time.
      assert.equal((await hasher.read(file, { size: 5, mtimeMs: 3000 })).bytes.toString(), 'other');
      await assert.rejects(hasher.read(path.join(dir, 'missing.png'), v1), /ENOENT/);
      assert.equal(hasher.known(path.join(dir, 'missing.png'), v1), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A stand-in for the worker whose answers the test releases by hand. */
class FakeInference implements InferenceService {
  readonly requests: { file: string; signal?: AbortSignal; resolve(p: HoverPreview): void; reject(e: Error): void }[] = [];
  state: ModelState = { kind: 'ready', model: { modelDir: '/m', modelId: 'tiny', provider: 'cpu', providerAttempts: [], canExplain: true, numLabels: 10 } };
  private readonly states = new Emitter<ModelState>();
  readonly onDidChangeState = this.states.event;
  readonly onDidWorkerExit = new Emitter<never>().event;
  get model() {
    return this.state.kind === 'ready' ? this.state.model : undefined;
  }
  queuedInLane(): number {
    return this.requests.length;
  }
  call = ((name: string, args: { bytes: Uint8Array }, options: { signal?: AbortSignal } = {}) => {
    assert.equal(name, 'preview');
    return new Promise((resolve, reject) => {
      // The tests' "images" are their names as bytes.
      const request = { file: Buffer.from(args.bytes).toString(), signal: options.signal, resolve, reject };
      this.requests.push(request);
      options.signal?.addEventListener('abort', () => reject(new InferenceError('CANCELLED', 'cancelled')), { once: true });
    });
  }) as unknown as InferenceService['call'];
}

const img = (name: string) => Buffer.from(name);
const preview = (label: string): HoverPreview => ({ top: [{ index: 1, label, score: 0.9 }], thumbnail: 'data:image/png;base64,AAAA', width: 4, height: 3, format: 'png' });

describe('HoverPreviews', () => {
  it('answers at once from the cache after the first result', async () => {
    const fake = new FakeInference();
    const previews = new HoverPreviews(fake, { waitMs: 1000 });
    const key = previewCacheKey('tiny', 'abc', 5);
    const first = previews.preview(key, img('/img/a.png'), 5);
    fake.requests[0].resolve(preview('cat'));
    assert.deepEqual(await first, { kind: 'done', preview: preview('cat') });
    assert.deepEqual(await previews.preview(key, img('/img/a.png'), 5), { kind: 'done', preview: preview('cat') });
    assert.equal(fake.requests.length, 1);
  });

  it('says "pending" instead of blocking, and has the result for the next hover', async () => {
    const fake = new FakeInference();
    const previews = new HoverPreviews(fake, { waitMs: 20 });
    const key = previewCacheKey('tiny', 'slow', 5);
    const started = Date.now();
    assert.deepEqual(await previews.preview(key, img('/img/slow.png'), 5), { kind: 'pending' });
    assert.ok(Date.now() - started < 500);
    // The hover moved away after being told "classifying…"; the request still completes.
    fake.requests[0].resolve(preview('otter'));
    await sleep(0);
    assert.deepEqual(await previews.preview(key, img('/img/slow.png'), 5), { kind: 'done', preview: preview('otter') });
    assert.equal(fake.requests.length, 1);
  });

  it('sends one request for 1,000 rapid hovers over the same image', async () => {
    const fake = new FakeInference();
    const previews = new HoverPreviews(fake, { waitMs: 5 });
    const key = previewCacheKey('tiny', 'same', 5);
    const hovers = Array.from({ length: 1000 }, () => previews.preview(key, img('/img/same.png'), 5));
    fake.requests[0].resolve(preview('balloon'));
    const outcomes = await Promise.all(hovers);
    assert.equal(fake.requests.length, 1);
    assert.ok(outcomes.every((o) => o.kind === 'done' || o.kind === 'pending'));
    assert.deepEqual(await previews.preview(key, img('/img/same.png'), 5), { kind: 'done', preview: preview('balloon') });
  });

  it('cancels the request when the only hover waiting for it goes away', async () => {
    const fake = new FakeInference();
    const previews = new HoverPreviews(fake, { waitMs: 10_000 });
    const hoverA = new AbortController();
    const hoverB = new AbortController();
    const key = previewCacheKey('tiny', 'shared', 5);
    const a = previews.preview(key, img('/img/shared.png'), 5, hoverA.signal);
    const b = previews.preview(key, img('/img/shared.png'), 5, hoverB.signal);
    hoverA.abort();
    assert.deepEqual(await a, { kind: 'cancelled' });
    assert.equal(fake.requests[0].signal?.aborted, false, 'another hover still waits');
    hoverB.abort();
    assert.deepEqual(await b, { kind: 'cancelled' });
    assert.equal(fake.requests[0].signal?.aborted, true);
    await sleep(0);
    assert.equal(previews.pendingCount, 0);
    assert.equal(previews.cached(key), undefined, 'a cancellation is not cached');
  });

  it('keeps at most maxPending uncached images waiting as the cursor sweeps across 1,000 paths', async () => {
    const fake = new FakeInference();
    const previews = new HoverPreviews(fake, { waitMs: 0, maxPending: 8 });
    for (let i = 0; i < 1000; i++) {
      assert.deepEqual(await previews.preview(previewCacheKey('tiny', `img${i}`, 5), img(`/img/${i}.png`), 5), { kind: 'pending' });
      assert.ok(previews.pendingCount <= 8);
    }
    await sleep(0);
    const live = fake.requests.filter((r) => !r.signal?.aborted);
    assert.equal(live.length, 8);
    assert.deepEqual(live.map((r) => r.file), Array.from({ length: 8 }, (_, i) => `/img/${992 + i}.png`));
  });

  it('caches what an image is (a decode error) but not what the worker went through (a crash)', async () => {
    const fake = new FakeInference();
    const previews = new HoverPreviews(fake, { waitMs: 1000 });
    const broken = previewCacheKey('tiny', 'broken', 5);
    const first = previews.preview(broken, img('/img/broken.png'), 5);
    fake.requests[0].reject(new InferenceError('IMAGE_DECODE', '/img/broken.png: cannot decode image'));
    assert.deepEqual(await first, { kind: 'error', message: '/img/broken.png: cannot decode image' });
    assert.deepEqual(await previews.preview(broken, img('/img/broken.png'), 5), { kind: 'error', message: '/img/broken.png: cannot decode image' });
    assert.equal(fake.requests.length, 1);

    const crashed = previewCacheKey('tiny', 'crashed', 5);
    const second = previews.preview(crashed, img('/img/crashed.png'), 5);
    fake.requests[1].reject(new InferenceError('WORKER_CRASHED', 'the inference worker was killed'));
    assert.equal((await second).kind, 'error');
    const third = previews.preview(crashed, img('/img/crashed.png'), 5);
    assert.equal(fake.requests.length, 3, 'asked again after a crash');
    fake.requests[2].resolve(preview('crane'));
    assert.deepEqual(await third, { kind: 'done', preview: preview('crane') });
  });

  it('keys results by model and content', () => {
    assert.notEqual(previewCacheKey('model-a', 'sha', 5), previewCacheKey('model-b', 'sha', 5));
    assert.notEqual(previewCacheKey('m', 'sha1', 5), previewCacheKey('m', 'sha2', 5));
  });
});

describe('FairQueue', () => {
  it('is FIFO within a lane and takes turns across lanes', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 4; i++) q.enqueue('scan', `s${i}`);
    q.enqueue('hover', 'h0');
    q.enqueue('hover', 'h1');
    q.enqueue('panel', 'p0');
    const order: string[] = [];
    for (let item = q.dequeue(); item; item = q.dequeue()) order.push(item);
    assert.deepEqual(order, ['s0', 'h0', 'p0', 's1', 'h1', 's2', 's3']);
    assert.equal(q.size, 0);
  });

  it('skips lanes whose head cannot run yet without reordering them', () => {
    const q = new FairQueue<{ id: string; needsModel: boolean }>();
    q.enqueue('a', { id: 'a0', needsModel: true });
    q.enqueue('a', { id: 'a1', needsModel: false });
    q.enqueue('b', { id: 'b0', needsModel: false });
    assert.equal(q.dequeue((x) => !x.needsModel)?.id, 'b0');
    assert.equal(q.dequeue((x) => !x.needsModel), undefined, 'a1 must not overtake a0');
    assert.equal(q.dequeue()?.id, 'a0');
  });

  it('removes and drains', () => {
    const q = new FairQueue<number>();
    [1, 2, 3, 4].forEach((n) => q.enqueue(n % 2 ? 'odd' : 'even', n));
    assert.equal(q.remove(3), true);
    assert.equal(q.remove(3), false);
    assert.deepEqual(q.drain((n) => n % 2 === 0).sort(), [2, 4]);
    assert.equal(q.size, 1);
    assert.deepEqual(q.laneItems('odd'), [1]);
  });
});
