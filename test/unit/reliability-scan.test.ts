/**
 * Issue #12, section 4: a scan stays inside its roots, never opens devices or FIFOs, refuses to overwrite its
 * own cache or inputs, and a scan cache has exactly one writer however many processes open it at once.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { ResultStore } from '../../src/core/scan/resultStore';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { scanDataset, type ScanModel, type ScanResult, type ScanSummary } from '../../src/core/scan/scanner';
import type { WalkWarning } from '../../src/core/scan/walk';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';
import { fakeModel } from '../helpers/scanFixtures';

const LOCK_CHILD = path.resolve(__dirname, '..', 'helpers', 'lockChild.ts');
const BUILT_CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');

async function scan(roots: string[], model: ScanModel): Promise<{ results: ScanResult[]; summary: ScanSummary; warnings: WalkWarning[] }> {
  const results: ScanResult[] = [];
  const warnings: WalkWarning[] = [];
  const summary = await scanDataset({ roots, model, pool: { workers: 1 }, onResult: (r) => void results.push(r), onWarning: (w) => warnings.push(w) });
  return { results, summary, warnings };
}

describe('scan stays inside its roots', () => {
  let model: ScanModel & { images: number };
  before(async () => {
    const preprocessor = await loadPreprocessorConfig(path.join(await convertedTinyModel(), 'preprocessor_config.json'));
    model = fakeModel(preprocessor, ['a', 'b', 'c']);
  });

  it('skips a link to / and a link to an outside image, follows inside links once, breaks link loops, and counts each', async () => {
    const root = await tempDir('beit-roots-');
    const files = await writeSyntheticDataset(root, { classes: ['a', 'b'], perClass: 5, width: 40, height: 30 });
    const outside = await tempDir('beit-outside-');
    copyFileSync(files[0], path.join(outside, 'private.png'));
    symlinkSync('/', path.join(root, 'a', 'everything'));
    symlinkSync(path.join(outside, 'private.png'), path.join(root, 'a', 'private.png'));
    symlinkSync(path.join(root, 'a'), path.join(root, 'c'));
    symlinkSync('..', path.join(root, 'b', 'up'));
    symlinkSync('.', path.join(root, 'b', 'self'));
    // A link to a file inside is an ImageFolder sample of its own folder.
    symlinkSync(files[0], path.join(root, 'b', 'alias.png'));

    const started = performance.now();
    const { results, summary, warnings } = await scan([root], model);
    const ms = performance.now() - started;
    console.log(`# link to / inside a 10-image dataset: ${results.length} rows in ${ms.toFixed(0)} ms, skipped ${JSON.stringify(summary.skipped)}`);
    assert.deepEqual(results.map((r) => r.image).sort(), [...files, path.join(root, 'b', 'alias.png')].sort());
    assert.ok(results.every((r) => r.top), 'every row classified');
    assert.equal(results.find((r) => r.image.endsWith('alias.png'))!.folderLabel, 'b');
    assert.deepEqual(summary.skipped, { outsideRoots: 2, linkLoop: 2, alreadyScanned: 1 });
    assert.deepEqual(
      warnings.filter((w) => w.skipped).map((w) => [path.relative(root, w.path), w.skipped]).sort(),
      [['a/everything', 'outsideRoots'], ['a/private.png', 'outsideRoots'], ['b/self', 'linkLoop'], ['b/up', 'linkLoop'], ['c', 'alreadyScanned']],
    );
    assert.ok(ms < 10_000, `took ${ms} ms`);
  });

  it('lets a root be a link, and scans a named file wherever it leads (the user chose it)', async () => {
    const real = await tempDir('beit-real-');
    const files = await writeSyntheticDataset(real, { classes: ['a'], perClass: 3, width: 40, height: 30 });
    const links = await tempDir('beit-links-');
    symlinkSync(real, path.join(links, 'dataset'));
    symlinkSync(files[1], path.join(links, 'named.png'));
    const { results, summary } = await scan([path.join(links, 'dataset'), path.join(links, 'named.png')], model);
    assert.deepEqual(
      results.map((r) => r.image).sort(),
      [...files.map((f) => path.join(links, 'dataset', path.relative(real, f))), path.join(links, 'named.png')].sort(),
    );
    assert.ok(results.every((r) => r.top));
    assert.deepEqual(summary.skipped, { outsideRoots: 0, linkLoop: 0, alreadyScanned: 0 });
  });

  it('refuses a FIFO and /dev/zero from a stat, never opening them (a writer waiting on the FIFO stays blocked)', { timeout: 30_000 }, async () => {
    const root = await tempDir('beit-devices-');
    const files = await writeSyntheticDataset(root, { classes: ['a'], perClass: 2, width: 40, height: 30 });
    const fifo = path.join(root, 'a', 'pipe.png');
    execFileSync('mkfifo', [fifo]);
    const zero = path.join(root, 'a', 'zero.png');
    symlinkSync('/dev/zero', zero);
    // Opening the FIFO for reading, even non-blocking, would let this writer's open return.
    const writer = spawn('sh', ['-c', `exec 3>"$0"; echo opened`, fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
    let writerOutput = '';
    writer.stdout!.on('data', (d) => (writerOutput += d));
    try {
      // The folder (its /dev/zero link leads outside it: skipped), and the link named on its own: refused.
      const { results, summary } = await scan([root, zero], model);
      const byImage = new Map(results.map((r) => [r.image, r]));
      assert.equal(results.length, 4);
      for (const f of files) assert.ok(byImage.get(f)?.top, f);
      assert.equal(byImage.get(fifo)?.errorCode, 'FILE_UNREADABLE');
      assert.match(byImage.get(fifo)!.error!, /is a named pipe \(FIFO\), not an image file/);
      assert.equal(byImage.get(zero)?.errorCode, 'FILE_UNREADABLE');
      assert.match(byImage.get(zero)!.error!, /is a device, not an image file/);
      assert.equal(summary.skipped.outsideRoots, 1);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(writerOutput, '', 'the FIFO was never opened');
      assert.equal(writer.exitCode, null);
    } finally {
      writer.kill();
    }
  });
});
const CONTENDERS = 12;
const TRIALS = 40;

interface Contender {
  child: ChildProcess;
  next(): Promise<{ writable?: boolean; closed?: boolean; error?: string; ready?: boolean }>;
}

function startContender(): Contender {
  const child = fork(LOCK_CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue: unknown[] = [];
  const waiting: Array<(m: unknown) => void> = [];
  child.on('message', (m) => (waiting.length ? waiting.shift()!(m) : queue.push(m)));
  return { child, next: () => new Promise((resolve) => (queue.length ? resolve(queue.shift() as never) : waiting.push(resolve as never))) };
}

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('scan cache lock: one writer', () => {
  const contenders: Contender[] = [];
  before(async () => {
    for (let i = 0; i < CONTENDERS; i++) contenders.push(startContender());
    for (const c of contenders) assert.deepEqual(await c.next(), { ready: true });
  });
  after(() => {
    for (const c of contenders) c.child.kill();
  });

  /** All contenders open `file` in the same millisecond; returns how many got it writable. */
  async function race(file: string): Promise<number> {
    const at = Date.now() + 150;
    for (const c of contenders) c.child.send({ open: true, file, at });
    const answers = await Promise.all(contenders.map((c) => c.next()));
    for (const a of answers) assert.equal(a.error, undefined, a.error);
    const writers = answers.filter((a) => a.writable).length;
    for (const c of contenders) c.child.send({ close: true });
    for (const a of await Promise.all(contenders.map((c) => c.next()))) assert.deepEqual(a, { closed: true });
    return writers;
  }

  it(`${CONTENDERS} processes opening one cache at once, ${TRIALS} times (half over a lock left by a dead process): exactly one writer each time`, async () => {
    const dir = await tempDir('beit-lock-');
    const counts: number[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const file = path.join(dir, `cache-${trial}.log`);
      if (trial % 2 === 1) writeFileSync(`${file}.lock`, String(deadPid()));
      counts.push(await race(file));
    }
    const wrong = counts.filter((n) => n !== 1).length;
    console.log(`# lock race: ${TRIALS} trials x ${CONTENDERS} processes, writers per trial ${JSON.stringify(counts)}`);
    assert.equal(wrong, 0, `trials without exactly one writer: ${wrong} of ${TRIALS} (${JSON.stringify(counts)})`);
  });

  it('two opens racing in one process: one writer, and closing the reader does not free the writer\'s claim', async () => {
    const file = path.join(await tempDir('beit-lock-'), 'cache.log');
    const stores = await Promise.all([ResultStore.open(file), ResultStore.open(file)]);
    const writer = stores.find((s) => !s.isReadOnly)!;
    assert.equal(stores.filter((s) => !s.isReadOnly).length, 1);
    await stores.find((s) => s.isReadOnly)!.close();
    const third = await ResultStore.open(file);
    assert.equal(third.isReadOnly, true);
    await third.close();
    await writer.close();
    const after = await ResultStore.open(file);
    assert.equal(after.isReadOnly, false, 'free again once the writer closed');
    await after.close();
  });

  it('an empty lock file (a writer between creating it and writing its pid) is not taken over while it is fresh', async () => {
    const dir = await tempDir('beit-lock-');
    const file = path.join(dir, 'cache.log');
    writeFileSync(`${file}.lock`, '');
    assert.equal(await race(file), 0, 'nobody writes while the lock may still be owned');
    const store = await ResultStore.open(file);
    assert.equal(store.isReadOnly, true);
    await store.close();
    // A writer that died before writing its pid: its empty lock goes stale by age.
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${file}.lock`, old, old);
    assert.equal(await race(file), 1);
  });
});

function builtCli(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BUILT_CLI, ...args], { timeout: 60_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stderr });
    });
  });
}

describe('beit-lens scan --out never overwrites what the scan reads (built CLI)', () => {
  let modelDir: string;
  let dir: string;
  let image: string;
  let cache: string;
  let cacheBytes: Buffer;
  before(async () => {
    assert.ok(existsSync(BUILT_CLI), 'run npm run build first');
    modelDir = await convertedTinyModel();
    dir = await tempDir('beit-out-');
    [image] = await writeSyntheticDataset(dir, { classes: ['a'], perClass: 2, width: 40, height: 30 });
    cache = path.join(dir, 'cache.log');
    await (await ResultStore.open(cache)).close();
    cacheBytes = readFileSync(cache);
    writeFileSync(path.join(dir, 'map.json'), '{"a": 1}');
  });

  const refused = async (out: string, what: RegExp, extra: string[] = []) => {
    const before = existsSync(out) ? readFileSync(out) : undefined;
    const { code, stderr } = await builtCli(['scan', path.join(dir, 'a'), '--model', modelDir, '--cache', cache, '--out', out, ...extra]);
    assert.notEqual(code, 0);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0], what);
    assert.match(lines[0], /refusing to overwrite it/);
    if (before) assert.deepEqual(readFileSync(out), before, 'nothing overwritten');
    else assert.equal(existsSync(out), false, 'nothing created');
    assert.deepEqual(readFileSync(cache), cacheBytes, 'the cache is intact');
  };

  it('refuses --out equal to --cache, under another spelling or through a link, and its lock file', async () => {
    await refused(cache, /--out is the scan cache \(--cache\)/);
    await refused(path.join(dir, 'a', '..', 'cache.log'), /--out is the scan cache/);
    symlinkSync(cache, path.join(dir, 'link.jsonl'));
    await refused(path.join(dir, 'link.jsonl'), /--out is the scan cache/);
    await refused(`${cache}.lock`, /--out is the scan cache's lock file/);
  });

  it('refuses --out equal to an input: a file to scan, the --label-map file', async () => {
    const imageBytes = readFileSync(image);
    const { code, stderr } = await builtCli(['scan', image, '--model', modelDir, '--cache', cache, '--out', image]);
    assert.notEqual(code, 0);
    assert.deepEqual(readFileSync(image), imageBytes, 'the image is intact');
    assert.match(stderr.trim(), /^[^\n]*--out is one of the files to scan; refusing to overwrite it[^\n]*$/);
    await refused(path.join(dir, 'map.json'), /--out is the --label-map file/, ['--label-map', path.join(dir, 'map.json')]);
  });
});
