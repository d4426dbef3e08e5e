/**
 * Bounded fuzzing in CI (fixed seed; FUZZ_RUNS raises the counts, see test/helpers/fuzz.ts) of the inputs a
 * user can be handed by someone else:
 *  - the image decoder path: mutated JPEG, PNG (with and without repaired CRCs), GIF, WebP, TIFF and AVIF bytes
 *    through `preprocessImage`, which must return a model input or throw a one-line BeitLensError, quickly;
 *  - `config.json` and `preprocessor_config.json`: arbitrary JSON, field-level mutations of the real files, and
 *    byte-level mutations of their text, which must parse to sane bounded values or fail with CONFIG_INVALID.
 * The safetensors, pickle and zip readers (weights.test.ts) and the webview message schema
 * (extension-webviewMessages.test.ts) are fuzzed where their other tests live, with the same helper.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import sharp from 'sharp';

import { CORPUS_DIR, REFERENCE_DIR } from '../../scripts/make-bad-corpus';
import { BeitLensError } from '../../src/core/errors';
import { loadBeitConfig, parseBeitConfig } from '../../src/core/modelConfig';
import { preprocessImage } from '../../src/core/preprocess';
import { loadPreprocessorConfig, modelInputSize, parsePreprocessorConfig, type PreprocessorConfig } from '../../src/core/preprocessorConfig';
import { FIXTURE_DIR, FIXTURE_IMAGES, tempDir } from '../helpers/fixtures';
import { FUZZ_SEED, FuzzCounter, fuzzParameters, fuzzTimeout } from '../helpers/fuzz';
import { mb, snapshot } from '../helpers/memory';

/** No single mutated input may take longer than this (fast-check fails the run on overrun: a hang is a failure). */
const CASE_TIME_LIMIT_MS = 5000;

const counters: FuzzCounter[] = [];
function counter(target: string, detail: string): FuzzCounter {
  const c = new FuzzCounter(target, detail);
  counters.push(c);
  return c;
}

let dir: string;
let preprocessor: PreprocessorConfig;
before(async () => {
  dir = await tempDir('beit-lens-fuzz-');
  preprocessor = await loadPreprocessorConfig(path.join(FIXTURE_DIR, 'preprocessor_config.json'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Fails unless `err` is a one-line BeitLensError with one of `codes`. */
function assertCleanError(err: unknown, codes: readonly string[]): void {
  if (!(err instanceof BeitLensError)) throw err;
  assert.ok(codes.includes(err.code), `unexpected code ${err.code}: ${err.message}`);
  assert.ok(!err.message.includes('\n'), `not one line: ${err.message}`);
}

// ---- mutations ---------------------------------------------------------------------------------------

/** A byte offset in the first 64 bytes (headers live there), or a fraction of the length, so one arbitrary fits every seed. */
type Position = { header: number } | { fraction: number };
type Edit =
  | { kind: 'overwrite'; at: Position; bytes: number[] }
  | { kind: 'insert'; at: Position; bytes: number[] }
  | { kind: 'delete'; at: Position; length: number }
  | { kind: 'copy'; from: Position; to: Position; length: number }
  | { kind: 'truncate'; at: Position };

const position: fc.Arbitrary<Position> = fc.oneof(fc.integer({ min: 0, max: 63 }).map((header) => ({ header })), fc.double({ min: 0, max: 1, noNaN: true }).map((fraction) => ({ fraction })));
const smallBytes = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 });
/** Values that turn sizes, counts and lengths into extremes. */
const extremeBytes: fc.Arbitrary<number[]> = fc.constantFrom<number[]>([0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0], [0x7f, 0xff, 0xff, 0xff], [0x80, 0, 0, 0], [0, 1, 0, 0]);

const overwriteArb: fc.Arbitrary<Edit> = fc.record({ kind: fc.constant('overwrite' as const), at: position, bytes: fc.oneof(smallBytes, extremeBytes) });
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 6, arbitrary: overwriteArb },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 256 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('copy' as const), from: position, to: position, length: fc.integer({ min: 1, max: 512 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: position }) },
);

/** Half the cases are one small overwrite, which most decoders survive, so the decode path past the header is exercised too. */
const editsArb = fc.oneof(overwriteArb.map((e) => [e]), fc.array(editArb, { minLength: 1, maxLength: 3 }));

function resolve(p: Position, length: number): number {
  return 'header' in p ? Math.min(p.header, Math.max(0, length - 1)) : Math.min(Math.floor(p.fraction * length), Math.max(0, length - 1));
}

function applyEdit(bytes: Buffer, e: Edit): Buffer {
  switch (e.kind) {
    case 'overwrite': {
      const at = resolve(e.at, bytes.length);
      const out = Buffer.from(bytes);
      e.bytes.forEach((b, i) => at + i < out.length && (out[at + i] = b));
      return out;
    }
    case 'insert': {
      const at = resolve(e.at, bytes.length);
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(e.bytes), bytes.subarray(at)]);
    }
    case 'delete': {
      const at = resolve(e.at, bytes.length);
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + e.length)]);
    }
    case 'copy': {
      const from = resolve(e.from, bytes.length);
      const out = Buffer.from(bytes);
      bytes.copy(out, resolve(e.to, bytes.length), from, Math.min(bytes.length, from + e.length));
      return out;
    }
    case 'truncate':
      return bytes.subarray(0, resolve(e.at, bytes.length));
  }
}

/** Recomputes every PNG chunk CRC, so mutations get past libpng's checksum and into IHDR, PLTE and zlib. */
function repairPngCrcs(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  let at = 8;
  while (at + 12 <= out.length) {
    const length = out.readUInt32BE(at);
    if (length > out.length - at - 12) break;
    out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + length)), at + 8 + length);
    at += 12 + length;
  }
  return out;
}

// ---- the decoder path -------------------------------------------------------------------------------

describe('decoder path fuzzing', () => {
  const seeds: { name: string; bytes: Buffer }[] = [];

  before(async () => {
    // Every decodable file of the corpus and the fixtures, plus small images in the formats they lack.
    const corpusGood = ['animated-500-frames.gif', 'cmyk.jpg', 'rgb16.png', 'palette-trns.png', 'huge-exif.jpg', 'exif-orientation-9.jpg'].map((f) => path.join(CORPUS_DIR, f));
    const references = readdirSync(REFERENCE_DIR).map((f) => path.join(REFERENCE_DIR, f));
    const fixtures = ['tiny_17x9.png', 'gray16_200x150.png', 'exif_orientation6_320x240.jpg', 'alpha_300x200.png'].map((f) => path.join(FIXTURE_IMAGES, f));
    for (const file of [...corpusGood, ...references, ...fixtures]) seeds.push({ name: path.basename(file), bytes: readFileSync(file) });
    const rgba = Buffer.alloc(24 * 18 * 4);
    for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 37 + (i >> 5) * 11) % 256;
    const base = () => sharp(rgba, { raw: { width: 24, height: 18, channels: 4 } });
    seeds.push({ name: 'generated.webp', bytes: await base().webp({ quality: 80 }).toBuffer() });
    seeds.push({ name: 'generated-lossless.webp', bytes: await base().webp({ lossless: true }).toBuffer() });
    seeds.push({ name: 'generated.tiff', bytes: await base().tiff({ compression: 'lzw' }).toBuffer() });
    seeds.push({ name: 'generated.avif', bytes: await base().avif({ quality: 50, effort: 0 }).toBuffer() });
    seeds.push({ name: 'generated-progressive.jpg', bytes: await base().jpeg({ progressive: true }).toBuffer() });
    seeds.push({ name: 'generated-interlaced.png', bytes: await base().png({ progressive: true }).toBuffer() });
  });

  it('mutated images give a model input or a one-line BeitLensError, each within the time limit, and memory settles', { timeout: fuzzTimeout(1000, 180_000) }, async (t) => {
    const fuzz = counter('decoder', 'mutated JPEG/PNG/GIF/WebP/TIFF/AVIF -> preprocessImage');
    const outcomes = { decoded: 0, refused: 0 };
    const codes = new Map<string, number>();
    let slowest = 0;
    const { width, height } = modelInputSize(preprocessor);
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(fc.nat(seeds.length - 1), editsArb, fc.boolean(), async (seedIndex, edits, repairCrcs) => {
        fuzz.tick();
        const seed = seeds[seedIndex];
        let bytes = edits.reduce(applyEdit, seed.bytes);
        if (repairCrcs && seed.bytes[0] === 0x89) bytes = repairPngCrcs(bytes);
        const started = performance.now();
        try {
          const out = await preprocessImage(bytes, preprocessor);
          assert.equal(out.pixelValues.length, 3 * width * height);
          assert.ok(out.pixelValues.every(Number.isFinite));
          outcomes.decoded++;
        } catch (err) {
          assertCleanError(err, ['IMAGE_DECODE', 'IMAGE_TOO_LARGE', 'IMAGE_UNSUPPORTED']);
          codes.set((err as BeitLensError).code, (codes.get((err as BeitLensError).code) ?? 0) + 1);
          outcomes.refused++;
        }
        slowest = Math.max(slowest, performance.now() - started);
      }),
      { ...fuzzParameters(1000), timeout: CASE_TIME_LIMIT_MS },
    );
    const afterRun = await snapshot();
    fuzz.report(t);
    t.diagnostic(`decoder: ${outcomes.decoded} decoded, ${outcomes.refused} refused (${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}), slowest ${slowest.toFixed(0)} ms, RSS ${mb(before.rss)} -> ${mb(afterRun.rss)}, heap ${mb(before.heapUsed)} -> ${mb(afterRun.heapUsed)}`);
    // Both outcomes must occur, or the mutations are too weak (all refused) or do nothing (all decoded).
    assert.ok(outcomes.decoded > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
    // Nothing a mutated image does may stay behind: the JS heap returns to where it was (libvips' own cache is bounded separately).
    assert.ok(afterRun.heapUsed - before.heapUsed < 16 * 1024 * 1024, `heap grew ${mb(afterRun.heapUsed - before.heapUsed)}`);
  });
});

// ---- config.json ----------------------------------------------------------------------------------

const FIXTURE_CONFIG_TEXT = readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8');
const FIXTURE_CONFIG = JSON.parse(FIXTURE_CONFIG_TEXT) as Record<string, unknown>;
const FIXTURE_PREPROCESSOR_TEXT = readFileSync(path.join(FIXTURE_DIR, 'preprocessor_config.json'), 'utf8');
const FIXTURE_PREPROCESSOR = JSON.parse(FIXTURE_PREPROCESSOR_TEXT) as Record<string, unknown>;

/** JSON values with the extremes that break size arithmetic. */
const nastyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(0, -1, 1.5, 1e308, -1e308, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 65536, 4096, 8192, 8193, 1e-320, '224', '', null, true, [], {}, [224, 224], { height: 224 }),
  fc.integer({ min: -10, max: 100_000 }),
);

/** Replace, delete or add top-level fields of a JSON object (keys taken from it, so they reach the validation). */
function fieldMutations(original: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(original);
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom(...keys), value: nastyJson }),
    fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom(...keys) }),
    fc.record({ kind: fc.constant('add' as const), key: fc.string({ maxLength: 12 }), value: nastyJson }),
  );
  return fc.array(op, { minLength: 1, maxLength: 5 }).map((ops) => {
    const out: Record<string, unknown> = structuredClone(original);
    for (const o of ops) {
      if (o.kind === 'delete') delete out[o.key];
      else out[o.key] = o.value;
    }
    return out;
  });
}

/** Byte-level edits of a JSON file's text, restricted to JSON punctuation and digits so many still parse. */
const textEdits = fc.array(
  fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), text: fc.oneof(fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '-', '9', '0', 'e9', '1e400', 'null', '\\u0000', '\u00e9', ' '), fc.string({ maxLength: 4 })), drop: fc.integer({ min: 0, max: 3 }) }),
  { minLength: 1, maxLength: 4 },
);
function editText(text: string, edits: { at: number; text: string; drop: number }[]): string {
  return edits.reduce((s, e) => {
    const at = Math.floor(e.at * s.length);
    return s.slice(0, at) + e.text + s.slice(at + e.drop);
  }, text);
}

describe('config.json fuzzing', () => {
  /** What a parsed config may claim: the schema bounds, consistent derived sizes, and real labels. */
  function assertSaneConfig(c: ReturnType<typeof parseBeitConfig>): void {
    assert.ok(c.hiddenSize >= 1 && c.hiddenSize <= 8192 && c.hiddenSize % c.numHeads === 0);
    assert.ok(c.numLayers >= 1 && c.numLayers <= 128);
    assert.equal(c.headDim * c.numHeads, c.hiddenSize);
    assert.equal(c.gridSize * c.patchSize, c.imageSize);
    assert.equal(c.numTokens, c.gridSize ** 2 + 1);
    // The bounds that keep the relative position index and bias from outgrowing any weights file.
    assert.ok(c.gridSize <= 64 && c.numHeads * c.numTokens ** 2 <= 64 * 1024 * 1024, `grid ${c.gridSize}, heads ${c.numHeads}`);
    assert.equal(c.numLabels, c.labels.labels.length);
    assert.ok(c.numLabels >= 1);
  }

  function check(json: unknown): 'ok' | 'refused' {
    try {
      assertSaneConfig(parseBeitConfig(json, '/m/config.json'));
      return 'ok';
    } catch (err) {
      assertCleanError(err, ['CONFIG_INVALID']);
      assert.ok((err as Error).message.startsWith('/m/config.json: '));
      return 'refused';
    }
  }

  it('arbitrary JSON and field mutations of the fixture parse to sane values or CONFIG_INVALID', { timeout: fuzzTimeout(1500, 60_000) }, (t) => {
    const fuzz = counter('config.json', 'arbitrary JSON and field mutations -> parseBeitConfig');
    const seen = { ok: 0, refused: 0 };
    fc.assert(
      fc.property(fc.oneof(fieldMutations(FIXTURE_CONFIG), nastyJson), (json) => {
        fuzz.tick();
        seen[check(json)]++;
      }),
      fuzzParameters(1500),
    );
    fuzz.report(t);
    t.diagnostic(`config.json: ${seen.ok} accepted, ${seen.refused} refused`);
    assert.ok(seen.ok > 0 && seen.refused > 0, JSON.stringify(seen));
  });

  it('id2label keys (huge, signed, fractional, padded, exponents) load within the row bound or fail fast with CONFIG_INVALID', { timeout: fuzzTimeout(500, 60_000) }, (t) => {
    const fuzz = counter('config.json id2label keys', 'key replacements -> parseBeitConfig');
    const labels = FIXTURE_CONFIG.id2label as Record<string, string>;
    const key = fc.oneof(
      fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
      fc.integer({ min: -5, max: 40 }).map(String),
      fc.constantFrom('4294967295', '99999999999999999999999', '30000000', '1e3', '1.5', '09', ' 9', '+9', '0x9', '', '19', '20', '65535', '65536', '9007199254740993'),
      fc.string({ maxLength: 8 }),
    );
    const seen = { ok: 0, refused: 0 };
    let slowest = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...Object.keys(labels)), key), { minLength: 1, maxLength: 3 }), (replacements) => {
        fuzz.tick();
        const id2label: Record<string, string> = { ...labels };
        for (const [from, to] of replacements) {
          const label = id2label[from];
          delete id2label[from];
          if (label !== undefined) id2label[to] = label;
        }
        const started = performance.now();
        const outcome = check({ ...FIXTURE_CONFIG, id2label });
        slowest = Math.max(slowest, performance.now() - started);
        seen[outcome]++;
        if (outcome === 'ok') {
          const rows = Object.keys(id2label).length;
          assert.ok(Object.keys(id2label).every((k) => /^(0|[1-9]\d*)$/.test(k) && Number(k) < Math.max(2 * rows, 65_536)), JSON.stringify(Object.keys(id2label)));
        }
      }),
      fuzzParameters(500),
    );
    fuzz.report(t);
    t.diagnostic(`config.json id2label keys: ${seen.ok} accepted, ${seen.refused} refused, slowest ${slowest.toFixed(1)} ms`);
    assert.ok(seen.ok > 0 && seen.refused > 0, JSON.stringify(seen));
    assert.ok(slowest < 100, `slowest case took ${slowest.toFixed(0)} ms`);
  });

  it('text mutations of config.json load or fail with CONFIG_INVALID', { timeout: fuzzTimeout(300, 60_000) }, async (t) => {
    const fuzz = counter('config.json text', 'text mutations -> loadBeitConfig');
    const file = path.join(dir, 'config.json');
    await fc.assert(
      fc.asyncProperty(textEdits, async (edits) => {
        fuzz.tick();
        await writeFile(file, editText(FIXTURE_CONFIG_TEXT, edits));
        try {
          assertSaneConfig(await loadBeitConfig(file));
        } catch (err) {
          assertCleanError(err, ['CONFIG_INVALID']);
        }
      }),
      fuzzParameters(300),
    );
    fuzz.report(t);
  });
});

// ---- preprocessor_config.json ----------------------------------------------------------------------

describe('preprocessor_config.json fuzzing', () => {
  function assertSanePreprocessor(c: PreprocessorConfig): void {
    for (const side of [c.width, c.height, c.cropWidth, c.cropHeight]) assert.ok(Number.isInteger(side) && side >= 1 && side <= 8192, `side ${side}`);
    assert.ok([1, 2, 3, 4, 5].includes(c.resample), `resample ${c.resample}`);
    assert.ok(Number.isFinite(c.rescaleFactor));
    if (c.doRescale) assert.ok(c.rescaleFactor >= 1e-5 && c.rescaleFactor <= 1, `rescale_factor ${c.rescaleFactor}`);
    // The property the ranges exist for: the darkest and brightest pixels normalise, as preprocess.ts computes it
    // in float32, to finite values of bounded size (no NaN scores).
    for (let ch = 0; ch < 3; ch++) {
      for (const u of [0, 255]) {
        const x = c.doRescale ? Math.fround(u * c.rescaleFactor) : u;
        const y = Math.fround(Math.fround(x - Math.fround(c.imageMean[ch])) / Math.fround(c.imageStd[ch]));
        assert.ok(Number.isFinite(y) && Math.abs(y) <= 10_001, `pixel ${u} normalises to ${y} (mean ${c.imageMean[ch]}, std ${c.imageStd[ch]}, rescale ${c.rescaleFactor})`);
      }
    }
  }

  it('arbitrary JSON and field mutations of the fixture parse to sane values or CONFIG_INVALID', { timeout: fuzzTimeout(1500, 60_000) }, (t) => {
    const fuzz = counter('preprocessor_config.json', 'arbitrary JSON and field mutations -> parsePreprocessorConfig');
    const seen = { ok: 0, refused: 0 };
    fc.assert(
      fc.property(fc.oneof(fieldMutations(FIXTURE_PREPROCESSOR), nastyJson), (json) => {
        fuzz.tick();
        try {
          assertSanePreprocessor(parsePreprocessorConfig(json, '/m/preprocessor_config.json'));
          seen.ok++;
        } catch (err) {
          assertCleanError(err, ['CONFIG_INVALID']);
          seen.refused++;
        }
      }),
      fuzzParameters(1500),
    );
    fuzz.report(t);
    t.diagnostic(`preprocessor_config.json: ${seen.ok} accepted, ${seen.refused} refused`);
    assert.ok(seen.ok > 0 && seen.refused > 0, JSON.stringify(seen));
  });

  it('text mutations of preprocessor_config.json load or fail with CONFIG_INVALID', { timeout: fuzzTimeout(300, 60_000) }, async (t) => {
    const fuzz = counter('preprocessor_config.json text', 'text mutations -> loadPreprocessorConfig');
    const file = path.join(dir, 'preprocessor_config.json');
    await fc.assert(
      fc.asyncProperty(textEdits, async (edits) => {
        fuzz.tick();
        await writeFile(file, editText(FIXTURE_PREPROCESSOR_TEXT, edits));
        try {
          assertSanePreprocessor(await loadPreprocessorConfig(file));
        } catch (err) {
          assertCleanError(err, ['CONFIG_INVALID']);
        }
      }),
      fuzzParameters(300),
    );
    fuzz.report(t);
  });
});

describe('fuzz summary', () => {
  it('every target ran its cases', (t) => {
    assert.ok(counters.length >= 5 && counters.every((c) => c.count > 0), counters.map((c) => `${c.target}: ${c.count}`).join('; '));
    t.diagnostic(`fuzz summary: ${counters.map((c) => `${c.target} ${c.count}`).join(', ')}; total ${counters.reduce((n, c) => n + c.count, 0)} cases, seed ${FUZZ_SEED}`);
  });
});
