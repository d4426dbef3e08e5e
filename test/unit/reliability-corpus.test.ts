/**
 * Hostile and broken images through the paths users hit: `BeitModel.classifyFiles` (library, extension worker,
 * scans), the hover thumbnail, and the built CLI's `classify --json` on one batch holding every case plus good
 * images. Each case must give its specific error or a correct result, within a time and a memory bound, and
 * never crash or hang; the good images in the same batch must still come out right.
 *
 * The committed corpus and its expected outcomes come from scripts/make-bad-corpus.ts (see
 * test/fixtures/bad/README.md); cases that cannot be committed (devices, FIFOs, odd names, files changing
 * under the reader) are made here in a temporary folder.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, promises as fsp, readdirSync, readFileSync, renameSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { CORPUS, CORPUS_DIR, REFERENCE_DIR, REFERENCES, SVG_CANARY_HOST } from '../../scripts/make-bad-corpus';
import { BeitModel, type ClassifyResult } from '../../src/core/beitModel';
import { BeitLensError, type ErrorCode } from '../../src/core/errors';
import { decodeImage, makeThumbnailDataUri, type DecodedImage } from '../../src/core/image';
import type { Prediction } from '../../src/core/predictions';
import { decodeFileName } from '../../src/core/scan/fileNames';
import { convertedTinyModel, FIXTURE_IMAGES, tempDir } from '../helpers/fixtures';
import { MB, mb, measure } from '../helpers/memory';

/** Every case must be answered within this, on any path. The slowest measured case takes about 50 ms. */
const TIME_BOUND_MS = 5000;
/**
 * Peak RSS growth allowed while one case is classified. A decoded 64x48 image plus the 224x224 model input is
 * well under a megabyte; the bound leaves room for allocator noise, while decoding the bomb would need 30 GB.
 */
const MEMORY_BOUND = 48 * MB;
/** A refused input decodes nothing (the bomb is refused from its header): only bookkeeping may show up. */
const REFUSAL_MEMORY_BOUND = 16 * MB;
/** The built CLI, whole batch, one process: startup, model load, 40-odd images. */
const CLI_TIME_BOUND_MS = 60_000;
const CLI_MAX_RSS_BOUND = 600 * MB;

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const REPORT_MAX_RSS = path.resolve(__dirname, '..', 'helpers', 'reportMaxRss.cjs');
const run = promisify(execFile);

type Expectation = { kind: 'error'; code: ErrorCode; message: RegExp } | { kind: 'same-as'; reference: string } | { kind: 'close-to'; reference: string; maxMeanAbsDiff: number };

interface Case {
  name: string;
  /** Absolute path; for runtime cases filled in once the temporary folder exists. */
  file: string;
  expect: Expectation;
  /** Runtime cases: the path inside the temporary folder. */
  runtime?: string;
}

const cases: Case[] = CORPUS.map((item) => ({
  name: item.file,
  file: path.join(CORPUS_DIR, item.file),
  expect:
    item.outcome.kind === 'error'
      ? { kind: 'error', code: item.outcome.code, message: item.outcome.message }
      : item.outcome.kind === 'same-as'
        ? { kind: 'same-as', reference: path.join(REFERENCE_DIR, item.outcome.reference) }
        : { kind: 'close-to', reference: path.join(REFERENCE_DIR, item.outcome.reference), maxMeanAbsDiff: item.outcome.maxMeanAbsDiff },
}));

const PLAIN = path.join(REFERENCE_DIR, 'plain.jpg');
/** Raw bytes of a name that is not UTF-8 (Latin-1 é and a stray 0xff). */
const NON_UTF8_BYTES = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('_'), Buffer.from([0xff]), Buffer.from('.png')]);
/** The same name as `scan` reports it and the CLI recovers it from argv: each bad byte b as U+DC00+b. */
const NON_UTF8_ESCAPED = 'caf\udce9_\udcff.png';
const LONG_LEGAL = path.join('d'.repeat(60), `${'n'.repeat(246)}.jpg`);

cases.push(
  { name: 'symlink to /dev/zero', file: '', runtime: 'zero.png', expect: { kind: 'error', code: 'FILE_UNREADABLE', message: /is a device, not an image file/ } },
  { name: 'FIFO', file: '', runtime: 'pipe.png', expect: { kind: 'error', code: 'FILE_UNREADABLE', message: /is a named pipe \(FIFO\), not an image file/ } },
  { name: 'directory named x.png', file: '', runtime: 'x.png', expect: { kind: 'error', code: 'FILE_UNREADABLE', message: /is a directory, not an image file/ } },
  { name: 'SVG pointing at the live canary', file: '', runtime: 'svg-live-canary.svg', expect: { kind: 'error', code: 'IMAGE_UNSUPPORTED', message: /SVG/ } },
  { name: 'SVG pointing at the live canary, named .png', file: '', runtime: 'svg-live-canary.png', expect: { kind: 'error', code: 'IMAGE_UNSUPPORTED', message: /SVG/ } },
  { name: '300-character file name', file: '', runtime: `${'a'.repeat(296)}.png`, expect: { kind: 'error', code: 'FILE_UNREADABLE', message: /file name too long/ } },
  { name: '250-character name in a 300+ character path', file: '', runtime: LONG_LEGAL, expect: { kind: 'same-as', reference: PLAIN } },
  // Opened by its bytes: what `scan` reports for it, and what the CLI recovers from /proc/self/cmdline.
  { name: 'name that is not UTF-8 (bytes surrogate-escaped)', file: '', runtime: NON_UTF8_ESCAPED, expect: { kind: 'same-as', reference: PLAIN } },
  // What a UTF-8 readdir (or argv without /proc) gives for it, U+FFFD for each bad byte: a name that does not exist.
  { name: 'name that is not UTF-8, decoded lossily', file: '', runtime: 'caf?_?.png', expect: { kind: 'error', code: 'FILE_NOT_FOUND', message: /file not found \(the name is not valid UTF-8/ } },
);

/** Good images classified in the same batches as the bad ones. */
const goodImages = [...REFERENCES.map((r) => path.join(REFERENCE_DIR, r)), ...readdirSync(FIXTURE_IMAGES).map((f) => path.join(FIXTURE_IMAGES, f))];

let model: BeitModel;
let runtimeDir: string;
/** Single-image predictions of every good image, the ground truth for "same-as" and batch checks. */
const truth = new Map<string, Prediction[]>();
const decodedReference = new Map<string, DecodedImage>();
/** The canary the SVGs point at: any request means an SVG was parsed or run. */
let canary: Server;
const canaryRequests: string[] = [];
/** Per-case figures (time, peak RSS growth) and the batch runs' summaries, printed at the end for the README. */
const figures: { name: string; outcome: string; ms: number; peakRss: number }[] = [];
const batchFigures: string[] = [];

before(async () => {
  model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu' });
  runtimeDir = await tempDir('beit-lens-bad-');

  canary = createServer((req, res) => {
    canaryRequests.push(`${req.method} ${req.url}`);
    res.end('canary');
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(canary.address() as AddressInfo).port}`;
  const svg = readFileSync(path.join(CORPUS_DIR, 'svg-external.svg'), 'utf8');
  assert.ok(svg.includes(SVG_CANARY_HOST));
  const live = svg.replaceAll(SVG_CANARY_HOST, host);

  const at = (name: string) => path.join(runtimeDir, name);
  symlinkSync('/dev/zero', at('zero.png'));
  execFileSync('mkfifo', [at('pipe.png')]);
  mkdirSync(at('x.png'));
  writeFileSync(at('svg-live-canary.svg'), live);
  writeFileSync(at('svg-live-canary.png'), live);
  mkdirSync(path.dirname(at(LONG_LEGAL)));
  copyFileSync(PLAIN, at(LONG_LEGAL));
  writeFileSync(Buffer.concat([Buffer.from(`${runtimeDir}/`), NON_UTF8_BYTES]), readFileSync(PLAIN));
  for (const c of cases) if (c.runtime) c.file = at(c.runtime);
  assert.equal(decodeFileName(NON_UTF8_BYTES), NON_UTF8_ESCAPED);
  // What readdir (like argv) gives back for the non-UTF-8 name: each bad byte replaced by U+FFFD.
  const lossy = cases.find((c) => c.runtime === 'caf?_?.png')!;
  lossy.file = at(readdirSync(runtimeDir).find((n) => n.startsWith('caf'))!);
  assert.ok(lossy.file.includes('\uFFFD'));
  assert.ok(at(LONG_LEGAL).length > 300);

  for (const file of new Set([...goodImages, ...cases.flatMap((c) => (c.expect.kind === 'error' ? [] : [c.expect.reference]))])) {
    truth.set(file, await model.classify(file));
    decodedReference.set(file, await decodeImage(file));
  }
});

after(async () => {
  await model?.dispose();
  await new Promise((resolve) => canary?.close(resolve));
  await fsp.rm(runtimeDir, { recursive: true, force: true });
});

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length, 'decoded sizes differ');
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

/** Batched inference differs from single-image inference in the last float bits. */
function assertSamePredictions(actual: Prediction[] | undefined, expected: Prediction[], what: string): void {
  assert.ok(actual, `${what}: no predictions`);
  assert.deepEqual(actual.map((p) => p.index), expected.map((p) => p.index), what);
  assert.deepEqual(actual.map((p) => p.label), expected.map((p) => p.label), what);
  actual.forEach((p, i) => assert.ok(Math.abs(p.score - expected[i].score) < 1e-5, `${what}: score ${p.score} vs ${expected[i].score}`));
}

function assertWellFormedTop(top: Prediction[] | undefined, what: string): void {
  assert.ok(top && top.length === 5, `${what}: expected 5 predictions`);
  assert.equal(new Set(top.map((p) => p.index)).size, 5, what);
  for (let i = 0; i < top.length; i++) {
    assert.equal(top[i].label, model.labels[top[i].index], what);
    assert.ok(top[i].score > 0 && top[i].score <= 1 && (i === 0 || top[i].score <= top[i - 1].score), what);
  }
}

/** Checks one classify result (library or CLI JSON line) against what the case must give. */
function assertClassifyOutcome(c: Case, result: Pick<ClassifyResult, 'image' | 'top' | 'error'>, exact: boolean): void {
  assert.equal(result.image, c.file);
  if (c.expect.kind === 'error') {
    assert.equal(result.top, undefined, `${c.name}: expected an error, got predictions`);
    const error = result.error ?? '';
    assert.ok(error.startsWith(`${c.file}: `), `${c.name}: the error should start with the file: ${error}`);
    assert.match(error, c.expect.message, c.name);
    assert.ok(!error.includes('\n'), `${c.name}: one line`);
    return;
  }
  assert.equal(result.error, undefined, `${c.name}: unexpected error ${result.error}`);
  if (c.expect.kind === 'same-as') {
    if (exact) assert.deepEqual(result.top, truth.get(c.expect.reference), c.name);
    else assertSamePredictions(result.top, truth.get(c.expect.reference)!, c.name);
  } else {
    assertWellFormedTop(result.top, c.name);
  }
}

describe('every hostile input gets its specific error or a correct result, in bounded time and memory', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const classified = await measure(() => model.classifyFiles([c.file], { topK: 5 }));
      assert.ok(classified.ok, `classifyFiles threw: ${String(classified.error)}`);
      assertClassifyOutcome(c, classified.value![0], true);

      // The decoder's verdict in detail: the error code, or the pixels.
      const decoded = await measure(() => decodeImage(c.file));
      if (c.expect.kind === 'error') {
        assert.ok(decoded.error instanceof BeitLensError, `expected a BeitLensError, got ${String(decoded.error)}`);
        assert.equal(decoded.error.code, c.expect.code, decoded.error.message);
      } else {
        assert.ok(decoded.ok, String(decoded.error));
        const reference = decodedReference.get(c.expect.reference)!;
        assert.deepEqual([decoded.value!.width, decoded.value!.height], [reference.width, reference.height]);
        const diff = meanAbsDiff(decoded.value!.data, reference.data);
        if (c.expect.kind === 'same-as') assert.equal(diff, 0, `${c.name}: pixels differ from ${c.expect.reference}`);
        else assert.ok(diff <= c.expect.maxMeanAbsDiff, `${c.name}: mean difference ${diff.toFixed(2)} levels`);
      }

      // Hovers read the same files through the thumbnail path.
      const thumbnail = await measure(() => makeThumbnailDataUri(c.file, 128));
      if (c.expect.kind === 'error') {
        assert.ok(thumbnail.error instanceof BeitLensError && thumbnail.error.code === c.expect.code, `thumbnail: ${String(thumbnail.error)}`);
      } else {
        assert.match(thumbnail.value ?? String(thumbnail.error), /^data:image\/(jpeg|png);base64,/);
      }

      const ms = Math.max(classified.ms, decoded.ms, thumbnail.ms);
      const peakRss = Math.max(classified.peakRssGrowth, decoded.peakRssGrowth, thumbnail.peakRssGrowth);
      assert.ok(ms < TIME_BOUND_MS, `${c.name} took ${ms.toFixed(0)} ms`);
      assert.ok(peakRss < (c.expect.kind === 'error' ? REFUSAL_MEMORY_BOUND : MEMORY_BOUND), `${c.name} grew RSS by ${mb(peakRss)}`);
      figures.push({ name: c.name, outcome: c.expect.kind === 'error' ? c.expect.code : `classified (${c.expect.kind})`, ms, peakRss });
    });
  }
});

describe('one batch of every case plus good images', () => {
  it('classifyFiles answers each in order; the good images are unaffected', async () => {
    // Interleave so every batch of 8 mixes bad and good files.
    const files: string[] = [];
    const byFile = new Map(cases.map((c) => [c.file, c]));
    const bad = cases.map((c) => c.file);
    for (let i = 0; i < Math.max(bad.length, goodImages.length); i++) files.push(...[bad[i], goodImages[i]].filter((f): f is string => f !== undefined));
    const measured = await measure(() => model.classifyFiles(files, { topK: 5, batchSize: 8 }));
    assert.ok(measured.ok, String(measured.error));
    const results = measured.value!;
    assert.deepEqual(results.map((r) => r.image), files);
    for (const r of results) {
      const c = byFile.get(r.image);
      if (c) assertClassifyOutcome(c, r, false);
      else assertSamePredictions(r.top, truth.get(r.image)!, r.image);
    }
    assert.ok(measured.ms < TIME_BOUND_MS * 4, `batch took ${measured.ms.toFixed(0)} ms`);
    assert.ok(measured.peakRssGrowth < MEMORY_BOUND * 2, `batch grew RSS by ${mb(measured.peakRssGrowth)}`);
    batchFigures.push(`library batch of ${files.length}: ${results.filter((r) => r.top).length} classified, ${results.filter((r) => r.error).length} errors, ${measured.ms.toFixed(0)} ms, peak RSS +${mb(measured.peakRssGrowth)}`);
  });

  it('the built CLI (classify --json) answers each in order with one JSON line, the good images correctly', { timeout: CLI_TIME_BOUND_MS * 2 }, async () => {
    assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
    const nonUtf8 = cases.find((c) => c.runtime === NON_UTF8_ESCAPED)!;
    const others = cases.filter((c) => c !== nonUtf8).map((c) => c.file);
    const files = [...others, ...goodImages];
    // The non-UTF-8 name goes through a shell so the CLI gets the raw bytes in argv, as from `beit-lens classify *.png`;
    // it recovers them and classifies the file, and its JSON line names it surrogate-escaped, as `scan` does.
    const rawName = `${runtimeDir}/${[...NON_UTF8_BYTES].map((b) => (b < 0x80 ? String.fromCharCode(b) : `\\${b.toString(8)}`)).join('')}`;
    const started = performance.now();
    const child = await run(
      '/bin/sh',
      ['-c', `exec "$@" "$(printf '${rawName}')"`, 'sh', process.execPath, '--require', REPORT_MAX_RSS, CLI, 'classify', '--json', '--model', model.directory.dir, ...files],
      { timeout: CLI_TIME_BOUND_MS, maxBuffer: 16 * MB },
    ).then(
      (r) => ({ code: 0, ...r }),
      (e: { code?: number; stdout?: string; stderr?: string; signal?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''} ${e.signal ?? ''}` }),
    );
    const ms = performance.now() - started;
    assert.equal(child.code, 1, `a failed image makes the exit code 1; stderr:\n${child.stderr}`);
    const lines = child.stdout.trim().split('\n').map((l) => JSON.parse(l) as ClassifyResult);
    assert.deepEqual(lines.map((l) => l.image), [...files, nonUtf8.file]);
    const byFile = new Map(cases.map((c) => [c.file, c]));
    for (const line of lines) {
      const c = byFile.get(line.image);
      if (c) assertClassifyOutcome(c, line, false);
      else assertSamePredictions(line.top, truth.get(line.image)!, line.image);
    }
    const maxRss = Number(/max-rss-kb (\d+)/.exec(child.stderr)?.[1]) * 1024;
    assert.ok(maxRss > 0, `no max RSS report in stderr:\n${child.stderr}`);
    assert.ok(maxRss < CLI_MAX_RSS_BOUND, `CLI max RSS ${mb(maxRss)}`);
    assert.ok(ms < CLI_TIME_BOUND_MS);
    batchFigures.push(`CLI batch of ${lines.length}: ${lines.filter((l) => l.top).length} classified, ${lines.filter((l) => l.error).length} errors, exit code 1, ${ms.toFixed(0)} ms, process max RSS ${mb(maxRss)}`);
  });
});

describe('a file deleted or replaced while it is read', () => {
  const A = path.join(REFERENCE_DIR, 'plain.jpg');
  const B = path.join(REFERENCE_DIR, 'rgb8.png');
  /** Smaller than A, so an in-place overwrite after open leaves exactly this image in the (A-sized) read buffer. */
  const SMALL = path.join(REFERENCE_DIR, 'palette-trns-rgb.png');

  /**
   * Runs `mutate` once at the given point of the decoder's file read: right after its stat (before open), or
   * right after it stats the opened handle (before it reads). Patches fs.promises, which image.ts calls through.
   */
  async function classifyWithMutation(target: string, when: 'after-stat' | 'after-open', mutate: () => void): Promise<ClassifyResult> {
    const realStat = fsp.stat;
    const realOpen = fsp.open;
    let fired = false;
    const fire = () => {
      if (!fired) {
        fired = true;
        mutate();
      }
    };
    if (when === 'after-stat') {
      (fsp as { stat: unknown }).stat = async (...args: Parameters<typeof fsp.stat>) => {
        const stats = await realStat(...args);
        if (args[0] === target) fire();
        return stats;
      };
    } else {
      (fsp as { open: unknown }).open = async (...args: Parameters<typeof fsp.open>) => {
        const handle = await realOpen(...args);
        if (args[0] === target) {
          const handleStat = handle.stat.bind(handle);
          handle.stat = (async (...a: Parameters<typeof handle.stat>) => {
            const stats = await handleStat(...a);
            fire();
            return stats;
          }) as typeof handle.stat;
        }
        return handle;
      };
    }
    try {
      const started = performance.now();
      const [result] = await model.classifyFiles([target]);
      assert.ok(fired, 'the mutation point was never reached');
      assert.ok(performance.now() - started < TIME_BOUND_MS);
      return result;
    } finally {
      (fsp as { stat: unknown }).stat = realStat;
      (fsp as { open: unknown }).open = realOpen;
    }
  }

  const scenarios: { name: string; when: 'after-stat' | 'after-open'; mutate: (target: string) => void; expect: string | RegExp }[] = [
    { name: 'replaced by rename between stat and open: the new file is classified', when: 'after-stat', mutate: (t) => (copyFileSync(B, `${t}.new`), renameSync(`${t}.new`, t)), expect: B },
    { name: 'deleted between stat and open: file not found', when: 'after-stat', mutate: (t) => unlinkSync(t), expect: /: file not found$/ },
    { name: 'swapped for a FIFO between stat and open: refused without blocking', when: 'after-stat', mutate: (t) => (unlinkSync(t), execFileSync('mkfifo', [t])), expect: /named pipe \(FIFO\)/ },
    { name: 'swapped for a directory between stat and open: refused', when: 'after-stat', mutate: (t) => (unlinkSync(t), mkdirSync(t)), expect: /is a directory/ },
    { name: 'deleted after open: the opened file is read in full', when: 'after-open', mutate: (t) => unlinkSync(t), expect: A },
    { name: 'replaced by rename after open: the opened file is read in full', when: 'after-open', mutate: (t) => (copyFileSync(B, `${t}.new`), renameSync(`${t}.new`, t)), expect: A },
    { name: 'overwritten in place with a smaller image after open: the bytes read are classified', when: 'after-open', mutate: (t) => writeFileSync(t, readFileSync(SMALL)), expect: SMALL },
    { name: 'truncated to half after open: a decode error', when: 'after-open', mutate: (t) => truncateSync(t, Math.floor(readFileSync(A).length / 2)), expect: /cannot decode image/ },
    { name: 'truncated to zero after open: an empty-file error', when: 'after-open', mutate: (t) => truncateSync(t, 0), expect: /file is empty \(0 bytes\)/ },
  ];

  scenarios.forEach((s, i) => {
    it(s.name, async () => {
      const dir = path.join(runtimeDir, `swap-${i}`);
      mkdirSync(dir);
      const target = path.join(dir, 'swapped.jpg');
      copyFileSync(A, target);
      const result = await classifyWithMutation(target, s.when, () => s.mutate(target));
      if (typeof s.expect === 'string') {
        assert.equal(result.error, undefined, result.error);
        assert.deepEqual(result.top, truth.get(s.expect));
      } else {
        assert.equal(result.top, undefined);
        assert.match(result.error ?? '', s.expect);
      }
    });
  });

  it('a process swapping, deleting and truncating the file for 2 s never gets anything but A, B or a file error', { timeout: 30_000 }, async () => {
    const dir = path.join(runtimeDir, 'race');
    mkdirSync(dir);
    const target = path.join(dir, 'racing.img');
    copyFileSync(A, target);
    // The mutator is a separate process, so its renames and writes interleave with our reads at any point.
    const mutator = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs');
         const [target, a, b] = process.argv.slice(1);
         const A = fs.readFileSync(a), B = fs.readFileSync(b);
         const end = Date.now() + 2000;
         let n = 0;
         while (Date.now() < end) {
           switch (n++ % 6) {
             case 0: fs.writeFileSync(target + '.a', A); fs.renameSync(target + '.a', target); break;
             case 1: fs.writeFileSync(target + '.b', B); fs.renameSync(target + '.b', target); break;
             case 2: try { fs.unlinkSync(target); } catch {} break;
             case 3: fs.writeFileSync(target, A); break;
             case 4: try { fs.truncateSync(target, 700); } catch {} break;
             case 5: fs.writeFileSync(target, B); break;
           }
         }
         process.stdout.write(String(n));`,
        target,
        A,
        B,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let mutations = '';
    mutator.stdout.on('data', (d: Buffer) => (mutations += d.toString()));
    const exited = new Promise<number | null>((resolve) => mutator.on('exit', resolve));
    let running = true;
    void exited.then(() => (running = false));

    const outcomes = { A: 0, B: 0, notFound: 0, decodeError: 0 };
    const allowedError = /: (file not found|cannot decode image: .*|file is empty \(0 bytes\)|not a recognised image .*)$/;
    let reads = 0;
    while (running && reads < 2000) {
      const [r] = await model.classifyFiles([target]);
      reads++;
      if (r.error !== undefined) {
        assert.match(r.error, allowedError);
        if (/not found/.test(r.error)) outcomes.notFound++;
        else outcomes.decodeError++;
      } else if (JSON.stringify(r.top) === JSON.stringify(truth.get(A))) outcomes.A++;
      else {
        assert.deepEqual(r.top, truth.get(B), 'a result must be A\'s or B\'s');
        outcomes.B++;
      }
    }
    assert.equal(await exited, 0);
    assert.ok(reads >= 10, `only ${reads} reads`);
    assert.ok(outcomes.A + outcomes.B > 0, `no read saw a whole file: ${JSON.stringify(outcomes)}`);
    batchFigures.push(`racing mutator: ${mutations} mutations, ${reads} reads: ${outcomes.A} saw A, ${outcomes.B} saw B, ${outcomes.notFound} not found, ${outcomes.decodeError} decode errors`);
  });
});

describe('summary', () => {
  it('no SVG was fetched, parsed or run: the canary on 127.0.0.1 got 0 requests', () => {
    assert.deepEqual(canaryRequests, []);
  });

  it('prints the figures for the README', (t) => {
    assert.equal(figures.length, cases.length);
    for (const f of figures) t.diagnostic(`${f.name}: ${f.outcome}, ${f.ms.toFixed(0)} ms, peak RSS +${mb(f.peakRss)}`);
    for (const line of batchFigures) t.diagnostic(line);
    t.diagnostic(`reliability corpus: ${cases.length} cases, slowest ${Math.max(...figures.map((f) => f.ms)).toFixed(0)} ms, largest peak RSS growth ${mb(Math.max(...figures.map((f) => f.peakRss)))}`);
  });
});
