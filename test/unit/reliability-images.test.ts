/**
 * Images that cost more memory than their pixel count says, and JPEGs that libjpeg "recovers" by inventing grey
 * pixels (issue #12, section 3). Memory bounds for a whole classify call are measured in a child process, whose
 * peak RSS the preloaded reportMaxRss.cjs reports; the rest in-process with test/helpers/memory.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createDeflate, crc32 } from 'node:zlib';
import sharp from 'sharp';

import { BeitModel, type ClassifyResult } from '../../src/core/beitModel';
import { ByteBudget, DEFAULT_DECODE_BUDGET_BYTES, RECLAIM_AFTER_BYTES, type BudgetRelease, type DecodeBudget } from '../../src/core/decodeBudget';
import { BeitLensError } from '../../src/core/errors';
import { decodeImage, DEFAULT_MAX_ASPECT_RATIO, makeThumbnailDataUri } from '../../src/core/image';
import { withoutExtraneousBytes } from '../../src/core/jpegMarkers';
import { PilResample, pilResizeScratchBytes } from '../../src/core/pilResize';
import { preprocessImage } from '../../src/core/preprocess';
import { loadPreprocessorConfig, type PreprocessorConfig } from '../../src/core/preprocessorConfig';
import { PreprocessPool } from '../../src/core/scan/preprocessPool';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';
import { MB, mb, measure } from '../helpers/memory';

const run = promisify(execFile);
const REPORT_MAX_RSS = path.resolve(__dirname, '..', 'helpers', 'reportMaxRss.cjs');
const CLASSIFY_CHILD = path.resolve(__dirname, '..', 'helpers', 'classifyChild.ts');

/** The bounds. */
const EIGHT_PNGS_MAX_RSS = 1.5e9;
const REFUSAL_MS = 2000;
const REFUSAL_GROWTH = 100 * MB;

const figures: string[] = [];

function pngChunk(type: string, body: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/**
 * A real 8-bit grey PNG of width x height (every row present and valid), deflated as a stream so that a
 * 1 x 100,000,000 image (200 MB of rows) never exists uncompressed here.
 */
async function streamedGreyPng(width: number, height: number): Promise<Buffer> {
  const row = Buffer.alloc(1 + width, 0x80);
  row[0] = 0; // filter: none
  const rowsPerChunk = Math.max(1, Math.floor((1 << 21) / row.length));
  const chunk = Buffer.concat(Array.from({ length: rowsPerChunk }, () => row));
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const finished = new Promise<void>((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  for (let written = 0; written < height; written += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, height - written);
    if (!deflate.write(rows === rowsPerChunk ? chunk : chunk.subarray(0, rows * row.length))) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await finished;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(parts)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A 640x480 baseline JPEG with detail everywhere, so every 8x8 block carries entropy-coded data. */
async function detailedJpeg(): Promise<Buffer> {
  const w = 640;
  const h = 480;
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7 + (i >> 9) * 13) & 255;
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

function markerOffset(jpeg: Buffer, marker: number): number {
  for (let i = 2; i < jpeg.length - 1; i++) if (jpeg[i] === 0xff && jpeg[i + 1] === marker) return i;
  throw new Error(`no marker FF ${marker.toString(16)}`);
}

const EOI = Buffer.from([0xff, 0xd9]);

/** The three damaged JPEGs of the issue, each of which libjpeg fills with grey and reports only as a warning. */
async function damagedJpegs(base: Buffer): Promise<Record<string, Buffer>> {
  const sos = markerOffset(base, 0xda);
  const scanStart = sos + 2 + base.readUInt16BE(sos + 2);
  // Keep only the first ~28 KB of scan data under a frame header that promises 10000x10000.
  const bigSof = Buffer.concat([base.subarray(0, scanStart + 28 * 1024), EOI]);
  const sof = markerOffset(bigSof, 0xc0);
  bigSof.writeUInt16BE(10000, sof + 5);
  bigSof.writeUInt16BE(10000, sof + 7);
  return {
    'cut at 50% with FF D9 appended': Buffer.concat([base.subarray(0, Math.floor(base.length / 2)), EOI]),
    'SOF claiming 10000x10000 over 28 KB of data': bigSof,
    'no scan data (SOS, then EOI)': Buffer.concat([base.subarray(0, scanStart), EOI]),
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<BeitLensError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof BeitLensError, `not a BeitLensError: ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, pattern);
  assert.ok(!err.message.includes('\n'), 'one line');
  return err;
}

/** Records what a budget is asked for, to check bounds and that everything is given back. */
class RecordingBudget implements DecodeBudget {
  peak = 0;
  largest = 0;
  acquisitions = 0;
  private readonly inner: ByteBudget;
  constructor(readonly totalBytes: number) {
    this.inner = new ByteBudget(totalBytes);
  }
  get inUse(): number {
    return this.inner.inUse;
  }
  async acquire(bytes: number): Promise<BudgetRelease> {
    const release = await this.inner.acquire(bytes);
    this.acquisitions++;
    this.largest = Math.max(this.largest, bytes);
    this.peak = Math.max(this.peak, this.inner.inUse);
    return release;
  }
}

let dir: string;
let modelDir: string;
let model: BeitModel;
let fastModel: BeitModel;
let config: PreprocessorConfig;

before(async () => {
  dir = await tempDir('beit-images-');
  modelDir = await convertedTinyModel();
  model = await BeitModel.load(modelDir);
  fastModel = await BeitModel.load(modelDir, { preprocess: { fast: true } });
  config = await loadPreprocessorConfig(path.join(modelDir, 'preprocessor_config.json'));
});

after(async (t) => {
  await model?.dispose();
  await fastModel?.dispose();
  // 35 MB of 10000x10000 PNGs per run.
  if (dir) await rm(dir, { recursive: true, force: true });
  for (const f of figures) (t as unknown as { diagnostic?(s: string): void }).diagnostic?.(f);
  for (const f of figures) process.stderr.write(`[reliability-images] ${f}\n`);
});

describe('the decode budget', () => {
  it('grants in FIFO order, waits for room, refuses more than the whole budget, and releases once', async () => {
    const budget = new ByteBudget(100);
    const order: string[] = [];
    const a = await budget.acquire(60);
    const big = budget.acquire(50).then((r) => (order.push('big'), r));
    const small = budget.acquire(10).then((r) => (order.push('small'), r));
    await new Promise((r) => setImmediate(r));
    // 10 bytes would fit beside a, but the 50-byte request came first.
    assert.deepEqual([budget.inUse, budget.queued, order], [60, 2, []]);
    a();
    a();
    const [rb, rs] = await Promise.all([big, small]);
    assert.deepEqual([budget.inUse, order], [60, ['big', 'small']]);
    rb();
    rs();
    assert.equal(budget.inUse, 0);
    await assert.rejects(budget.acquire(101), RangeError);
    assert.equal(DEFAULT_DECODE_BUDGET_BYTES, 1024 ** 3);
  });

  it("charges the exact resize's buffers as pilResize.ts allocates them", () => {
    // 640x480 -> 224x224 bilinear: 7 taps per axis; tables 224 x (2 + 7) x 4 + 7 x 8 each, the horizontal pass's
    // 224x480 RGB image, the 224x224 output and one Int32 accumulator row.
    assert.equal(pilResizeScratchBytes(640, 480, 3, 224, 224, PilResample.BILINEAR), 2 * (224 * 9 * 4 + 56) + 224 * 480 * 3 + 224 * 224 * 3 + 224 * 3 * 4);
    assert.equal(pilResizeScratchBytes(224, 224, 3, 224, 224, PilResample.BILINEAR), 224 * 224 * 3);
    assert.ok(pilResizeScratchBytes(1, 100_000_000, 3, 224, 224, PilResample.BILINEAR) > 67e9);
  });

  it('bounds concurrent decodes of one batch, with the same results as unbounded', async () => {
    const file = path.join(dir, 'photo-1000x800.png');
    const raw = Buffer.alloc(1000 * 800 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + (i >> 11)) & 255;
    await sharp(raw, { raw: { width: 1000, height: 800, channels: 3 } }).png().toFile(file);
    const reference = await preprocessImage(file, config);
    // One decode costs 1000x800x3 + 768 source rows + the resize + the model input, about 6.2 MB: two fit, not three.
    const budget = new RecordingBudget(16 * MB);
    const results = await Promise.all(Array.from({ length: 10 }, () => preprocessImage(file, config, { budget })));
    for (const r of results) assert.deepEqual(r.pixelValues, reference.pixelValues);
    assert.equal(budget.acquisitions, 10);
    assert.equal(budget.inUse, 0);
    assert.ok(budget.largest > 5 * MB && budget.largest < 8 * MB, `one decode ${budget.largest}`);
    assert.ok(budget.peak <= 16 * MB && budget.peak >= 2 * budget.largest, `peak ${budget.peak}`);
  });

  it('refuses an image larger than the whole budget from its header, naming the file and the figures', async () => {
    const file = path.join(dir, 'too-big-for-budget.png');
    await sharp({ create: { width: 2000, height: 2000, channels: 3, background: 'teal' } }).png().toFile(file);
    const budget = new RecordingBudget(4 * MB);
    for (const attempt of [() => preprocessImage(file, config, { budget }), () => decodeImage(file, { budget })]) {
      const err = await rejectsWith(attempt(), 'IMAGE_TOO_LARGE', /2000x2000: decoding it takes 1[0-9] MB, more than the whole decode budget of 4 MB/);
      assert.ok(err.message.startsWith(`${file}: `));
    }
    assert.equal(budget.acquisitions, 0);
  });

  it("a scan's worker threads draw on the main thread's budget, and give it back when stopped", async () => {
    const files = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        const file = path.join(dir, `pool-${i}.png`);
        await sharp({ create: { width: 900, height: 700, channels: 3, background: { r: 40 * i, g: 90, b: 200 - 30 * i } } }).png().toFile(file);
        return file;
      }),
    );
    const budget = new RecordingBudget(6 * MB);
    const pool = new PreprocessPool({ preprocessor: config, options: { budget }, workers: 2, jobsPerWorker: 2, niceness: 0 });
    try {
      const outcomes = await Promise.all(files.map(async (f) => pool.run(new Uint8Array(await readFile(f)))));
      for (const [i, outcome] of outcomes.entries()) {
        assert.ok(outcome.ok, JSON.stringify(outcome));
        assert.deepEqual(outcome.pixelValues, (await preprocessImage(files[i], config)).pixelValues);
      }
      assert.equal(budget.acquisitions, files.length);
      assert.ok(budget.peak <= 6 * MB && budget.peak > 0, `peak ${budget.peak}`);
      assert.equal(budget.inUse, 0);
      // Too large for the pool's budget: refused in the worker from the header, nothing reserved.
      const huge = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: 'red' } }).png().toBuffer();
      const refused = await pool.run(new Uint8Array(huge));
      assert.ok(!refused.ok && refused.code === 'IMAGE_TOO_LARGE' && /more than the whole decode budget of 6 MB/.test(refused.error), JSON.stringify(refused));
      // Stopped mid-decode: the reservations of the terminated workers are returned.
      // The bytes are read first, so every run is handed to the pool before it closes.
      const bytes = await Promise.all(files.map((f) => readFile(f)));
      const inFlight = bytes.map((b) => pool.run(new Uint8Array(b)));
      const deadline = Date.now() + 5000;
      while (budget.inUse === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
      assert.ok(budget.inUse > 0, 'no decode was holding budget');
      await pool.close();
      // A job the close cut short is cancelled (never a result of a half-done decode); none is lost unanswered.
      for (const settled of await Promise.allSettled(inFlight)) {
        if (settled.status === 'rejected') assert.equal((settled.reason as { code?: string }).code, 'CANCELLED', String(settled.reason));
      }
      assert.equal(budget.inUse, 0);
    } finally {
      await pool.close();
    }
  });

  it('a worker frees a large decode (over RECLAIM_AFTER_BYTES) before giving its budget back', async () => {
    const file = path.join(dir, 'large-5000x4000.png');
    await sharp({ create: { width: 5000, height: 4000, channels: 3, background: { r: 12, g: 140, b: 230 } } }).png().toFile(file);
    const budget = new RecordingBudget(256 * MB);
    const pool = new PreprocessPool({ preprocessor: config, options: { budget }, workers: 1, niceness: 0 });
    try {
      const outcome = await pool.run(new Uint8Array(await readFile(file)));
      assert.ok(outcome.ok, JSON.stringify(outcome));
      assert.deepEqual(outcome.pixelValues, (await preprocessImage(file, config)).pixelValues);
      assert.ok(budget.largest >= RECLAIM_AFTER_BYTES, `cost ${budget.largest}`);
      // Larger than the thread's standing credit (which it still holds), so it asked.
      assert.equal(pool.workerCredit, 64 * 1024 * 1024);
      assert.ok(budget.largest > pool.workerCredit);
      assert.equal(pool.budgetRequests, 1);
      assert.equal(budget.inUse, pool.workerCredit);
      await pool.close();
      assert.equal(budget.inUse, 0);
    } finally {
      await pool.close();
    }
  });

  it('a worker decodes small images on its standing credit without asking; a large one asks, even past the credits', async () => {
    const small = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) => sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 30 * i, g: 60, b: 120 } } }).jpeg().toBuffer()),
    );
    // 4000x3000 costs about 47 MB: it fits the 64 MiB budget, but not beside the thread's 32 MiB credit.
    const large = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: { r: 200, g: 10, b: 90 } } }).png().toBuffer();
    const budget = new RecordingBudget(64 * 1024 * 1024);
    const pool = new PreprocessPool({ preprocessor: config, options: { budget }, workers: 1, jobsPerWorker: 2, niceness: 0 });
    const creditHeld = async () => {
      const deadline = Date.now() + 5000;
      while (budget.inUse !== pool.workerCredit && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
      assert.equal(budget.inUse, pool.workerCredit);
    };
    try {
      assert.equal(pool.workerCredit, 32 * 1024 * 1024);
      const first = await pool.run(new Uint8Array(small[0]));
      assert.ok(first.ok, JSON.stringify(first));
      await creditHeld();
      const before = pool.budgetRequests;
      const outcomes = await Promise.all(small.map((b) => pool.run(new Uint8Array(b))));
      for (const [i, outcome] of outcomes.entries()) {
        assert.ok(outcome.ok, JSON.stringify(outcome));
        assert.deepEqual(outcome.pixelValues, (await preprocessImage(small[i], config)).pixelValues);
      }
      assert.equal(pool.budgetRequests - before, 0);
      const big = await pool.run(new Uint8Array(large));
      assert.ok(big.ok, JSON.stringify(big));
      assert.equal(pool.budgetRequests - before, 1);
      assert.ok(budget.largest > pool.workerCredit && budget.largest <= budget.totalBytes, `cost ${budget.largest}`);
      assert.ok(budget.peak <= budget.totalBytes, `peak ${budget.peak}`);
      // The credit taken back for it is held again, and small images go back to not asking.
      await creditHeld();
      const again = await pool.run(new Uint8Array(small[1]));
      assert.ok(again.ok, JSON.stringify(again));
      assert.equal(pool.budgetRequests - before, 1);
      await pool.close();
      assert.equal(budget.inUse, 0);
    } finally {
      await pool.close();
    }
  });
});

describe('extreme aspect ratios are refused from the header', () => {
  it(`${DEFAULT_MAX_ASPECT_RATIO}:1 is classified, ${DEFAULT_MAX_ASPECT_RATIO + 1}:1 is refused`, async () => {
    const ok = path.join(dir, 'strip-1000x10.png');
    const refused = path.join(dir, 'strip-10x1010.png');
    await writeFile(ok, await streamedGreyPng(1000, 10));
    await writeFile(refused, await streamedGreyPng(10, 1010));
    const [a, b] = await model.classifyFiles([ok, refused]);
    assert.equal(a.top?.length, 5);
    assert.equal(b.error, `${refused}: image is 10x1010, an aspect ratio of 101:1; the limit is 100:1`);
  });

  it('a 1 x 100,000,000 PNG is refused by name in under 2 s and 100 MB, by every entry point', async () => {
    const file = path.join(dir, 'line-1x100000000.png');
    await writeFile(file, await streamedGreyPng(1, 100_000_000));
    const message = `${file}: image is 1x100000000, an aspect ratio of 100000000:1; the limit is 100:1`;
    const entries: [string, () => Promise<unknown>][] = [
      ['classifyFiles', async () => (await model.classifyFiles([file]))[0]],
      ['classifyFiles --fast', async () => (await fastModel.classifyFiles([file]))[0]],
      ['decodeImage', () => decodeImage(file)],
      ['thumbnail', () => makeThumbnailDataUri(file, 96)],
    ];
    for (const [name, entry] of entries) {
      const m = await measure(entry);
      const outcome = m.ok ? (m.value as ClassifyResult).error : (m.error as BeitLensError).message;
      if (!m.ok) assert.equal((m.error as BeitLensError).code, 'IMAGE_UNSUPPORTED');
      assert.equal(outcome, message, name);
      assert.ok(m.ms < REFUSAL_MS, `${name} took ${m.ms.toFixed(0)} ms`);
      assert.ok(m.peakRssGrowth < REFUSAL_GROWTH, `${name} grew RSS by ${mb(m.peakRssGrowth)}`);
      figures.push(`1x100000000 PNG, ${name}: refused in ${m.ms.toFixed(0)} ms, peak RSS +${mb(m.peakRssGrowth)}`);
    }
  });
});

describe('damaged JPEGs are errors, in the exact and the fast path alike', () => {
  let base: Buffer;
  let cases: Record<string, Buffer>;
  before(async () => {
    base = await detailedJpeg();
    cases = await damagedJpegs(base);
  });

  it('the undamaged JPEG they are cut from classifies in both paths', async () => {
    const file = path.join(dir, 'intact.jpg');
    await writeFile(file, base);
    for (const m of [model, fastModel]) {
      const [r] = await m.classifyFiles([file]);
      assert.equal(r.top?.length, 5, r.error);
    }
    assert.match(await makeThumbnailDataUri(file, 64), /^data:image\/jpeg;base64,/);
  });

  const corrupt = 'cannot decode image: corrupt JPEG data (libjpeg warned, e.g. of a premature end of the data segment, and would fill what it cannot decode with grey)';
  const names = ['cut at 50% with FF D9 appended', 'SOF claiming 10000x10000 over 28 KB of data', 'no scan data (SOS, then EOI)'];
  const fileFor = (name: string) => path.join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.jpg`);

  for (const name of names) {
    it(name, async () => {
      const file = fileFor(name);
      await writeFile(file, cases[name]);
      // libjpeg alone only warns: the damage is invisible to failOn 'error', which is why it was classified.
      assert.equal((await sharp(cases[name], { failOn: 'error' }).raw().toBuffer()).length > 0, true);
      for (const [label, m] of [['exact', model], ['fast', fastModel]] as const) {
        const started = performance.now();
        const [r] = await m.classifyFiles([file]);
        assert.equal(r.top, undefined, `${label} classified it: ${JSON.stringify(r.top?.[0])}`);
        assert.equal(r.error, `${file}: ${corrupt}`, label);
        figures.push(`damaged JPEG (${name}), ${label}: IMAGE_DECODE in ${(performance.now() - started).toFixed(0)} ms`);
      }
      for (const fast of [false, true]) assert.equal((await rejectsWith(preprocessImage(cases[name], config, { fast }), 'IMAGE_DECODE', /corrupt JPEG data/)).message, corrupt);
      assert.equal((await rejectsWith(makeThumbnailDataUri(file, 64), 'IMAGE_DECODE', /corrupt JPEG data/)).message, `${file}: ${corrupt}`);
    });
  }

  it('decoded side by side with each other and an intact JPEG, each gets its own outcome (warnings are process-wide in libvips)', async () => {
    const intact = path.join(dir, 'intact-batch.jpg');
    await writeFile(intact, base);
    const padded = path.join(dir, 'extraneous-batch.jpg');
    await writeFile(padded, withExtraneousBytes(base));
    const damagedPadded = path.join(dir, 'damaged-extraneous-batch.jpg');
    await writeFile(damagedPadded, withExtraneousBytes(cases[names[0]]));
    for (const name of names) await writeFile(fileFor(name), cases[name]);
    const files = [intact, padded, ...names.flatMap((n) => [fileFor(n), padded, fileFor(n)]), damagedPadded, intact];
    for (const m of [model, fastModel]) {
      for (let round = 0; round < 3; round++) {
        const results = await m.classifyFiles(files, { batchSize: files.length });
        assert.deepEqual(
          results.map((r) => r.error ?? 'classified'),
          files.map((f) => (f === intact || f === padded ? 'classified' : `${f}: ${corrupt}`)),
        );
      }
    }
  });

  /** Bytes libjpeg skips where it expects a marker: garbage, an FF 00 pair and fill bytes before SOF, garbage before SOS. */
  function withExtraneousBytes(jpeg: Buffer): Buffer {
    const sof = markerOffset(jpeg, 0xc0);
    const sos = markerOffset(jpeg, 0xda);
    return Buffer.concat([jpeg.subarray(0, sof), Buffer.from([7, 7, 0xff, 0x00, 0xff, 0xff]), jpeg.subarray(sof, sos), Buffer.from([1, 2, 3]), jpeg.subarray(sos)]);
  }

  it('extraneous bytes before markers are accepted, with exactly the pixels libjpeg decodes leniently', async () => {
    const padded = withExtraneousBytes(base);
    // Strict libjpeg refuses it, so what follows exercises the fallback; the fill FFs are not counted.
    await assert.rejects(sharp(padded, { failOn: 'warning' }).raw().toBuffer(), /extraneous bytes before marker/);
    // Only the counted bytes go; the fill FFs, legal before a marker, stay.
    const sof = markerOffset(base, 0xc0);
    assert.deepEqual(withoutExtraneousBytes(padded), Buffer.concat([base.subarray(0, sof), Buffer.from([0xff, 0xff]), base.subarray(sof)]));
    assert.equal(withoutExtraneousBytes(base), undefined);
    const lenient = await sharp(padded, { failOn: 'none' }).raw().toBuffer();
    assert.deepEqual(new Uint8Array((await decodeImage(padded)).data), new Uint8Array(lenient));
    for (const fast of [false, true]) {
      // The original (what libjpeg decodes once it has skipped the bytes) is an intact file: the same model input.
      assert.deepEqual(new Uint8Array(lenient), new Uint8Array(await sharp(base).raw().toBuffer()));
      assert.deepEqual((await preprocessImage(padded, config, { fast })).pixelValues, (await preprocessImage(base, config, { fast })).pixelValues, `fast ${fast}`);
    }
    const file = path.join(dir, 'extraneous.jpg');
    await writeFile(file, padded);
    for (const m of [model, fastModel]) assert.equal((await m.classifyFiles([file]))[0].top?.length, 5);
    assert.match(await makeThumbnailDataUri(file, 64), /^data:image\/jpeg;base64,/);
  });

  it('a damaged JPEG that also has extraneous bytes is still refused, in both paths', async () => {
    const damaged = withExtraneousBytes(cases['cut at 50% with FF D9 appended']);
    assert.ok(withoutExtraneousBytes(damaged), 'the walk finds the bytes');
    const file = path.join(dir, 'damaged-extraneous.jpg');
    await writeFile(file, damaged);
    for (const fast of [false, true]) assert.equal((await rejectsWith(preprocessImage(damaged, config, { fast }), 'IMAGE_DECODE', /corrupt JPEG data/)).message, corrupt);
    for (const m of [model, fastModel]) assert.equal((await m.classifyFiles([file]))[0].error, `${file}: ${corrupt}`);
    assert.equal((await rejectsWith(makeThumbnailDataUri(file, 64), 'IMAGE_DECODE', /corrupt JPEG data/)).message, `${file}: ${corrupt}`);
  });
});

describe('memory is bounded by bytes, not pixels', () => {
  it('eight 16-bit RGBA 10000x10000 PNGs in one classifyFiles call stay under 1.5 GB, every one answered', { timeout: 300_000 }, async () => {
    const colours = Array.from({ length: 8 }, (_, i) => ({ r: 10 + 30 * i, g: 200 - 20 * i, b: (97 * i) % 256 }));
    const files: string[] = [];
    const references: string[] = [];
    let fileBytes = 0;
    for (const [i, c] of colours.entries()) {
      const file = path.join(dir, `rgba16-10000-${i}.png`);
      // Half-transparent: alpha is dropped, not composited, so the 8-bit equivalent is the same colour, opaque.
      await sharp({ create: { width: 10000, height: 10000, channels: 4, background: { ...c, alpha: 0.5 } } }).toColourspace('rgb16').png().toFile(file);
      fileBytes += (await stat(file)).size;
      const reference = path.join(dir, `rgb8-224-${i}.png`);
      await sharp({ create: { width: 224, height: 224, channels: 3, background: c } }).png().toFile(reference);
      files.push(file);
      references.push(reference);
    }
    assert.equal((await sharp(files[0]).metadata()).depth, 'ushort');
    const started = performance.now();
    const child = await run(process.execPath, ['--require', REPORT_MAX_RSS, '--import', 'tsx', CLASSIFY_CHILD, modelDir, '8', ...files], { maxBuffer: 16 * MB, timeout: 240_000 });
    const ms = performance.now() - started;
    const maxRss = Number(/max-rss-kb (\d+)/.exec(child.stderr)?.[1]) * 1024;
    assert.ok(maxRss > 0, `no max RSS report in stderr:\n${child.stderr}`);
    const { results } = JSON.parse(child.stdout) as { results: ClassifyResult[] };
    assert.deepEqual(
      results.map((r) => r.image),
      files,
    );
    const expected = await model.classifyFiles(references);
    for (const [i, r] of results.entries()) {
      assert.equal(r.error, undefined, r.error);
      assert.deepEqual(
        r.top?.map((p) => p.index),
        expected[i].top?.map((p) => p.index),
        r.image,
      );
      for (const [k, p] of (r.top ?? []).entries()) assert.ok(Math.abs(p.score - expected[i].top![k].score) < 1e-5, `${r.image} score ${p.score}`);
    }
    figures.push(`eight 16-bit RGBA 10000x10000 PNGs (${(fileBytes / 1e6).toFixed(1)} MB of files), one classifyFiles call: 8 answered, ${(ms / 1000).toFixed(1)} s, process max RSS ${mb(maxRss)}`);
    assert.ok(maxRss < EIGHT_PNGS_MAX_RSS, `max RSS ${mb(maxRss)}`);
  });
});
