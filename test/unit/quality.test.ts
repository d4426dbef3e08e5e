import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { BeitModel } from '../../src/core/beitModel';
import { decodeImage } from '../../src/core/image';
import { imageFlags, measureQuality, oddSizeFlags, type QualityMeasures } from '../../src/core/quality/measures';
import { QualityTally } from '../../src/core/quality/tally';
import { CSV_COLUMNS, parseJsonLine, toCsvRow, toJsonLine } from '../../src/core/scan/output';
import { ResultStore } from '../../src/core/scan/resultStore';
import { ResultTable } from '../../src/core/scan/resultTable';
import { scanDataset, type ScanResult } from '../../src/core/scan/scanner';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';
import { countingModel } from '../helpers/scanFixtures';

const QUALITY_DIR = path.resolve(__dirname, '..', 'fixtures', 'quality');
/** Written by test/fixtures/quality/generate.py with Pillow and numpy, following cleanvision call for call. */
const reference: { images: Record<string, QualityMeasures & { blurSize: [number, number] }> } = JSON.parse(readFileSync(path.join(QUALITY_DIR, 'expected.json'), 'utf8'));
const EXPECTED_FLAGS: Record<string, string[]> = {
  'normal.png': [],
  'dark.png': ['dark'],
  'light.png': ['light'],
  'blurry.png': ['blurry'],
  'flat.png': ['low_information'],
  'grayscale.png': ['grayscale'],
  'wide.png': ['odd_aspect_ratio'],
  'odd-ratio.png': [],
};

async function measureFile(file: string): Promise<QualityMeasures> {
  const decoded = await decodeImage(file);
  const { channels } = await sharp(file).metadata();
  return measureQuality(decoded.data, decoded.width, decoded.height, channels === 1);
}

/** Dim colour gradients under an 8 px light/dark checkerboard: a wide histogram, and edges until it is blurred. */
function checkered(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 3 * (y * width + x);
      const c = ((x >> 3) + (y >> 3)) % 2 === 0 ? 30 : -30;
      rgb[i] = Math.max(0, 20 + Math.floor((x * 120) / (width - 1)) + c);
      rgb[i + 1] = Math.max(0, 20 + Math.floor((y * 120) / (height - 1)) + c);
      rgb[i + 2] = Math.max(0, 20 + Math.floor(((x + y) * 120) / (width + height)) + c);
    }
  }
  return rgb;
}

/** Random-ish RGB that compresses badly and has sharp edges everywhere. */
function noise(width: number, height: number, seed: number): Uint8Array {
  let s = seed;
  return new Uint8Array(width * height * 3).map(() => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s >>> 24;
  });
}

describe('quality measures (cleanvision image properties)', () => {
  it('match Pillow and numpy on the reference fixtures, and raise exactly the expected flags', async () => {
    assert.deepEqual(Object.keys(reference.images).sort(), Object.keys(EXPECTED_FLAGS).sort());
    for (const [name, expected] of Object.entries(reference.images)) {
      const m = await measureFile(path.join(QUALITY_DIR, name));
      for (const key of ['brightnessP99', 'brightnessP5', 'entropy', 'blurriness', 'grayscaleStd', 'aspectRatio', 'size'] as const) {
        assert.ok(Math.abs(m[key] - expected[key]) <= 1e-12, `${name} ${key}: ${m[key]} vs PIL/numpy ${expected[key]}`);
      }
      assert.equal(m.grayscale, expected.grayscale, `${name} grayscale`);
      assert.deepEqual(imageFlags(m), EXPECTED_FLAGS[name], name);
    }
  });

  it('flags images made with sharp: blurred, darkened, brightened, flat, narrow, one-band', async () => {
    const dir = await tempDir('beit-quality-sharp-');
    const base = sharp(Buffer.from(noise(120, 90, 7)), { raw: { width: 120, height: 90, channels: 3 } });
    const scene = sharp(Buffer.from(checkered(160, 120)), { raw: { width: 160, height: 120, channels: 3 } });
    const made: Record<string, Promise<unknown>> = {
      'sharp-noise.png': base.clone().png().toFile(path.join(dir, 'sharp-noise.png')),
      'sharp-scene.png': scene.clone().png().toFile(path.join(dir, 'sharp-scene.png')),
      // The same scene out of focus: the checkerboard's edges are gone, the colour spread is not.
      'sharp-blurred.png': scene.clone().blur(6).png().toFile(path.join(dir, 'sharp-blurred.png')),
      'sharp-dark.png': base.clone().linear(0.2, 0).png().toFile(path.join(dir, 'sharp-dark.png')),
      'sharp-light.png': base.clone().linear(0.02, 250).png().toFile(path.join(dir, 'sharp-light.png')),
      'sharp-flat.png': sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 90, g: 140, b: 40 } } }).png().toFile(path.join(dir, 'sharp-flat.png')),
      'sharp-narrow.png': base.clone().resize(120, 20, { fit: 'fill' }).png().toFile(path.join(dir, 'sharp-narrow.png')),
      'sharp-gray.png': base.clone().toColourspace('b-w').png().toFile(path.join(dir, 'sharp-gray.png')),
    };
    await Promise.all(Object.values(made));
    const flags: Record<string, string[]> = {};
    for (const name of Object.keys(made)) flags[name] = imageFlags(await measureFile(path.join(dir, name)));
    assert.deepEqual(flags, {
      'sharp-noise.png': [],
      'sharp-scene.png': [],
      'sharp-blurred.png': ['blurry'],
      'sharp-dark.png': ['dark'],
      'sharp-light.png': ['light'],
      'sharp-flat.png': ['low_information'],
      'sharp-narrow.png': ['odd_aspect_ratio'],
      'sharp-gray.png': ['grayscale'],
    });
  });

  it('brightness percentiles equal a sort of every pixel (numpy linear interpolation), at many sizes', () => {
    for (const [w, h] of [[1, 1], [2, 1], [7, 3], [64, 48], [333, 101]]) {
      const rgb = noise(w, h, w * 31 + h);
      const m = measureQuality(rgb, w, h, false);
      const values = new Float64Array(w * h);
      for (let p = 0; p < w * h; p++) {
        const [r, g, b] = [rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]];
        values[p] = Math.sqrt(0.241 * (r * r) + 0.691 * (g * g) + 0.068 * (b * b)) / 255;
      }
      values.sort();
      const percentile = (q: number) => {
        const index = (q / 100) * (values.length - 1);
        const lo = Math.floor(index);
        const hi = Math.min(lo + 1, values.length - 1);
        return values[lo] + (values[hi] - values[lo]) * (index - lo);
      };
      assert.ok(Math.abs(m.brightnessP5 - percentile(5)) < 1e-12, `${w}x${h} p5`);
      assert.ok(Math.abs(m.brightnessP99 - percentile(99)) < 1e-12, `${w}x${h} p99`);
    }
  });

  it('odd_size: cleanvision IQR rule over the dataset (3 IQRs past the quartiles), NaN rows ignored', () => {
    // Quartiles 100 and 110 (IQR 10): fences at 70 and 140, middle 105, gap 70; score 1 - |v - 105| / 70 < 0.5.
    const sizes = [100, 100, 105, 110, 110, 60, 150, 141, 69.9, NaN];
    assert.deepEqual([...oddSizeFlags(sizes)], [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]);
    // All the same size: the gap is 0, sizes are normalised by the middle and only exact matches pass.
    assert.deepEqual([...oddSizeFlags([50, 50, 50, 50, 80])], [0, 0, 0, 0, 1]);
    assert.deepEqual([...oddSizeFlags([])], []);
  });
});

describe('quality in the scan, the store and the outputs', () => {
  let model: BeitModel;
  let root: string;
  before(async () => {
    model = await BeitModel.load(await convertedTinyModel());
    root = await tempDir('beit-quality-scan-');
    for (const name of readdirSync(QUALITY_DIR).filter((n) => n.endsWith('.png'))) copyFileSync(path.join(QUALITY_DIR, name), path.join(root, name));
    writeFileSync(path.join(root, 'broken.png'), 'not an image');
  });
  after(async () => {
    await model.dispose();
  });

  const scan = async (store: ResultStore | undefined, counting = countingModel(model)) => {
    const results: ScanResult[] = [];
    await scanDataset({ roots: [root], model: counting, store, pool: { workers: 1 }, onResult: (r) => void results.push(r) });
    return { results: new Map(results.map((r) => [path.basename(r.image), r])), counting };
  };

  it('measures during preprocessing, stores by content, and a re-scan reuses the measures', async () => {
    const cache = path.join(await tempDir('beit-quality-cache-'), 'cache.log');
    let store = await ResultStore.open(cache);
    const first = await scan(store);
    await store.close();
    assert.equal(first.counting.images, 8);
    for (const [name, flags] of Object.entries(EXPECTED_FLAGS)) {
      const r = first.results.get(name)!;
      assert.equal(r.source, 'model');
      assert.deepEqual(r.flags, flags, name);
      assert.ok(Math.abs(r.quality!.entropy - reference.images[name].entropy) < 1e-12, `${name} entropy in the worker`);
    }
    const broken = first.results.get('broken.png')!;
    assert.ok(broken.error && broken.quality === undefined && broken.flags === undefined);

    store = await ResultStore.open(cache);
    const again = await scan(store);
    await store.close();
    assert.equal(again.counting.images, 0);
    for (const name of Object.keys(EXPECTED_FLAGS)) {
      const r = again.results.get(name)!;
      assert.equal(r.source, 'cache');
      assert.deepEqual(r.quality, first.results.get(name)!.quality);
      assert.deepEqual(r.flags, first.results.get(name)!.flags);
    }

    // A cache written before quality measures existed (no quality records): predictions are still served
    // without the model, and the images are decoded once to measure them, which the next scan then reuses.
    const old = path.join(path.dirname(cache), 'old.log');
    writeFileSync(old, readFileSync(cache, 'utf8').split('\n').filter((line) => !line.includes('"q":')).join('\n'));
    store = await ResultStore.open(old);
    const upgraded = await scan(store);
    await store.close();
    assert.equal(upgraded.counting.images, 0, 'the model is not run for cached predictions');
    for (const name of Object.keys(EXPECTED_FLAGS)) assert.deepEqual(upgraded.results.get(name)!.quality, first.results.get(name)!.quality);
    assert.match(readFileSync(old, 'utf8'), /"q":/);
  });

  it('JSONL rows carry quality and flags (round trip), CSV has the flag and measure columns after the error', async () => {
    const { results } = await scan(undefined);
    const dark = results.get('dark.png')!;
    const line = toJsonLine(dark);
    const parsed = parseJsonLine(line)!;
    assert.deepEqual(parsed.flags, ['dark']);
    assert.deepEqual(parsed.quality, dark.quality);
    const at = CSV_COLUMNS.indexOf('quality_flags');
    assert.deepEqual(CSV_COLUMNS.slice(at, at + 8), ['quality_flags', 'brightness_perc_99', 'brightness_perc_5', 'entropy', 'blurriness', 'blurriness_grayscale_std', 'aspect_ratio', 'size']);
    const row = toCsvRow(dark);
    assert.equal(row.length, CSV_COLUMNS.length);
    assert.equal(row[at], 'dark');
    assert.equal(row[at + 1], dark.quality!.brightnessP99);
    assert.deepEqual(toCsvRow(results.get('broken.png')!).slice(at, at + 8), ['', '', '', '', '', '', '', '']);
    // Unknown flag names and malformed measures in a results file are dropped, not trusted.
    const tampered = parseJsonLine(JSON.stringify({ ...JSON.parse(line), flags: ['dark', 'evil'] }))!;
    assert.deepEqual(tampered.flags, ['dark']);
    assert.equal(parseJsonLine(JSON.stringify({ ...JSON.parse(line), quality: { entropy: 'x' } }))!.quality, undefined);
  });

  it('the tally counts flags and decides odd_size over the whole scan', () => {
    const tally = new QualityTally();
    const q = (size: number): QualityMeasures => ({ ...reference.images['normal.png'], size });
    for (const size of [100, 100, 105, 110, 110]) tally.add({ quality: q(size), flags: [] });
    tally.add({ quality: q(400), flags: ['dark', 'blurry'] });
    tally.add({});
    assert.equal(tally.line(), 'quality: 1 dark, 1 blurry, 1 odd_size (6 images measured; cleanvision\'s thresholds)');
  });

  it('ResultTable: a flags filter, odd_size decided over the table, flag counts, and rows read back with flags', async () => {
    const dir = await tempDir('beit-quality-table-');
    const table = await ResultTable.create(path.join(dir, 'rows.jsonl'));
    const q = (size: number): QualityMeasures => ({ ...reference.images['normal.png'], size });
    const top = [{ index: 1, label: 'tabby', score: 0.9 }];
    const add = (name: string, size: number, flags: string[]) => table.append({ image: name, folder: '', folderLabel: null, top, quality: q(size), flags: flags as never });
    add('a.png', 100, []);
    add('b.png', 100, ['dark']);
    add('c.png', 110, ['blurry', 'dark']);
    add('d.png', 105, ['grayscale']);
    add('e.png', 110, []);
    // A results file that claims odd_size is not believed: the table decides it from the sizes.
    add('f.png', 104, ['odd_size']);
    table.append({ image: 'g.png', folder: '', folderLabel: null, error: 'bad', errorCode: 'IMAGE_DECODE' });
    const names = async (flags: string[]) => (await table.query({ filter: { flags: flags as never } })).rows.map((r) => r.image);
    assert.deepEqual(await names(['dark']), ['b.png', 'c.png']);
    assert.deepEqual(await names(['dark', 'grayscale']), ['b.png', 'c.png', 'd.png']);
    assert.deepEqual(await names(['odd_size']), []);
    assert.deepEqual(await names([]), ['a.png', 'b.png', 'c.png', 'd.png', 'e.png', 'f.png', 'g.png']);
    add('huge.png', 4000, []);
    assert.deepEqual(await names(['odd_size']), ['huge.png']);
    const [huge] = (await table.query({ filter: { flags: ['odd_size'] } })).rows;
    assert.deepEqual(huge.flags, ['odd_size']);
    assert.deepEqual((await table.query({ filter: { flags: ['blurry'] } })).rows[0].flags, ['dark', 'blurry']);
    assert.deepEqual(
      table.flagCounts().filter((c) => c.count > 0),
      [
        { flag: 'dark', count: 2 },
        { flag: 'blurry', count: 1 },
        { flag: 'grayscale', count: 1 },
        { flag: 'odd_size', count: 1 },
      ],
    );
    await table.close();
    // Reopened from the file: the same answer.
    const reopened = await ResultTable.open(path.join(dir, 'rows.jsonl'));
    assert.deepEqual((await reopened.query({ filter: { flags: ['odd_size', 'grayscale'] } })).rows.map((r) => r.image), ['d.png', 'huge.png']);
    await reopened.close();
  });

  it('beit-lens scan prints the flag counts and writes them into JSONL rows', async () => {
    const entry = path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts');
    const out = path.join(await tempDir('beit-quality-cli-'), 'out.jsonl');
    const { stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', entry, 'scan', root, '--model', await convertedTinyModel(), '--no-cache', '--out', out], { timeout: 120_000 });
    assert.match(stderr, /quality: 1 dark, 1 light, 1 odd_aspect_ratio, 1 low_information, 1 blurry, 1 grayscale \(8 images measured/);
    const rows = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.find((r) => r.image.endsWith('wide.png')).flags, ['odd_aspect_ratio']);
    assert.equal(typeof rows.find((r) => r.image.endsWith('blurry.png')).quality.blurriness, 'number');
  });
});
