/**
 * Writes the hostile-input corpus under test/fixtures/bad/: broken, malicious and merely unusual image files,
 * each with the outcome BEiT Lens must give (a specific error, or the same result as a known-good reference
 * image). Run `npx tsx scripts/make-bad-corpus.ts`; the output is committed, and regenerating it gives the
 * same bytes (fixed seeds; every container is written byte by byte here, except the JPEG and CMYK-JPEG
 * scan data, which come from the pinned sharp/libvips).
 *
 * test/unit/reliability-corpus.test.ts imports CORPUS and RUNTIME_CASES from this file, so the expected
 * outcomes live in one place, and this script renders them into test/fixtures/bad/README.md.
 *
 * Cases that cannot be committed (a symlink to /dev/zero, a FIFO, a directory named x.png, a file replaced
 * while it is read, over-long and non-UTF-8 names) are created by the test in a temporary folder; they are
 * listed in RUNTIME_CASES for the README.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

import type { ErrorCode } from '../src/core/errors';

export const CORPUS_DIR = path.resolve(__dirname, '..', 'test', 'fixtures', 'bad');
export const REFERENCE_DIR = path.join(CORPUS_DIR, 'reference');

/** The port the committed SVG names; the test serves a canary on a free port and rewrites this into a copy. */
export const SVG_CANARY_HOST = '127.0.0.1:47613';

export type Outcome =
  /** Refused with this BeitLensError code and a message matching `message`. */
  | { kind: 'error'; code: ErrorCode; message: RegExp; why: string }
  /** Classified exactly as the reference image (a file under reference/): same decoded pixels, same top-5. */
  | { kind: 'same-as'; reference: string; why: string }
  /** Classified; the decoded pixels are within `maxMeanAbsDiff` levels of the reference (lossy colour conversion). */
  | { kind: 'close-to'; reference: string; maxMeanAbsDiff: number; why: string };

export interface CorpusItem {
  file: string;
  what: string;
  outcome: Outcome;
}

export interface RuntimeCase {
  name: string;
  what: string;
  outcome: string;
}

// ---- expected outcomes (the single source of truth for the test and the README) -----------------

const decodeError = (message: RegExp, why: string): Outcome => ({ kind: 'error', code: 'IMAGE_DECODE', message, why });

export const CORPUS: readonly CorpusItem[] = [
  { file: 'truncated.jpg', what: 'JPEG cut off at 60% (inside the scan data)', outcome: decodeError(/cannot decode image/, 'libvips runs with failOn "error", so missing rows are an error, not grey') },
  { file: 'truncated.png', what: 'PNG cut off at 60% (inside IDAT)', outcome: decodeError(/cannot decode image/, 'same: a short IDAT stream is an error') },
  { file: 'empty.jpg', what: 'zero bytes', outcome: decodeError(/file is empty \(0 bytes\)/, 'checked before any decoder sees it') },
  { file: 'empty.png', what: 'zero bytes', outcome: decodeError(/file is empty \(0 bytes\)/, 'checked before any decoder sees it') },
  { file: 'random.jpg', what: '4 KiB of random bytes with a .jpg name', outcome: decodeError(/not a recognised image \(unknown signature\)/, 'formats are sniffed from magic bytes, never from the name') },
  { file: 'random.png', what: '4 KiB of random bytes with a .png name', outcome: decodeError(/not a recognised image \(unknown signature\)/, 'formats are sniffed from magic bytes, never from the name') },
  { file: 'png-signature-then-garbage.png', what: 'a valid PNG signature followed by 4 KiB of random bytes', outcome: decodeError(/cannot decode image/, 'libpng refuses the missing IHDR') },
  { file: 'jpeg-signature-then-garbage.jpg', what: 'a JPEG SOI marker followed by 4 KiB of random bytes', outcome: decodeError(/cannot decode image/, 'libjpeg refuses the stream') },
  {
    file: 'bomb-100000x100000.png',
    what: 'decompression bomb: IHDR declares 100,000 x 100,000 RGB (30 GB decoded); IDAT holds the first 16 zero rows',
    outcome: { kind: 'error', code: 'IMAGE_TOO_LARGE', message: /100000x100000 \(10000000000 pixels\); the limit is 100000000 pixels/, why: 'the declared size is read from the header and refused before any pixel buffer exists' },
  },
  {
    file: 'animated-500-frames.gif',
    what: 'animated GIF, 500 frames of 8 x 8, every frame different',
    outcome: { kind: 'same-as', reference: 'gif-frame0.png', why: 'only the first frame is decoded (as PIL does); the other 499 are never expanded' },
  },
  {
    file: 'cmyk.jpg',
    what: 'CMYK JPEG (4 channels, Adobe APP14)',
    outcome: { kind: 'close-to', reference: 'cmyk-source.png', maxMeanAbsDiff: 12, why: 'converted to sRGB with libvips colour management; JPEG and CMYK round trips are lossy' },
  },
  { file: 'rgb16.png', what: '16-bit RGB PNG (every sample v * 257)', outcome: { kind: 'same-as', reference: 'rgb8.png', why: '16-bit samples are scaled to 8 bits, which gives back v exactly' } },
  {
    file: 'palette-trns.png',
    what: 'palette PNG with a tRNS chunk (fully transparent, half and opaque entries)',
    outcome: { kind: 'same-as', reference: 'palette-trns-rgb.png', why: 'palette expanded, alpha dropped without compositing (PIL convert("RGB"))' },
  },
  {
    file: 'huge-exif.jpg',
    what: 'JPEG with a maximal (64 KiB) EXIF APP1 block: a 65,000-byte ImageDescription and an entry whose count and offset point far outside the block',
    outcome: { kind: 'same-as', reference: 'plain.jpg', why: 'EXIF is only consulted for Orientation; the bad entry is skipped by libexif' },
  },
  ...[0, 9, 255].map(
    (value): CorpusItem => ({
      file: `exif-orientation-${value}.jpg`,
      what: `JPEG whose EXIF Orientation is ${value} (valid values are 1-8)`,
      outcome: { kind: 'same-as', reference: 'plain.jpg', why: 'an invalid orientation is treated as 1 (no rotation), as PIL exif_transpose does' },
    }),
  ),
  {
    file: 'svg-external.svg',
    what: 'SVG with an external entity, `<image>` and `<use>` pointing at http://127.0.0.1 and file:///etc/passwd, and a `<script>`',
    outcome: { kind: 'error', code: 'IMAGE_UNSUPPORTED', message: /SVG\/XML \(vector images are never rasterised\) is not supported/, why: 'SVG is not supported: it is refused from its first bytes, so nothing is parsed, fetched or run' },
  },
  {
    file: 'svg-named-png.png',
    what: 'the same SVG under a .png name',
    outcome: { kind: 'error', code: 'IMAGE_UNSUPPORTED', message: /SVG\/XML \(vector images are never rasterised\) is not supported/, why: 'sniffed from the bytes, not the name' },
  },
];

/** Good images the corpus test classifies in the same batches; all are also references above. */
export const REFERENCES = ['plain.jpg', 'gif-frame0.png', 'cmyk-source.png', 'rgb8.png', 'palette-trns-rgb.png'] as const;

export const RUNTIME_CASES: readonly RuntimeCase[] = [
  { name: 'zero.png -> /dev/zero', what: 'symlink to /dev/zero', outcome: 'error FILE_UNREADABLE "is a device, not an image file" (stat before open; never read)' },
  { name: 'pipe.png', what: 'a FIFO nobody writes to', outcome: 'error FILE_UNREADABLE "is a named pipe (FIFO)" (never opened, so no hang)' },
  { name: 'x.png/', what: 'a directory named x.png', outcome: 'error FILE_UNREADABLE "is a directory"' },
  { name: 'swapped.jpg', what: 'replaced (rename), deleted, truncated or overwritten between stat and open, or after open', outcome: 'the result for the bytes actually read (old or new file), or FILE_NOT_FOUND / IMAGE_DECODE; a FIFO swapped in is refused after a non-blocking open' },
  { name: '"a" x 300 + ".png"', what: 'a 300-character file name (over the 255-byte NAME_MAX)', outcome: 'error FILE_UNREADABLE "file name too long"' },
  { name: '250-character name in a 300+ character path', what: 'long but legal name', outcome: 'classified like the same image under a short name' },
  { name: '"caf\\xe9_\\xff.png"', what: 'a name that is not valid UTF-8, passed as Node.js sees it (U+FFFD)', outcome: 'error FILE_NOT_FOUND naming the problem ("the name is not valid UTF-8")' },
];

// ---- deterministic building blocks ---------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG, so "random" files are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(length: number, seed: number): Buffer {
  const next = prng(seed);
  return Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG from unfiltered scanlines (`bytesPerPixel` bytes per pixel, filter byte 0 added here). */
function png(width: number, height: number, bitDepth: number, colorType: number, pixels: Buffer, bytesPerPixel: number, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const stride = width * bytesPerPixel;
  const rows = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) pixels.copy(rows, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), ...extra, pngChunk('IDAT', deflateSync(rows, { level: 9 })), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A smooth two-axis gradient with a bright square, so the tiny model sees some structure. */
function scene(width: number, height: number, seed: number): Buffer {
  const next = prng(seed);
  const out = Buffer.alloc(width * height * 3);
  const [r0, g0, b0] = [next() * 255, next() * 255, next() * 255];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const inSquare = x > width / 3 && x < (2 * width) / 3 && y > height / 4 && y < (3 * height) / 4;
      out[i] = inSquare ? 250 : Math.round((r0 + (x * 180) / width) % 256);
      out[i + 1] = inSquare ? 240 : Math.round((g0 + (y * 200) / height) % 256);
      out[i + 2] = inSquare ? 30 : Math.round((b0 + ((x + y) * 90) / (width + height)) % 256);
    }
  }
  return out;
}

// ---- JPEG helpers ---------------------------------------------------------------------------------

/** A little-endian TIFF/EXIF IFD0 from (tag, type, count, value-or-offset) entries, with `data` appended after it. */
function exifApp1(entries: { tag: number; type: number; count: number; value: Buffer | number }[], trailing: Buffer): Buffer {
  const ifdOffset = 8;
  const ifdSize = 2 + entries.length * 12 + 4;
  let dataOffset = ifdOffset + ifdSize;
  const ifd = Buffer.alloc(ifdSize);
  ifd.writeUInt16LE(entries.length, 0);
  const blobs: Buffer[] = [];
  entries.forEach((e, k) => {
    const at = 2 + k * 12;
    ifd.writeUInt16LE(e.tag, at);
    ifd.writeUInt16LE(e.type, at + 2);
    ifd.writeUInt32LE(e.count, at + 4);
    if (typeof e.value === 'number') {
      if (e.type === 3) ifd.writeUInt16LE(e.value, at + 8);
      else ifd.writeUInt32LE(e.value, at + 8);
    } else {
      ifd.writeUInt32LE(dataOffset, at + 8);
      blobs.push(e.value);
      dataOffset += e.value.length;
    }
  });
  const tiff = Buffer.concat([Buffer.from('II*\0', 'latin1'), Buffer.from([8, 0, 0, 0]), ifd, ...blobs, trailing]);
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  if (payload.length + 2 > 0xffff) throw new Error(`APP1 payload of ${payload.length} bytes does not fit a JPEG segment`);
  const header = Buffer.from([0xff, 0xe1, 0, 0]);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([header, payload]);
}

/** Inserts a segment right after SOI (and after APP0 JFIF, where EXIF readers also look). */
function withSegment(jpeg: Buffer, segment: Buffer): Buffer {
  let at = 2;
  if (jpeg[2] === 0xff && jpeg[3] === 0xe0) at = 4 + jpeg.readUInt16BE(4);
  return Buffer.concat([jpeg.subarray(0, at), segment, jpeg.subarray(at)]);
}

/** A JPEG with no metadata segments at all except JFIF, so EXIF variants differ only by what we insert. */
async function plainJpeg(rgb: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90, chromaSubsampling: '4:4:4' }).toBuffer();
}

const SHORT = 3;
const ASCII = 2;
const UNDEFINED = 7;

// ---- GIF ------------------------------------------------------------------------------------------

/**
 * GIF89a with a 256-colour global table and one frame per `frames` entry (palette indices). The LZW data
 * is the simplest valid stream: every pixel as a literal 9-bit code, with a clear code before the table
 * would grow to 10 bits, so the file is exact and needs no compressor.
 */
function animatedGif(width: number, height: number, palette: Buffer, frames: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  const screen = Buffer.alloc(13);
  screen.write('GIF89a', 0, 'latin1');
  screen.writeUInt16LE(width, 6);
  screen.writeUInt16LE(height, 8);
  screen[10] = 0xf7; // global colour table, 8 bits per primary, 256 entries
  parts.push(screen, palette);
  // NETSCAPE2.0 loop forever.
  parts.push(Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0', 'latin1'), 0x03, 0x01, 0x00, 0x00, 0x00]));
  for (const indices of frames) {
    parts.push(Buffer.from([0x21, 0xf9, 0x04, 0x04, 0x02, 0x00, 0x00, 0x00])); // 20 ms, dispose: keep
    const descriptor = Buffer.alloc(10);
    descriptor[0] = 0x2c;
    descriptor.writeUInt16LE(width, 5);
    descriptor.writeUInt16LE(height, 7);
    parts.push(descriptor, Buffer.from([8]), subBlocks(lzwLiterals(indices)), Buffer.from([0]));
  }
  parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

function lzwLiterals(indices: Uint8Array): Buffer {
  const CLEAR = 256;
  const END = 257;
  const out: number[] = [];
  let bits = 0;
  let nbits = 0;
  const emit = (code: number) => {
    bits |= code << nbits;
    nbits += 9;
    while (nbits >= 8) {
      out.push(bits & 0xff);
      bits >>>= 8;
      nbits -= 8;
    }
  };
  // After a clear the decoder adds a table entry per code from the second on; 9-bit codes last until
  // entry 511, so a clear every 254 literals keeps the width at 9 bits.
  for (let i = 0; i < indices.length; i++) {
    if (i % 254 === 0) emit(CLEAR);
    emit(indices[i]);
  }
  emit(END);
  if (nbits > 0) out.push(bits & 0xff);
  return Buffer.from(out);
}

function subBlocks(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += 255) {
    const chunk = data.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}

// ---- the corpus ------------------------------------------------------------------------------------

const SVG = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE svg [
  <!ENTITY canary SYSTEM "http://${SVG_CANARY_HOST}/entity">
  <!ENTITY passwd SYSTEM "file:///etc/passwd">
]>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64" onload="fetch('http://${SVG_CANARY_HOST}/onload')">
  <script type="text/javascript">fetch('http://${SVG_CANARY_HOST}/script');</script>
  <image x="0" y="0" width="64" height="64" xlink:href="http://${SVG_CANARY_HOST}/image.png"/>
  <image x="0" y="0" width="64" height="64" href="file:///etc/passwd"/>
  <use href="http://${SVG_CANARY_HOST}/sprite.svg#a"/>
  <text x="4" y="40">&canary;&passwd;</text>
</svg>
`;

export async function buildCorpus(): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const W = 64;
  const H = 48;

  // References and the images derived from them.
  const plainRgb = scene(W, H, 1);
  const plain = await plainJpeg(plainRgb, W, H);
  files.set('reference/plain.jpg', plain);

  const pngSource = scene(W, H, 2);
  const pngBytes = png(W, H, 8, 2, pngSource, 3);
  files.set('reference/rgb8.png', pngBytes);
  const rgb16 = Buffer.alloc(W * H * 6);
  for (let i = 0; i < pngSource.length; i++) rgb16.writeUInt16BE(pngSource[i] * 257, 2 * i);
  files.set('rgb16.png', png(W, H, 16, 2, rgb16, 6));

  // Palette with transparency: entry 0 fully transparent magenta, 1 half-transparent, the rest opaque.
  const paletteColours = Buffer.alloc(16 * 3);
  for (let k = 0; k < 16; k++) paletteColours.set([k === 0 ? 255 : k * 16, k === 0 ? 0 : 255 - k * 15, k === 0 ? 255 : (k * 97) % 256], k * 3);
  const paletteIndices = Buffer.alloc(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) paletteIndices[y * W + x] = (Math.floor(x / 8) + Math.floor(y / 8) * 3) % 16;
  const trns = Buffer.from([0, 128, ...Array(14).fill(255)]);
  files.set('palette-trns.png', png(W, H, 8, 3, paletteIndices, 1, [pngChunk('PLTE', paletteColours), pngChunk('tRNS', trns)]));
  const paletteRgb = Buffer.alloc(W * H * 3);
  for (let p = 0; p < W * H; p++) paletteColours.copy(paletteRgb, p * 3, paletteIndices[p] * 3, paletteIndices[p] * 3 + 3);
  files.set('reference/palette-trns-rgb.png', png(W, H, 8, 2, paletteRgb, 3));

  // CMYK: the sRGB source as a lossless reference, and a CMYK JPEG of it.
  const cmykSource = scene(W, H, 3);
  files.set('reference/cmyk-source.png', png(W, H, 8, 2, cmykSource, 3));
  files.set('cmyk.jpg', await sharp(cmykSource, { raw: { width: W, height: H, channels: 3 } }).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer());

  // Animated GIF: 500 frames of 8x8; frame f shifts the palette indices by 37f, so no two frames agree.
  const GW = 8;
  const gifPalette = Buffer.alloc(256 * 3);
  for (let k = 0; k < 256; k++) gifPalette.set([k, (k * 7) % 256, 255 - k], k * 3);
  const frames = Array.from({ length: 500 }, (_, f) => Uint8Array.from({ length: GW * GW }, (_, p) => ((p % GW) * 13 + Math.floor(p / GW) * 5 + f * 37) % 256));
  files.set('animated-500-frames.gif', animatedGif(GW, GW, gifPalette, frames));
  const frame0 = Buffer.alloc(GW * GW * 3);
  frames[0].forEach((k, p) => gifPalette.copy(frame0, p * 3, k * 3, k * 3 + 3));
  files.set('reference/gif-frame0.png', png(GW, GW, 8, 2, frame0, 3));

  // Truncations of well-formed files.
  files.set('truncated.jpg', plain.subarray(0, Math.floor(plain.length * 0.6)));
  files.set('truncated.png', pngBytes.subarray(0, Math.floor(pngBytes.length * 0.6)));
  files.set('empty.jpg', Buffer.alloc(0));
  files.set('empty.png', Buffer.alloc(0));

  // Random bytes. The seeds are chosen so the first bytes match no image signature (checked below).
  files.set('random.jpg', randomBytes(4096, 101));
  files.set('random.png', randomBytes(4096, 202));
  files.set('png-signature-then-garbage.png', Buffer.concat([PNG_SIGNATURE, randomBytes(4096, 303)]));
  files.set('jpeg-signature-then-garbage.jpg', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), randomBytes(4096, 404)]));

  // The bomb: a real IHDR for 100000x100000 RGB and a real (short) deflate stream of zero rows.
  const BOMB = 100_000;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(BOMB, 0);
  ihdr.writeUInt32BE(BOMB, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const zeroRows = deflateSync(Buffer.alloc(16 * (1 + BOMB * 3)), { level: 9 });
  files.set('bomb-100000x100000.png', Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', zeroRows), pngChunk('IEND', Buffer.alloc(0))]));

  // EXIF: invalid orientations, and a maximal block with an entry pointing far outside it.
  for (const value of [0, 9, 255]) {
    files.set(`exif-orientation-${value}.jpg`, withSegment(plain, exifApp1([{ tag: 0x0112, type: SHORT, count: 1, value }], Buffer.alloc(0))));
  }
  const description = Buffer.alloc(65_000, 'A'.charCodeAt(0));
  description[description.length - 1] = 0;
  const huge = exifApp1(
    [
      { tag: 0x010e, type: ASCII, count: description.length, value: description },
      // UserComment claiming 2 GiB at an offset 3 GiB into a 64 KiB block.
      { tag: 0x9286, type: UNDEFINED, count: 0x7fffffff, value: 0xc0000000 },
    ],
    randomBytes(65533 - (6 + 8 + 2 + 2 * 12 + 4 + description.length), 505),
  );
  files.set('huge-exif.jpg', withSegment(plain, huge));

  // SVG: refused from its bytes whatever its name.
  files.set('svg-external.svg', Buffer.from(SVG, 'utf8'));
  files.set('svg-named-png.png', Buffer.from(SVG, 'utf8'));

  for (const name of ['random.jpg', 'random.png']) {
    const head = files.get(name)!;
    if ((head[0] === 0xff && head[1] === 0xd8) || head[0] === 0x89 || head[0] === 0x3c || head.toString('latin1', 0, 2) === 'BM') {
      throw new Error(`${name}: the seed gives a recognisable signature; pick another`);
    }
  }
  return files;
}

function readme(sizes: Map<string, number>): string {
  const outcomeText = (o: Outcome): string =>
    o.kind === 'error'
      ? `error \`${o.code}\` matching \`${o.message.source.replace(/\\/g, '')}\``
      : o.kind === 'same-as'
        ? `classified exactly as \`reference/${o.reference}\` (same pixels, same top-5)`
        : `classified; pixels within ${o.maxMeanAbsDiff} levels (mean) of \`reference/${o.reference}\``;
  const row = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [
    '# Hostile and broken images',
    '',
    'Generated by `npx tsx scripts/make-bad-corpus.ts` (deterministic: fixed seeds; do not edit by hand).',
    '`test/unit/reliability-corpus.test.ts` runs every file through `BeitModel.classifyFiles`, the hover',
    'thumbnail path and the built CLI (`classify --json`, in one batch with the reference images), and checks',
    'the outcome below, a time bound and a memory bound for each. `reference/` holds the good images the',
    'unusual-but-valid files must match.',
    '',
    row(['File', 'Bytes', 'What it is', 'Expected outcome', 'Why']),
    row(['---', '---:', '---', '---', '---']),
    ...CORPUS.map((c) => row([`\`${c.file}\``, String(sizes.get(c.file)), c.what, outcomeText(c.outcome), c.outcome.why])),
    '',
    'Created at test time in a temporary folder (they cannot be committed, or only as a hazard):',
    '',
    row(['Case', 'What it is', 'Expected outcome']),
    row(['---', '---', '---']),
    ...RUNTIME_CASES.map((c) => row([`\`${c.name}\``, c.what, c.outcome])),
    '',
    'SVG is not supported: BEiT Lens never rasterises vector images, because an SVG can reference external',
    'files and URLs and carries a full XML parser. The test serves a canary on 127.0.0.1 at the address the',
    'SVG names and checks that it receives no request.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const files = await buildCorpus();
  // Start clean so a renamed case leaves no stale file behind.
  for (const entry of readdirSync(CORPUS_DIR, { withFileTypes: true })) {
    if (entry.name !== 'README.md') rmSync(path.join(CORPUS_DIR, entry.name), { recursive: true, force: true });
  }
  mkdirSync(REFERENCE_DIR, { recursive: true });
  const sizes = new Map<string, number>();
  for (const [name, bytes] of files) {
    writeFileSync(path.join(CORPUS_DIR, name), bytes);
    sizes.set(name, bytes.length);
  }
  writeFileSync(path.join(CORPUS_DIR, 'README.md'), readme(sizes));
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  process.stdout.write(`wrote ${files.size} files (${(total / 1024).toFixed(0)} KiB) and README.md to ${path.relative(process.cwd(), CORPUS_DIR)}\n`);
}

if (require.main === module) {
  mkdirSync(CORPUS_DIR, { recursive: true });
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
