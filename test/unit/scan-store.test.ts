import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ResultStore } from '../../src/core/scan/resultStore';
import { tempDir } from '../helpers/fixtures';

const sig = (n: number) => ({ size: 100 + n, mtimeMs: 1_700_000_000_000 + n, ctimeMs: 1_700_000_000_500 + n, ino: 4000 + n });
const hash = (n: number) => n.toString(16).padStart(64, '0');
const top = (n: number) => ({ kind: 'top' as const, k: 3, top: [[n % 10, 0.5] as const, [(n + 1) % 10, 0.3] as const, [(n + 2) % 10, 0.2] as const] });

function fill(store: ResultStore, from: number, to: number, model = 'm@1#exact,exif'): void {
  for (let n = from; n < to; n++) store.append([store.fileRecord(`/data/f${n}.png`, sig(n), hash(n)), store.predictionRecord(hash(n), model, top(n))]);
}

describe('ResultStore (append-only checksummed log)', () => {
  it('finds files by path+signature and predictions by content+model, across reopen', async () => {
    const file = path.join(await tempDir('beit-store-'), 'cache.log');
    const store = await ResultStore.open(file);
    fill(store, 0, 50);
    store.append([store.predictionRecord(hash(99), 'm@1#exact,exif', { kind: 'error', code: 'IMAGE_DECODE', error: 'file is empty (0 bytes)' })]);
    await store.close();
    assert.ok(!existsSync(`${file}.lock`), 'lock released on close');

    const again = await ResultStore.open(file);
    assert.equal(again.stats.records, 101);
    assert.equal(await again.lookupFile('/data/f7.png', sig(7)), hash(7));
    assert.equal(await again.lookupFile('/data/f7.png', { ...sig(7), mtimeMs: sig(7).mtimeMs + 1 }), undefined, 'changed mtime');
    assert.equal(await again.lookupFile('/data/f7.png', { ...sig(7), size: 1 }), undefined, 'changed size');
    assert.equal(await again.lookupFile('/data/f7.png', { ...sig(7), ctimeMs: 1 }), undefined, 'changed ctime');
    assert.deepEqual(await again.lookupPrediction(hash(7), 'm@1#exact,exif', 3), { kind: 'top', k: 3, top: [[7, 0.5], [8, 0.3], [9, 0.2]] });
    assert.equal(await again.lookupPrediction(hash(7), 'm@1#exact,exif', 5), undefined, 'asks for more labels than cached');
    assert.equal(await again.lookupPrediction(hash(7), 'm@2#exact,exif', 3), undefined, 'other model');
    assert.deepEqual(await again.lookupPrediction(hash(99), 'm@1#exact,exif', 5), { kind: 'error', code: 'IMAGE_DECODE', error: 'file is empty (0 bytes)' });
    await again.close();
  });

  it('cuts a torn tail, skips a corrupt record in the middle, and appends cleanly after', async () => {
    const file = path.join(await tempDir('beit-store-'), 'cache.log');
    const store = await ResultStore.open(file);
    fill(store, 0, 10);
    await store.close();
    // Flip one byte inside record 5's payload (line 1 is the header), then add a half-written record.
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[5] = lines[5].replace('"s":', '"S":');
    writeFileSync(file, lines.join('\n'));
    const torn = '0badc0de {"p":"' + hash(77).slice(0, 20);
    appendFileSync(file, torn);
    const sizeBefore = statSync(file).size;

    const reopened = await ResultStore.open(file);
    assert.equal(reopened.stats.truncatedBytes, torn.length);
    assert.equal(reopened.stats.corrupt, 1);
    assert.equal(statSync(file).size, sizeBefore - torn.length);
    assert.equal(await reopened.lookupFile('/data/f2.png', sig(2)), undefined, 'the damaged record is ignored');
    assert.equal(await reopened.lookupFile('/data/f3.png', sig(3)), hash(3));
    fill(reopened, 10, 12);
    await reopened.close();
    const last = await ResultStore.open(file);
    assert.equal(await last.lookupFile('/data/f11.png', sig(11)), hash(11));
    assert.equal(last.stats.truncatedBytes, 0);
    await last.close();
  });

  it('refuses a file that is not a scan cache instead of truncating it', async () => {
    const file = path.join(await tempDir('beit-store-'), 'results.csv');
    writeFileSync(file, 'image,label\na.png,cat\n');
    await assert.rejects(ResultStore.open(file), /not a BEiT Lens scan cache/);
    assert.equal(readFileSync(file, 'utf8'), 'image,label\na.png,cat\n');
  });

  it('opens read-only while another live process holds the lock, and takes over a dead one', async () => {
    const dir = await tempDir('beit-store-');
    const file = path.join(dir, 'cache.log');
    const first = await ResultStore.open(file);
    fill(first, 0, 3);
    await first.close();

    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      writeFileSync(`${file}.lock`, String(sleeper.pid));
      const warnings: string[] = [];
      const shared = await ResultStore.open(file, { onWarning: (m) => warnings.push(m) });
      assert.ok(shared.isReadOnly);
      assert.match(warnings[0], /another process/);
      assert.equal(await shared.lookupFile('/data/f1.png', sig(1)), hash(1));
      fill(shared, 3, 4);
      await shared.close();
      assert.equal(readFileSync(`${file}.lock`, 'utf8'), String(sleeper.pid), 'a read-only store leaves the lock alone');
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise((r) => sleeper.once('exit', r));
    }
    const takeover = await ResultStore.open(file);
    assert.ok(!takeover.isReadOnly, 'lock of a dead process is taken over');
    assert.equal(await takeover.lookupFile('/data/f3.png', sig(3)), undefined);
    await takeover.close();
  });

  it('compacts to the live records only', async () => {
    const file = path.join(await tempDir('beit-store-'), 'cache.log');
    const store = await ResultStore.open(file);
    fill(store, 0, 20);
    fill(store, 0, 20);
    const { before, after } = await store.compact((p) => p !== '/data/f0.png');
    assert.ok(after < before * 0.55, `${before} -> ${after}`);
    assert.equal(await store.lookupFile('/data/f0.png', sig(0)), undefined);
    assert.equal(await store.lookupFile('/data/f5.png', sig(5)), hash(5));
    fill(store, 20, 21);
    await store.close();
    const again = await ResultStore.open(file);
    assert.equal(again.stats.records, 19 + 20 + 2);
    assert.deepEqual(await again.lookupPrediction(hash(20), 'm@1#exact,exif', 3), top(20));
    await again.close();
  });
});
