/**
 * Preprocessing workers yield the cores to inference: on Linux each worker thread lowers its own nice value
 * (per-thread there), and the process's other threads, the model's included, keep theirs.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { encodePng } from '../../src/core/image';
import { loadPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { defaultWorkerCount, PreprocessPool } from '../../src/core/scan/preprocessPool';
import { lowerThreadPriority } from '../../src/core/workerThreads';
import { FIXTURE_DIR } from '../helpers/fixtures';

/** tid -> nice value of every thread of this process (field 19 of /proc/self/task/TID/stat). */
function threadNiceness(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[16]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

async function image(): Promise<Buffer> {
  const rgb = new Uint8Array(32 * 24 * 3).map((_, i) => (i * 7) & 255);
  return encodePng(rgb, 32, 24, 3);
}

describe('preprocessing pool thread priority', { skip: process.platform !== 'linux' && 'nice is per thread only on Linux' }, () => {
  it('lowers the worker threads to nice 19 by default and leaves every other thread alone', async () => {
    const preprocessor = await loadPreprocessorConfig(path.join(FIXTURE_DIR, 'preprocessor_config.json'));
    const before = threadNiceness();
    const pool = new PreprocessPool({ preprocessor, options: {}, workers: 2, jobsPerWorker: 1 });
    try {
      const outcomes = await Promise.all([pool.run(await image()), pool.run(await image())]);
      assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes.map((o) => (o.ok ? 'ok' : o.error))));
      const after = threadNiceness();
      const lowered = [...after].filter(([tid, nice]) => nice === 19 && !before.has(tid));
      assert.equal(lowered.length, 2, `new threads at nice 19: ${JSON.stringify([...after])}`);
      for (const [tid, nice] of before) if (after.has(tid)) assert.equal(after.get(tid), nice, `thread ${tid} changed priority`);
      assert.equal(after.get(process.pid), before.get(process.pid));
    } finally {
      await pool.close();
    }
  });

  it('keeps normal priority with niceness 0, and elsewhere than Linux does nothing', async () => {
    const preprocessor = await loadPreprocessorConfig(path.join(FIXTURE_DIR, 'preprocessor_config.json'));
    const before = threadNiceness();
    const pool = new PreprocessPool({ preprocessor, options: {}, workers: 1, niceness: 0 });
    try {
      assert.ok((await pool.run(await image())).ok);
      assert.deepEqual([...threadNiceness().values()].filter((n) => n !== 0), [...before.values()].filter((n) => n !== 0));
    } finally {
      await pool.close();
    }
    assert.equal(lowerThreadPriority(19, 'darwin'), false);
    assert.equal(lowerThreadPriority(19, 'win32'), false);
    assert.equal(lowerThreadPriority(0, 'linux'), false);
  });
});

describe('preprocessing pool size', () => {
  it('uses every core (2 to 8) at low priority on Linux, half of them otherwise', () => {
    assert.deepEqual([1, 2, 4, 16].map((c) => defaultWorkerCount(19, 'linux', c)), [2, 2, 4, 8]);
    assert.deepEqual([1, 2, 4, 16, 32].map((c) => defaultWorkerCount(0, 'linux', c)), [1, 1, 2, 8, 8]);
    assert.deepEqual([2, 8].map((c) => defaultWorkerCount(19, 'darwin', c)), [1, 4]);
    assert.deepEqual([2, 8].map((c) => defaultWorkerCount(19, 'win32', c)), [1, 4]);
  });
});
