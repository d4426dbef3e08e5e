/**
 * Image decoding and HF-exact preprocessing against the golden fixtures (Pillow 9.4.0 + BeitImageProcessor
 * numerics), plus the refusal paths for bad input. The fixtures' README documents every expected value.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';

import { BeitLensError, type ErrorCode } from '../../src/core/errors';
import { decodeImage, encodePng, makeThumbnailDataUri, type DecodeOptions } from '../../src/core/image';
import { pixelValuesFromResized, preprocessImage, stackPixelValues } from '../../src/core/preprocess';
import {
  loadPreprocessorConfig,
  modelInputSize,
  parsePreprocessorConfig,
  type PreprocessorConfig,
} from '../../src/core/preprocessorConfig';
import { resizePil } from '../../src/core/pilResize';
import { bmpBytes } from '../helpers/fixtures';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'beit-tiny');
const TOLERANCE = 1e-6;

interface PixelSummary {
  mean: number;
  std: number;
  channel_means: number[];
  first8: number[];
  samples_chw: { c: number; y: number; x: number; value: number }[];
  decoded_rgb_size_wh: [number, number];
  decoded_rgb_channel_means_uint8: number[];
  decoded_rgb_first4_pixels: number[][];
  resized_uint8_channel_means: number[];
  resized_uint8_first4_pixels: number[][];
}
interface Entry {
  pixel_values: PixelSummary;
  resized_uint8_png: string;
}
interface ImageEntry extends Entry {
  file: string;
  stored_size_wh: [number, number];
  exif_orientation: number;
  variants?: Record<string, Entry>;
}

const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as { images: ImageEntry[] };

/**
 * Our defaults apply EXIF orientation (as transformers' pipelines do) and scale 16-bit samples to 8 bits, so by
 * default the EXIF image matches `exif_transposed` and the 16-bit one `scaled_16bit_to_8bit`. The primary entry of
 * the 16-bit image (PIL clipping every sample above 255) is deliberately not reproduced.
 */
function defaultEntry(image: ImageEntry): { label: string; entry: Entry } {
  for (const variant of ['exif_transposed', 'scaled_16bit_to_8bit']) {
    const entry = image.variants?.[variant];
    if (entry) return { label: variant, entry };
  }
  return { label: 'primary', entry: image };
}

const cases: { name: string; image: ImageEntry; entry: Entry; options: DecodeOptions }[] = expected.images.flatMap(
  (image) => {
    const { label, entry } = defaultEntry(image);
    const all = [{ name: `${image.file} defaults (${label})`, image, entry, options: {} }];
    if (image.exif_orientation !== 1) {
      all.push({ name: `${image.file} EXIF off (primary)`, image, entry: image, options: { applyExifOrientation: false } });
    }
    return all;
  },
);

function channelMeans(hwc: Uint8Array): number[] {
  const sums = [0, 0, 0];
  for (let i = 0; i < hwc.length; i++) sums[i % 3] += hwc[i];
  return sums.map((s) => s / (hwc.length / 3));
}

function firstPixels(hwc: Uint8Array, n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from(hwc.subarray(i * 3, i * 3 + 3)));
}

function assertClose(actual: number, wanted: number, what: string, tolerance = TOLERANCE): void {
  assert.ok(Math.abs(actual - wanted) <= tolerance, `${what}: got ${actual}, expected ${wanted} (±${tolerance})`);
}

function assertAllClose(actual: ArrayLike<number>, wanted: ArrayLike<number>, what: string, tolerance = TOLERANCE): void {
  assert.equal(actual.length, wanted.length, `${what}: length`);
  for (let i = 0; i < wanted.length; i++) assertClose(actual[i], wanted[i], `${what}[${i}]`, tolerance);
}

function summarise(values: Float32Array, width: number, height: number) {
  const plane = width * height;
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  const channelMean = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = c * plane; i < (c + 1) * plane; i++) s += values[i];
    return s / plane;
  });
  return { mean, std: Math.sqrt(squares / values.length), channelMean };
}

async function expectError(promise: Promise<unknown>, code: ErrorCode, mentions: string): Promise<BeitLensError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof BeitLensError, `expected a BeitLensError, got ${String(err)}`);
  assert.equal(err.code, code, `code (message: ${err.message})`);
  assert.ok(err.message.includes(mentions), `message should mention ${mentions}: ${err.message}`);
  assert.ok(!err.message.includes('\n'), `message should be one line: ${err.message}`);
  return err;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A minimal valid PNG; `rows` is the unfiltered scanline data (each row starting with filter byte 0). */
function makePng(width: number, height: number, bitDepth: number, colorType: number, rows: Buffer, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...extra,
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

let config: PreprocessorConfig;
before(async () => {
  config = await loadPreprocessorConfig(path.join(FIXTURES, 'preprocessor_config.json'));
});

describe('HF-exact preprocessing of the fixture images', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const file = path.join(FIXTURES, c.image.file);
      const pv = c.entry.pixel_values;
      const result = await preprocessImage(file, config, c.options);
      // preprocessImage frees the full-size pixels and describes them; decodeImage keeps them.
      const source = await decodeImage(file, c.options);
      const { data: _pixels, ...described } = source;
      assert.deepEqual(result.source, described);

      assert.deepEqual([source.storedWidth, source.storedHeight], c.image.stored_size_wh);
      assert.equal(source.exifOrientation ?? 1, c.image.exif_orientation);
      assert.deepEqual([source.width, source.height], pv.decoded_rgb_size_wh);
      assertAllClose(channelMeans(source.data), pv.decoded_rgb_channel_means_uint8, 'decoded channel means', 1e-6 * 255);
      assert.deepEqual(firstPixels(source.data, 4), pv.decoded_rgb_first4_pixels);

      const reference = await decodeImage(path.join(FIXTURES, c.entry.resized_uint8_png));
      assert.deepEqual([result.width, result.height], [224, 224]);
      assert.ok(Buffer.from(result.resized).equals(Buffer.from(reference.data)), 'resized bytes differ from the PIL reference');
      assertAllClose(channelMeans(result.resized), pv.resized_uint8_channel_means, 'resized channel means', 1e-6 * 255);
      assert.deepEqual(firstPixels(result.resized, 4), pv.resized_uint8_first4_pixels);

      const values = result.pixelValues;
      assert.equal(values.length, 3 * 224 * 224);
      const stats = summarise(values, 224, 224);
      assertClose(stats.mean, pv.mean, 'mean');
      assertClose(stats.std, pv.std, 'std');
      assertAllClose(stats.channelMean, pv.channel_means, 'channel_means');
      assertAllClose(values.subarray(0, 8), pv.first8, 'first8');
      for (const s of pv.samples_chw) assertClose(values[s.c * 224 * 224 + s.y * 224 + s.x], s.value, `[${s.c},${s.y},${s.x}]`);
    });
  }

  test('images[0] reproduces pixel_values_0.bin bit for bit', async () => {
    const raw = readFileSync(path.join(FIXTURES, 'pixel_values_0.bin'));
    const wanted = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const { pixelValues } = await preprocessImage(path.join(FIXTURES, expected.images[0].file), config);
    assert.ok(Buffer.from(pixelValues.buffer).equals(Buffer.from(wanted.buffer)));
  });

  test('accepts encoded bytes and already-decoded images as input', async () => {
    const file = path.join(FIXTURES, 'images', 'tiny_17x9.png');
    const fromFile = await preprocessImage(file, config);
    const fromBuffer = await preprocessImage(readFileSync(file), config);
    const fromDecoded = await preprocessImage(await decodeImage(file), config);
    assert.deepEqual(fromBuffer.pixelValues, fromFile.pixelValues);
    assert.deepEqual(fromDecoded.pixelValues, fromFile.pixelValues);
  });

  test('fast path (libvips linear) stays close to the exact path and keeps transparent colours', async (t) => {
    for (const c of cases) {
      const file = path.join(FIXTURES, c.image.file);
      const exact = await preprocessImage(file, config, c.options);
      const fast = await preprocessImage(file, config, { ...c.options, fast: true });
      let sum = 0;
      let max = 0;
      for (let i = 0; i < exact.pixelValues.length; i++) {
        const d = Math.abs(exact.pixelValues[i] - fast.pixelValues[i]);
        sum += d;
        max = Math.max(max, d);
      }
      const meanAbs = sum / exact.pixelValues.length;
      t.diagnostic(`${c.name}: mean |diff| ${meanAbs.toFixed(5)}, max |diff| ${max.toFixed(4)}`);
      // The 17x9 -> 224 upscale drifts most (~3 levels on average: libvips' upsampling grid differs from PIL's).
      assert.ok(meanAbs < 0.03, `${c.name}: mean |diff| ${meanAbs}`);
      const exactStats = summarise(exact.pixelValues, 224, 224);
      const fastStats = summarise(fast.pixelValues, 224, 224);
      assertClose(fastStats.mean, exactStats.mean, `${c.name} fast mean`, 0.02);
      assertClose(fastStats.std, exactStats.std, `${c.name} fast std`, 0.02);
    }
    // Inside the fully transparent magenta block of the RGBA image: premultiplied resizing would make it black.
    const fast = await preprocessImage(path.join(FIXTURES, 'images', 'alpha_300x200.png'), config, { fast: true });
    const i = (55 * 224 + 178) * 3;
    assert.deepEqual(Array.from(fast.resized.subarray(i, i + 3)), [255, 0, 255]);
  });
});

describe('decoding', () => {
  test('16-bit RGB keeps the high byte (as PIL), 16-bit grey is scaled (PIL would clip)', async () => {
    const rgb = Buffer.alloc(13);
    [0x1234, 0xff00, 0x00ff, 1000, 65535, 257].forEach((v, i) => rgb.writeUInt16BE(v, 1 + 2 * i));
    assert.deepEqual(Array.from((await decodeImage(makePng(2, 1, 16, 2, rgb))).data), [0x12, 0xff, 0x00, 3, 255, 1]);
    const grey = Buffer.alloc(5);
    grey.writeUInt16BE(1000, 1);
    grey.writeUInt16BE(51400, 3);
    assert.deepEqual(Array.from((await decodeImage(makePng(2, 1, 16, 0, grey))).data), [3, 3, 3, 200, 200, 200]);
  });

  test('palette with tRNS and grey+alpha: transparency dropped, colours kept (PIL convert("RGB"))', async () => {
    const palette = makePng(2, 1, 8, 3, Buffer.from([0, 0, 1]), [
      pngChunk('PLTE', Buffer.from([255, 0, 255, 10, 20, 30])),
      pngChunk('tRNS', Buffer.from([0, 255])),
    ]);
    assert.deepEqual(Array.from((await decodeImage(palette)).data), [255, 0, 255, 10, 20, 30]);
    const greyAlpha = makePng(2, 1, 8, 4, Buffer.from([0, 77, 0, 200, 128]));
    assert.deepEqual(Array.from((await decodeImage(greyAlpha)).data), [77, 77, 77, 200, 200, 200]);
  });

  test('animated GIF: first frame only', async () => {
    // 4x4, two frames: red then blue.
    const gif = Buffer.from(
      'R0lGODlhBAAEAIAAAExpcf8AACH5BAUAAAAALAAAAAAEAAQAAAIEjI8ZBQAh+QQFAAAAACwAAAAABAAEAIBMaXEAAP8CBIyPGQUAOw==',
      'base64',
    );
    const decoded = await decodeImage(gif);
    assert.deepEqual([decoded.format, decoded.width, decoded.height, decoded.storedHeight], ['gif', 4, 4, 4]);
    assert.deepEqual(firstPixels(decoded.data, 16), Array(16).fill([255, 0, 0]));
  });

  test('CMYK JPEG is converted to sRGB', async () => {
    // 8x8 solid sRGB (200, 30, 60) saved as a CMYK JPEG.
    const cmyk = Buffer.from(
      '/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwABAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB/8AAFAgACAAIBEMRAE0RAFkRAEsRAP/EABQAAQAAAAAAAAAAAAAAAAAAAAr/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/9oADgRDAE0AWQBLAAA/AH4AHjPlgP/Z',
      'base64',
    );
    const decoded = await decodeImage(cmyk);
    assert.equal(decoded.data.length, 8 * 8 * 3);
    const [r, g, b] = decoded.data;
    assert.ok(r > 150 && g < 90 && b < 110, `expected a red, got ${[r, g, b]}`);
  });

  test('WebP and AVIF with alpha: alpha dropped without compositing', async () => {
    // 2x2 RGBA: transparent magenta, opaque (10,20,30), half-transparent (1,2,3), nearly transparent (200,100,50).
    const webp = Buffer.from(
      'UklGRkIAAABXRUJQVlA4TDUAAAAvAUAAEB8gICFTMsEyYhpi8+nfRzVqAhBgrAg+/XMSEhCi10wPPpJzXYWatg1Y/CYdEf0PDgA=',
      'base64',
    );
    const avif = Buffer.from(
      'AAAAHGZ0eXBhdmlmAAAAAG1pZjFhdmlmbWlhZgAAAYRtZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAAADRpbG9jAAAAAERAAAIAAQAAAAABqAABAAAAAAAAAGQAAgAAAAACDAABAAAAAAAAAC4AAAA4aWluZgAAAAAAAgAAABVpbmZlAgAAAAABAABhdjAxAAAAABVpbmZlAgAAAAACAABhdjAxAAAAAA5waXRtAAAAAAABAAAAw2lwcnAAAACdaXBjbwAAAAxhdjFDgSACAAAAABNjb2xybmNseAABAA0AAIAAAAAUaXNwZQAAAAAAAAACAAAAAgAAABBwaXhpAAAAAAMICAgAAAAMYXYxQ4EAHAAAAAAOcGl4aQAAAAABCAAAADhhdXhDAAAAAHVybjptcGVnOm1wZWdCOmNpY3A6c3lzdGVtczphdXhpbGlhcnk6YWxwaGEAAAAAHmlwbWEAAAAAAAAAAgABBIECAwQAAgSFAwaHAAAAGmlyZWYAAAAAAAAADmF1eGwAAgABAAEAAACabWRhdBIACgc4ADYQENACMlcQAAD1bmN/N////Szp0WJVvBHrNiKmFiLgcPrrrslD//////hnYPmM3vP9+X8/AOAl+YA4A4A4A4A5hq///cdnSYU7G7WR9acF5a02tNrTa02tOFn3igwSAAoEGAA2FTIkEACIag////3q1SgFkyVVSHEt8qLjlwWVUh45eOXjl45eOYCA',
      'base64',
    );
    for (const [format, bytes] of [['webp', webp], ['heif', avif]] as const) {
      const decoded = await decodeImage(bytes);
      assert.equal(decoded.format, format);
      assert.deepEqual(Array.from(decoded.data), [255, 0, 255, 10, 20, 30, 1, 2, 3, 200, 100, 50], format);
    }
  });

  test('encodePng round-trips RGB and RGBA (alpha dropped on decode, colour kept)', async () => {
    const rgb = Uint8Array.from([1, 2, 3, 250, 251, 252]);
    assert.deepEqual((await decodeImage(await encodePng(rgb, 2, 1, 3))).data, rgb);
    const rgba = Uint8Array.from([255, 0, 255, 0, 9, 8, 7, 255]);
    assert.deepEqual(Array.from((await decodeImage(await encodePng(rgba, 1, 2, 4))).data), [255, 0, 255, 9, 8, 7]);
  });

  test('thumbnails are EXIF-rotated data URIs, PNG when the image has alpha', async () => {
    const jpeg = await makeThumbnailDataUri(path.join(FIXTURES, 'images', 'exif_orientation6_320x240.jpg'), 64);
    assert.match(jpeg, /^data:image\/jpeg;base64,/);
    const thumb = await decodeImage(Buffer.from(jpeg.split(',')[1], 'base64'));
    assert.deepEqual([thumb.width, thumb.height], [48, 64]);
    const png = await makeThumbnailDataUri(path.join(FIXTURES, 'images', 'alpha_300x200.png'), 64);
    assert.match(png, /^data:image\/png;base64,/);
    const tiny = await makeThumbnailDataUri(path.join(FIXTURES, 'images', 'tiny_17x9.png'), 64);
    const tinyThumb = await decodeImage(Buffer.from(tiny.split(',')[1], 'base64'));
    assert.deepEqual([tinyThumb.width, tinyThumb.height], [17, 9], 'never enlarged');
  });
});

describe('bad input is refused with a specific one-line error naming the file', () => {
  let dir: string;
  const at = (name: string) => path.join(dir, name);
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'beit-lens-image-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('missing file', async () => {
    await expectError(decodeImage(at('missing.png')), 'FILE_NOT_FOUND', at('missing.png'));
  });

  test('zero-byte file', async () => {
    writeFileSync(at('empty.png'), Buffer.alloc(0));
    await expectError(decodeImage(at('empty.png')), 'IMAGE_DECODE', at('empty.png'));
  });

  test('random bytes named .png', async () => {
    let seed = 12345;
    const bytes = Buffer.alloc(4096, 0).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    bytes[0] = 0x00;
    bytes[1] = 0x01;
    writeFileSync(at('random.png'), bytes);
    await expectError(decodeImage(at('random.png')), 'IMAGE_DECODE', at('random.png'));
  });

  test('PNG signature followed by garbage', async () => {
    const bytes = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 0x5a)]);
    writeFileSync(at('garbage.png'), bytes);
    await expectError(decodeImage(at('garbage.png')), 'IMAGE_DECODE', at('garbage.png'));
  });

  for (const [name, fraction] of [
    ['gradient_640x480.jpg', 0.5],
    ['gradient_640x480.jpg', 0.95],
    ['alpha_300x200.png', 0.5],
    ['tiny_17x9.png', 0.9],
    ['tiny_17x9.png', 0.1],
  ] as const) {
    test(`truncated ${name} (${fraction * 100}%)`, async () => {
      const bytes = readFileSync(path.join(FIXTURES, 'images', name));
      const target = at(`truncated-${fraction}-${name}`);
      writeFileSync(target, bytes.subarray(0, Math.floor(bytes.length * fraction)));
      await expectError(decodeImage(target), 'IMAGE_DECODE', target);
    });
  }

  test('directory named x.png', async () => {
    mkdirSync(at('x.png'));
    const err = await expectError(decodeImage(at('x.png')), 'FILE_UNREADABLE', at('x.png'));
    assert.match(err.message, /directory/);
  });

  test('FIFO is refused without blocking', { timeout: 5000 }, async () => {
    execFileSync('mkfifo', [at('pipe.png')]);
    const err = await expectError(decodeImage(at('pipe.png')), 'FILE_UNREADABLE', at('pipe.png'));
    assert.match(err.message, /FIFO/);
  });

  test('symlink to /dev/zero is refused without reading', { timeout: 5000 }, async () => {
    symlinkSync('/dev/zero', at('zero.png'));
    const err = await expectError(decodeImage(at('zero.png')), 'FILE_UNREADABLE', at('zero.png'));
    assert.match(err.message, /device/);
  });

  test('SVG (with an external reference) is never rasterised, whatever its name', async () => {
    const svg =
      '\ufeff<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ' +
      'width="64" height="64"><image xlink:href="file:///etc/passwd" width="64" height="64"/></svg>';
    for (const name of ['evil.svg', 'evil.png']) {
      writeFileSync(at(name), svg);
      const err = await expectError(decodeImage(at(name)), 'IMAGE_UNSUPPORTED', at(name));
      assert.match(err.message, /SVG/);
    }
  });

  test('BMP is reported as unsupported', async () => {
    writeFileSync(at('image.bmp'), bmpBytes());
    const err = await expectError(decodeImage(at('image.bmp')), 'IMAGE_UNSUPPORTED', at('image.bmp'));
    assert.match(err.message, /BMP/);
  });

  test('a header declaring 100000x100000 is refused quickly, before any pixel allocation', async () => {
    writeFileSync(at('huge.png'), makePng(100_000, 100_000, 8, 2, Buffer.alloc(16)));
    const started = performance.now();
    const err = await expectError(decodeImage(at('huge.png')), 'IMAGE_TOO_LARGE', at('huge.png'));
    assert.match(err.message, /100000x100000/);
    assert.ok(performance.now() - started < 2000, 'took too long');
  });

  test('maxPixels and maxFileBytes are honoured', async () => {
    const file = path.join(FIXTURES, 'images', 'gradient_640x480.jpg');
    const tooMany = await expectError(decodeImage(file, { maxPixels: 640 * 480 - 1 }), 'IMAGE_TOO_LARGE', file);
    assert.match(tooMany.message, /640x480/);
    await expectError(decodeImage(file, { maxFileBytes: 1000 }), 'FILE_TOO_LARGE', file);
    await expectError(preprocessImage(file, config, { maxPixels: 1000 }), 'IMAGE_TOO_LARGE', file);
  });

  test('thumbnails apply the same checks', async () => {
    writeFileSync(at('thumb.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    await expectError(makeThumbnailDataUri(at('thumb.svg'), 64), 'IMAGE_UNSUPPORTED', at('thumb.svg'));
  });
});

describe('preprocessor config', () => {
  const base = JSON.parse(readFileSync(path.join(FIXTURES, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;

  test('the fixture (legacy BeitFeatureExtractor form) reads as 224x224 bilinear, no crop, mean = std = 0.5', () => {
    assert.deepEqual(config, {
      width: 224,
      height: 224,
      resample: 2,
      doResize: true,
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.5, 0.5, 0.5],
      imageStd: [0.5, 0.5, 0.5],
      doCenterCrop: false,
      cropWidth: 224,
      cropHeight: 224,
    });
    assert.deepEqual(modelInputSize(config), { width: 224, height: 224 });
  });

  test('legacy "size": N and {"height", "width"} forms are equivalent', () => {
    const modern = parsePreprocessorConfig({
      ...base,
      size: { height: 224, width: 224 },
      crop_size: { height: 224, width: 224 },
    });
    assert.deepEqual(modern, config);
    const rect = parsePreprocessorConfig({ ...base, size: { height: 100, width: 300 } });
    assert.deepEqual([rect.width, rect.height], [300, 100]);
  });

  test('missing keys take BeitImageProcessor defaults; null means missing', () => {
    const c = parsePreprocessorConfig({ image_mean: null });
    assert.deepEqual(
      [c.width, c.height, c.resample, c.doCenterCrop, c.cropWidth, c.cropHeight, c.rescaleFactor, c.imageMean],
      [256, 256, 3, true, 224, 224, 1 / 255, [0.5, 0.5, 0.5]],
    );
  });

  for (const [what, patch, field] of [
    ['shortest_edge size', { size: { shortest_edge: 224 } }, 'size'],
    ['size missing width', { size: { height: 224 } }, 'size'],
    ['zero size', { size: 0 }, 'size'],
    ['string crop_size', { crop_size: '224' }, 'crop_size'],
    ['NEAREST resample', { resample: 0 }, 'resample'],
    ['unknown resample', { resample: 7 }, 'resample'],
    ['non-boolean do_resize', { do_resize: 'yes' }, 'do_resize'],
    ['two-channel mean', { image_mean: [0.5, 0.5] }, 'image_mean'],
    ['zero std', { image_std: [0.5, 0, 0.5] }, 'image_std'],
    ['string rescale_factor', { rescale_factor: '1/255' }, 'rescale_factor'],
  ] as const) {
    test(`rejects ${what}`, () => {
      assert.throws(
        () => parsePreprocessorConfig({ ...base, ...patch }, 'cfg.json'),
        (err: unknown) =>
          err instanceof BeitLensError &&
          err.code === 'CONFIG_INVALID' &&
          err.message.includes(`"${field}"`) &&
          err.message.startsWith('cfg.json: ') &&
          !err.message.includes('\n'),
      );
    });
  }

  test('file errors: missing, not JSON, not an object', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'beit-lens-config-'));
    try {
      await expectError(loadPreprocessorConfig(path.join(dir, 'nope.json')), 'FILE_NOT_FOUND', 'nope.json');
      writeFileSync(path.join(dir, 'bad.json'), '{"size": 224,');
      await expectError(loadPreprocessorConfig(path.join(dir, 'bad.json')), 'CONFIG_INVALID', 'bad.json');
      writeFileSync(path.join(dir, 'list.json'), '[1, 2]');
      await expectError(loadPreprocessorConfig(path.join(dir, 'list.json')), 'CONFIG_INVALID', 'list.json');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('processor steps beyond the BEiT checkpoints', () => {
  const decoded = (width: number, height: number, data: number[]) => ({
    width,
    height,
    data: Uint8Array.from(data),
    storedWidth: width,
    storedHeight: height,
    format: 'png',
  });

  test('resize then centre crop, as BeitImageProcessor defaults (256 -> 224)', async () => {
    const cfg = parsePreprocessorConfig({ resample: 2 });
    const file = path.join(FIXTURES, 'images', 'gradient_640x480.jpg');
    const result = await preprocessImage(file, cfg);
    const full = resizePil((await decodeImage(file)).data, 640, 480, 3, 256, 256, 2);
    const crop = new Uint8Array(224 * 224 * 3);
    for (let y = 0; y < 224; y++) crop.set(full.subarray(((y + 16) * 256 + 16) * 3, ((y + 16) * 256 + 240) * 3), y * 224 * 3);
    assert.deepEqual([result.width, result.height], [224, 224]);
    assert.deepEqual(result.resized, crop);
  });

  test('centre crop larger than the image pads with zeros like HF', async () => {
    const cfg = parsePreprocessorConfig({ do_resize: false, crop_size: { height: 3, width: 4 } });
    const result = await preprocessImage(decoded(2, 2, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]), cfg);
    const px = (v: number) => [v, v, v];
    assert.deepEqual(
      Array.from(result.resized),
      [...[0, 0, 0, 0].flatMap(px), ...[0, 1, 2, 0].flatMap(px), ...[0, 3, 4, 0].flatMap(px)],
    );
  });

  test('do_resize false with a mismatched image is refused', async () => {
    const cfg = parsePreprocessorConfig({ do_resize: false, do_center_crop: false, size: 224 });
    await expectError(preprocessImage(decoded(1, 1, [0, 0, 0]), cfg), 'IMAGE_UNSUPPORTED', '1x1');
  });

  test('rescale / normalise switches and per-channel statistics follow HF float32 numerics', () => {
    const hwc = Uint8Array.from([0, 128, 255, 7, 8, 9]);
    const plain = parsePreprocessorConfig({ do_rescale: false, do_normalize: false, size: 1 });
    assert.deepEqual(Array.from(pixelValuesFromResized(hwc, 2, 1, plain)), [0, 7, 128, 8, 255, 9]);
    const imagenet = parsePreprocessorConfig({ image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225] });
    const values = pixelValuesFromResized(hwc, 2, 1, imagenet);
    const f = Math.fround;
    const hf = (u: number, m: number, s: number) => f(f(f(u * (1 / 255)) - f(m)) / f(s));
    assert.deepEqual(Array.from(values), [
      hf(0, 0.485, 0.229),
      hf(7, 0.485, 0.229),
      hf(128, 0.456, 0.224),
      hf(8, 0.456, 0.224),
      hf(255, 0.406, 0.225),
      hf(9, 0.406, 0.225),
    ]);
  });

  test('stackPixelValues builds an NCHW batch', () => {
    const a = Float32Array.from([1, 2, 3]);
    const b = Float32Array.from([4, 5, 6]);
    assert.deepEqual(Array.from(stackPixelValues([a, b], 1, 1)), [1, 2, 3, 4, 5, 6]);
    assert.throws(() => stackPixelValues([a, Float32Array.from([1])], 1, 1), RangeError);
  });
});
