/**
 * Image decoding and encoding. This is the only module that imports sharp, so the rules about which bytes are
 * ever handed to libvips live in one place:
 *  - files are stat'ed before they are opened (a FIFO or a device is refused, never read), size-capped, and read
 *    into memory once, so sharp only ever sees one consistent buffer;
 *  - the container is recognised from its magic bytes, not its name, and only raster formats we support reach
 *    libvips. SVG in particular is never rasterised: it can reference external files and run a full XML parser;
 *  - the declared pixel count and aspect ratio are checked from the header before any pixel buffer is allocated,
 *    and every decode is charged to a byte budget (decodeBudget.ts) computed from that header;
 *  - a JPEG that makes libjpeg warn is an error (it "recovers" from a premature end of data by inventing grey
 *    pixels, even when an EOI marker follows), in the exact and the shrink-on-load path alike, unless the only
 *    warning was for bytes it skips between segments, which a copy without them proves (see runPipeline).
 *
 * Pixel semantics follow PIL's `Image.open(f).convert('RGB')`, what the HF BEiT processor consumes: alpha is
 * dropped, not composited (transparent pixels keep their colour), grey is replicated, palettes are expanded, only
 * the first frame of an animation is used, and embedded ICC profiles are ignored. Two deliberate differences:
 * 16-bit samples are scaled to 8 bits (PIL clips them at 255, which turns most 16-bit images white), and CMYK is
 * converted to sRGB with libvips' colour management rather than PIL's naive formula.
 */
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';

import { type DecodeBudget, formatBytes, processDecodeBudget } from './decodeBudget';
import { BeitLensError, errorMessage } from './errors';
import { withoutExtraneousBytes } from './jpegMarkers';
import { readRegularFile } from './regularFile';
import { fsPath } from './scan/fileNames';

export interface DecodeOptions {
  /** Rotate/flip by the EXIF Orientation tag first, as transformers' `load_image()` and pipelines do. Default true. */
  applyExifOrientation?: boolean;
  /** Refuse images whose declared width x height exceeds this. Default {@link DEFAULT_MAX_PIXELS}. */
  maxPixels?: number;
  /** Refuse files (or buffers) larger than this many bytes. Default {@link DEFAULT_MAX_FILE_BYTES}. */
  maxFileBytes?: number;
  /** Refuse images whose longer side exceeds the shorter this many times. Default {@link DEFAULT_MAX_ASPECT_RATIO}. */
  maxAspectRatio?: number;
  /** The byte budget this decode draws on. Default: the process-wide one ({@link processDecodeBudget}). */
  budget?: DecodeBudget;
}

export interface DecodedImage {
  /** Size after the EXIF orientation was applied (if it was). */
  width: number;
  height: number;
  /** Packed RGB, 3 bytes per pixel, row-major, `width * height * 3` bytes. */
  data: Uint8Array;
  /** Size as stored in the file (one frame, before any EXIF rotation). */
  storedWidth: number;
  storedHeight: number;
  /** Container format as libvips names it: jpeg, png, gif, webp, tiff or heif. */
  format: string;
  /** EXIF Orientation tag (1-8) when the file has one, whether or not it was applied. */
  exifOrientation?: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;
export const DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024;
/**
 * BeitImageProcessor squeezes any aspect ratio into 224x224, horizontal pass first, so 1 x 100,000,000 needs a
 * 224 x 100,000,000 intermediate (67 GB here, 90 GB in PIL). Past 100:1 one axis is compressed over 100 times more
 * than the other and nothing recognisable is left; panoramas (about 12:1) and long screenshots (about 20:1) are
 * well within it. Checked from the header, like the pixel limit.
 */
export const DEFAULT_MAX_ASPECT_RATIO = 100;

const SUPPORTED_FORMATS_TEXT = 'JPEG, PNG, GIF, WebP, TIFF, AVIF';

type RasterFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'heif';

/** What the magic bytes say: a raster format we hand to libvips, or a reason to refuse. */
type Sniffed = { kind: 'raster'; format: RasterFormat } | { kind: 'unsupported'; what: string } | { kind: 'unknown' };

function startsWith(buf: Buffer, bytes: readonly number[], offset = 0): boolean {
  if (buf.length < offset + bytes.length) return false;
  return bytes.every((b, i) => buf[offset + i] === b);
}

function ascii(buf: Buffer, start: number, end: number): string {
  return buf.toString('latin1', start, Math.min(end, buf.length));
}

/** ISO-BMFF brands of the HEIF family (AVIF, HEIC and friends). */
const HEIF_BRANDS = new Set(['avif', 'avis', 'heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);

function sniffFormat(buf: Buffer): Sniffed {
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return { kind: 'raster', format: 'jpeg' };
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'raster', format: 'png' };
  const head6 = ascii(buf, 0, 6);
  if (head6 === 'GIF87a' || head6 === 'GIF89a') return { kind: 'raster', format: 'gif' };
  if (ascii(buf, 0, 4) === 'RIFF' && ascii(buf, 8, 12) === 'WEBP') return { kind: 'raster', format: 'webp' };
  // Classic TIFF (42) and BigTIFF (43), both byte orders.
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { kind: 'raster', format: 'tiff' };
  }
  if (startsWith(buf, [0x49, 0x49, 0x2b, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2b])) {
    return { kind: 'raster', format: 'tiff' };
  }
  if (ascii(buf, 4, 8) === 'ftyp' && HEIF_BRANDS.has(ascii(buf, 8, 12))) return { kind: 'raster', format: 'heif' };

  // Recognised but refused, so the user gets "unsupported" rather than "corrupt".
  if (ascii(buf, 0, 2) === 'BM') return { kind: 'unsupported', what: 'BMP (the bundled libvips has no BMP decoder)' };
  if (ascii(buf, 0, 5) === '%PDF-') return { kind: 'unsupported', what: 'PDF' };
  if (ascii(buf, 0, 4) === '8BPS') return { kind: 'unsupported', what: 'Photoshop PSD' };
  if (startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(buf, [0xff, 0x4f, 0xff, 0x51])) {
    return { kind: 'unsupported', what: 'JPEG 2000' };
  }
  if (startsWith(buf, [0xff, 0x0a]) || startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) {
    return { kind: 'unsupported', what: 'JPEG XL' };
  }
  if (startsWith(buf, [0x1f, 0x8b])) return { kind: 'unsupported', what: 'gzip-compressed data (e.g. SVGZ)' };
  if (looksLikeMarkup(buf)) return { kind: 'unsupported', what: 'SVG/XML (vector images are never rasterised)' };
  return { kind: 'unknown' };
}

/** XML, SVG or HTML: the first non-blank character (after an optional UTF-8 BOM) is '<'. */
function looksLikeMarkup(buf: Buffer): boolean {
  let i = startsWith(buf, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  const end = Math.min(buf.length, i + 1024);
  while (i < end && (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0a || buf[i] === 0x0d)) i++;
  return i < end && buf[i] === 0x3c;
}

function fileSystemError(err: unknown, file: string): BeitLensError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      // Node.js decodes command-line arguments and directory entries as UTF-8, turning each invalid byte into
      // U+FFFD, so a file whose name is not UTF-8 can only be named by a string that does not exist.
      return new BeitLensError(
        'FILE_NOT_FOUND',
        file.includes('\uFFFD') ? 'file not found (the name is not valid UTF-8, so Node.js cannot open it by this name; rename the file)' : 'file not found',
        file,
      );
    case 'ENAMETOOLONG':
      return new BeitLensError('FILE_UNREADABLE', 'file name too long', file);
    case 'EACCES':
    case 'EPERM':
      return new BeitLensError('FILE_UNREADABLE', 'permission denied', file);
    case 'ELOOP':
      return new BeitLensError('FILE_UNREADABLE', 'too many levels of symbolic links', file);
    default:
      return new BeitLensError('FILE_UNREADABLE', `cannot read file (${code ?? errorMessage(err)})`, file);
  }
}

/** Stat first (FIFOs and devices refused, never opened): the mechanism classify and scan share. */
async function readImageFile(file: string, maxFileBytes: number): Promise<Buffer> {
  try {
    // By its bytes, as the scanner does: a name that is not UTF-8 arrives surrogate-escaped (from a scan, or argv
    // recovered by the CLI), and fs would turn the escapes into U+FFFD.
    return await readRegularFile(fsPath(file), maxFileBytes, { errorFile: file });
  } catch (err) {
    if (err instanceof BeitLensError) throw err;
    throw fileSystemError(err, file);
  }
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0].trim();
}

function decodeError(err: unknown, file: string | undefined): BeitLensError {
  if (err instanceof BeitLensError) return err;
  // libvips sometimes ends the first line with a colon and puts the detail on a later line; drop the dangling colon.
  const message = firstLine(errorMessage(err)).replace(/:$/, '');
  if (/pixel limit/i.test(message)) return new BeitLensError('IMAGE_TOO_LARGE', message, file);
  return new BeitLensError('IMAGE_DECODE', `cannot decode image: ${message}`, file);
}

/** An image whose header has been read and checked; decoding it is the next step. */
export interface InspectedImage {
  readonly file?: string;
  readonly buffer: Buffer;
  readonly format: RasterFormat;
  readonly metadata: Metadata;
  /** Width and height of one frame as stored. */
  readonly storedWidth: number;
  readonly storedHeight: number;
  readonly maxPixels: number;
}

/**
 * Everything short of decoding pixels: read, sniff, parse the header, enforce the pixel and aspect-ratio limits.
 * Every failure is a {@link BeitLensError} naming the file.
 */
export async function inspectImage(input: string | Buffer, options: DecodeOptions = {}): Promise<InspectedImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const maxAspectRatio = options.maxAspectRatio ?? DEFAULT_MAX_ASPECT_RATIO;
  const file = typeof input === 'string' ? input : undefined;
  const buffer = typeof input === 'string' ? await readImageFile(input, maxFileBytes) : input;
  if (typeof input !== 'string' && buffer.length > maxFileBytes) {
    throw new BeitLensError('FILE_TOO_LARGE', `image data is ${buffer.length} bytes; the limit is ${maxFileBytes}`);
  }
  if (buffer.length === 0) throw new BeitLensError('IMAGE_DECODE', 'file is empty (0 bytes)', file);

  const sniffed = sniffFormat(buffer);
  if (sniffed.kind === 'unsupported') {
    throw new BeitLensError(
      'IMAGE_UNSUPPORTED',
      `${sniffed.what} is not supported; supported formats: ${SUPPORTED_FORMATS_TEXT}`,
      file,
    );
  }
  if (sniffed.kind === 'unknown') {
    throw new BeitLensError(
      'IMAGE_DECODE',
      `not a recognised image (unknown signature); supported formats: ${SUPPORTED_FORMATS_TEXT}`,
      file,
    );
  }

  let metadata: Metadata;
  try {
    // Header only: no pixels are allocated here, so the limit is lifted to learn the declared size first.
    metadata = await sharp(buffer, { limitInputPixels: false, failOn: 'error' }).metadata();
  } catch (err) {
    throw decodeError(err, file);
  }
  if (metadata.format !== sniffed.format) {
    throw new BeitLensError(
      'IMAGE_DECODE',
      `looks like ${sniffed.format.toUpperCase()} but libvips reads it as ${metadata.format}`,
      file,
    );
  }
  if (metadata.format === 'heif' && metadata.compression !== 'av1') {
    // The prebuilt libvips that ships with sharp decodes AVIF only, not HEVC-coded HEIC.
    throw new BeitLensError(
      'IMAGE_UNSUPPORTED',
      `HEIF with ${metadata.compression ?? 'unknown'} compression (e.g. HEIC) is not supported; supported formats: ${SUPPORTED_FORMATS_TEXT}`,
      file,
    );
  }
  const storedWidth = metadata.width;
  const storedHeight = metadata.pageHeight ?? metadata.height;
  if (storedWidth * storedHeight > maxPixels) {
    throw new BeitLensError(
      'IMAGE_TOO_LARGE',
      `image is ${storedWidth}x${storedHeight} (${storedWidth * storedHeight} pixels); the limit is ${maxPixels} pixels`,
      file,
    );
  }
  const long = Math.max(storedWidth, storedHeight);
  const short = Math.min(storedWidth, storedHeight);
  if (long > short * maxAspectRatio) {
    throw new BeitLensError(
      'IMAGE_UNSUPPORTED',
      `image is ${storedWidth}x${storedHeight}, an aspect ratio of ${formatRatio(long / short)}:1; the limit is ${maxAspectRatio}:1`,
      file,
    );
  }
  return { file, buffer, format: sniffed.format, metadata, storedWidth, storedHeight, maxPixels };
}

function formatRatio(ratio: number): string {
  return ratio >= 10 ? String(Math.round(ratio)) : ratio.toFixed(1);
}

function bytesPerSample(metadata: Metadata): number {
  switch (metadata.depth) {
    case 'ushort':
    case 'short':
      return 2;
    case 'uint':
    case 'int':
    case 'float':
      return 4;
    case 'double':
    case 'complex':
      return 8;
    case 'dpcomplex':
      return 16;
    default:
      return 1;
  }
}

/**
 * Source rows libvips holds while it streams a decode (strips, line caches, per-thread regions): measured peak
 * RSS minus the output buffer was 670 to 750 rows of the source's bytes, for 2,500 to 10,000-pixel-wide PNGs.
 */
const STREAMING_ROWS = 768;

export interface DecodeCostOptions {
  applyExifOrientation?: boolean;
  /** libvips resizes in the pipeline to at most this size (the --fast path, thumbnails); default: full size. */
  resizeTo?: { width: number; height: number };
}

/**
 * Bytes a decode of this image holds at its peak, from the header alone. libvips streams most decodes a strip at
 * a time, so the cost is the output buffer (8-bit, at most 4 channels: 16-bit samples are scaled and alpha is
 * removed inside the pipeline, never as a separate full-size copy) plus a strip allowance, plus a whole decoded
 * frame in the file's own sample format where libvips cannot stream: progressive JPEG (libjpeg keeps every
 * 16-bit DCT coefficient), interlaced PNG, GIF, WebP and AVIF (their decoders produce whole frames, AVIF with
 * its YUV planes beside), and any EXIF rotation or flip (it reads the image out of order).
 */
export function decodeCostBytes(image: InspectedImage, options: DecodeCostOptions = {}): number {
  const { metadata, storedWidth: w, storedHeight: h, format } = image;
  const bands = metadata.channels ?? 4;
  const sample = bytesPerSample(metadata);
  const frame = w * h * bands * sample;
  // With a resize in the pipeline, libjpeg shrinks on load by up to 8x; counted at half of what sharp can pick.
  const target = options.resizeTo;
  const jpegShrink = target && format === 'jpeg' ? Math.max(1, 2 ** Math.floor(Math.log2(Math.min(8, w / target.width, h / target.height))) / 2) : 1;
  const loaded = Math.ceil(w / jpegShrink) * Math.ceil(h / jpegShrink) * bands * sample;
  const output = target ? target.width * target.height * 4 : w * h * 3;
  let bytes = output + STREAMING_ROWS * Math.ceil(w / jpegShrink) * bands * sample;
  if (format === 'jpeg' && metadata.isProgressive) bytes += w * h * jpegComponentSamples(metadata) * 2;
  if ((format === 'png' && metadata.isProgressive) || format === 'gif' || format === 'webp') bytes += frame;
  if (format === 'heif') bytes += 2 * frame;
  const orientation = metadata.orientation ?? 1;
  if ((options.applyExifOrientation ?? true) && orientation >= 2 && orientation <= 8) bytes += loaded;
  return bytes;
}

/** Coefficients per pixel of a JPEG, over all components: subsampled chroma has fewer. */
function jpegComponentSamples(metadata: Metadata): number {
  const bands = metadata.channels ?? 3;
  if (bands !== 3) return bands;
  if (metadata.chromaSubsampling === '4:2:0') return 1.5;
  if (metadata.chromaSubsampling === '4:2:2') return 2;
  return 3;
}

/**
 * Runs `decode` holding `bytes` of the budget; refuses the image (naming the file and the figures) when it could
 * not fit even into the whole budget, and otherwise waits for room.
 */
export async function withDecodeBudget<T>(
  image: Pick<InspectedImage, 'file' | 'storedWidth' | 'storedHeight'>,
  bytes: number,
  budget: DecodeBudget | undefined,
  decode: () => Promise<T>,
): Promise<T> {
  const pool = budget ?? processDecodeBudget();
  if (bytes > pool.totalBytes) {
    throw new BeitLensError(
      'IMAGE_TOO_LARGE',
      `image is ${image.storedWidth}x${image.storedHeight}: decoding it takes ${formatBytes(bytes)}, more than the whole decode budget of ${formatBytes(pool.totalBytes)}`,
      image.file,
    );
  }
  const release = await pool.acquire(bytes);
  try {
    return await decode();
  } finally {
    release();
  }
}

type FailOn = 'error' | 'warning';

function sharpInput(image: InspectedImage, failOn: FailOn, autoOrient: boolean, ignoreIcc: boolean): Sharp {
  return sharp(image.buffer, {
    failOn,
    limitInputPixels: image.maxPixels,
    autoOrient,
    ignoreIcc,
    pages: 1,
    page: 0,
  });
}

/**
 * A JPEG that makes libjpeg warn is an error, with one exact exception. libjpeg "recovers" from damaged
 * entropy-coded data by inventing pixels and saying so only in a warning: a JPEG cut in half with FF D9 appended, a
 * header promising 10000x10000 over 28 KB, or a scan with no data all "decode" as mostly grey. Which warning it was
 * cannot be told reliably: libvips and sharp keep warnings and error text in process-wide queues that concurrent
 * decodes (other images of the batch, other threads) read each other's text from, so a rule by message would make
 * the outcome depend on timing, and outcomes are cached by content. So the rule is by outcome: failOn 'warning'
 * for JPEG, and the message is ours.
 *
 * The exception is bytes libjpeg skips where it expects a marker ("extraneous bytes before marker", common in
 * camera and phone files, opened by PIL): those it never interprets, so when the strict decode fails and the file
 * has such bytes (jpegMarkers.ts), a copy without them is decoded strictly, and its success is again a verdict
 * about this image alone. Intact files never get there. Non-JPEG formats keep failOn 'error' (truncated data is
 * an exception; PNG's benign warnings, which PIL ignores too, are not).
 */
const CORRUPT_JPEG = 'corrupt JPEG data (libjpeg warned, e.g. of a premature end of the data segment, and would fill what it cannot decode with grey)';

async function runPipeline<T>(image: InspectedImage, run: (failOn: FailOn, source: InspectedImage) => Promise<T>): Promise<T> {
  try {
    if (image.format !== 'jpeg') return await run('error', image);
    try {
      return await run('warning', image);
    } catch {
      const cleaned = withoutExtraneousBytes(image.buffer);
      if (cleaned) {
        try {
          return await run('warning', { ...image, buffer: cleaned });
        } catch {
          // Damaged besides the skipped bytes: refused like any other damaged JPEG, below.
        }
      }
      // Failing again with 'error' means a real error, whose own text is the better message (and it is what
      // truncated files always gave); decoding fine means the first failure was a warning.
      await run('error', image);
      throw new BeitLensError('IMAGE_DECODE', `cannot decode image: ${CORRUPT_JPEG}`, image.file);
    }
  } catch (err) {
    throw decodeError(err, image.file);
  }
}

function decodedLayoutError(image: InspectedImage, info: OutputInfo, length: number): BeitLensError {
  return new BeitLensError('IMAGE_DECODE', `unexpected decoded layout (${info.width}x${info.height}, ${info.channels} channels, ${length} bytes)`, image.file);
}

/** Decodes an inspected image to packed 8-bit RGB, without touching any budget (the caller holds it). */
export async function decodeInspected(image: InspectedImage, applyExifOrientation = true): Promise<DecodedImage> {
  // toColourspace('srgb') expands palettes, replicates grey, converts CMYK and scales 16-bit to 8-bit;
  // removeAlpha is a band extraction (nothing is premultiplied without a resize), done strip by strip.
  const raw = await runPipeline(image, (failOn, source) =>
    sharpInput(source, failOn, applyExifOrientation, true).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true }),
  );
  const { width, height, channels } = raw.info;
  if (channels !== 3 || raw.data.length !== width * height * 3) throw decodedLayoutError(image, raw.info, raw.data.length);
  return {
    width,
    height,
    data: new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length),
    storedWidth: image.storedWidth,
    storedHeight: image.storedHeight,
    format: image.format,
    exifOrientation: image.metadata.orientation,
  };
}

/**
 * Decodes an image file or in-memory encoded image to packed 8-bit RGB, with PIL `convert('RGB')` semantics
 * (see the module comment), holding its share of the decode budget while it runs. The returned pixels are the
 * caller's: keeping many large ones is outside the budget. Every failure is a {@link BeitLensError} naming the file.
 */
export async function decodeImage(input: string | Buffer, options: DecodeOptions = {}): Promise<DecodedImage> {
  const applyExifOrientation = options.applyExifOrientation ?? true;
  const image = await inspectImage(input, options);
  return withDecodeBudget(image, decodeCostBytes(image, { applyExifOrientation }), options.budget, () => decodeInspected(image, applyExifOrientation));
}

/**
 * The `--fast` path for JPEG: libjpeg decodes at 1/2, 1/4 or 1/8 scale (shrink-on-load) and libvips
 * resizes the rest of the way, so a 12-megapixel photo is never decoded in full. JPEG has no alpha,
 * so libvips' premultiplication cannot darken anything. Only for JPEG (other formats take the decode-then-resize
 * path); the caller holds the budget ({@link decodeCostBytes} with `resizeTo`).
 */
export async function decodeInspectedJpegResized(image: InspectedImage, width: number, height: number, kernel: ResizeKernel, applyExifOrientation = true): Promise<DecodedImage> {
  if (image.format !== 'jpeg') throw new RangeError(`shrink-on-load is for JPEG, not ${image.format}`);
  checkSize(width, height);
  const raw = await runPipeline(image, (failOn, source) =>
    sharpInput(source, failOn, applyExifOrientation, true)
      .toColourspace('srgb')
      .resize(width, height, { fit: 'fill', kernel, fastShrinkOnLoad: true })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true }),
  );
  if (raw.info.channels !== 3 || raw.data.length !== width * height * 3) throw decodedLayoutError(image, raw.info, raw.data.length);
  return {
    width,
    height,
    data: new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length),
    storedWidth: image.storedWidth,
    storedHeight: image.storedHeight,
    format: image.format,
    exifOrientation: image.metadata.orientation,
  };
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`invalid image size ${width}x${height}`);
  }
}

function checkRawLayout(data: Uint8Array, width: number, height: number, channels: number): void {
  checkSize(width, height);
  if (data.length !== width * height * channels) {
    throw new RangeError(`pixel buffer has ${data.length} bytes, expected ${width}x${height}x${channels}`);
  }
}

function rawInput(data: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4): Sharp {
  checkRawLayout(data, width, height, channels);
  return sharp(data, { raw: { width, height, channels } });
}

/** Bytes {@link resizeRaw} needs besides its source: libvips' strips of the source and the output. */
export function resizeRawCostBytes(width: number, _height: number, channels: number, dstWidth: number, dstHeight: number): number {
  return STREAMING_ROWS * width * channels + dstWidth * dstHeight * channels;
}

/** Lossless PNG of packed 8-bit RGB or RGBA pixels (overlay export, reference images in tests). */
export async function encodePng(rgbOrRgba: Uint8Array, width: number, height: number, channels: 3 | 4): Promise<Buffer> {
  return rawInput(rgbOrRgba, width, height, channels).png().toBuffer();
}

export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

/**
 * libvips resize of packed 8-bit pixels to exactly dstWidth x dstHeight (aspect ratio not kept). Fast but not
 * PIL-exact (see pilResize.ts for that). With 4 channels libvips premultiplies alpha while resampling, which is
 * right for display and wrong for model input, so model input must be resized as 3-channel RGB.
 */
export async function resizeRaw(
  data: Uint8Array,
  width: number,
  height: number,
  channels: 1 | 2 | 3 | 4,
  dstWidth: number,
  dstHeight: number,
  kernel: ResizeKernel,
): Promise<Uint8Array> {
  checkSize(dstWidth, dstHeight);
  const out = await rawInput(data, width, height, channels)
    .resize(dstWidth, dstHeight, { fit: 'fill', kernel })
    .raw()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** What a hover says about an image besides its thumbnail, all from the header already parsed for it. */
export interface Thumbnail {
  dataUri: string;
  /** Size as displayed: one frame, after the EXIF orientation (what an image viewer shows). */
  width: number;
  height: number;
  /** Container format as libvips names it: jpeg, png, gif, webp, tiff or heif. */
  format: string;
}

/**
 * Small thumbnail as a data URI for hovers: EXIF-rotated, colour-managed for display (unlike model input),
 * never enlarged, JPEG unless the image has alpha. Same file checks and limits as {@link decodeImage}.
 */
export async function makeThumbnailDataUri(
  input: string | Buffer,
  maxSide: number,
  options: Omit<DecodeOptions, 'applyExifOrientation'> = {},
): Promise<string> {
  return (await makeThumbnail(input, maxSide, options)).dataUri;
}

/** {@link makeThumbnailDataUri} with the image's size and format from the same header read (no second parse). */
export async function makeThumbnail(input: string | Buffer, maxSide: number, options: Omit<DecodeOptions, 'applyExifOrientation'> = {}): Promise<Thumbnail> {
  if (!Number.isInteger(maxSide) || maxSide < 1) throw new RangeError(`maxSide must be a positive integer, got ${maxSide}`);
  const image = await inspectImage(input, options);
  const cost = decodeCostBytes(image, { resizeTo: { width: Math.min(maxSide, image.storedWidth), height: Math.min(maxSide, image.storedHeight) } });
  const encoded = await withDecodeBudget(image, cost, options.budget, () =>
    runPipeline(image, async (failOn, source) => {
      const pipeline = sharpInput(source, failOn, true, false)
        .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
        .toColourspace('srgb');
      return image.metadata.hasAlpha
        ? { mime: 'image/png', data: await pipeline.png().toBuffer() }
        : { mime: 'image/jpeg', data: await pipeline.jpeg({ quality: 80 }).toBuffer() };
    }),
  );
  // EXIF orientations 5-8 turn the image a quarter: the viewer shows it with width and height swapped.
  const turned = (image.metadata.orientation ?? 1) >= 5;
  return {
    dataUri: `data:${encoded.mime};base64,${encoded.data.toString('base64')}`,
    width: turned ? image.storedHeight : image.storedWidth,
    height: turned ? image.storedWidth : image.storedHeight,
    format: image.format,
  };
}

/**
 * An already decoded image as a JPEG data URI of at most `maxSide` pixels a side, for the
 * explanation panel: it shows exactly the pixels the model saw without decoding the file again.
 */
export async function encodeDisplayDataUri(image: Pick<DecodedImage, 'data' | 'width' | 'height'>, maxSide: number): Promise<string> {
  if (!Number.isInteger(maxSide) || maxSide < 1) throw new RangeError(`maxSide must be a positive integer, got ${maxSide}`);
  const jpeg = await rawInput(image.data, image.width, image.height, 3)
    .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 90 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}

/** Versions of the image stack, for `doctor` reports. */
export function imageLibraryVersions(): Record<string, string> {
  const versions: Record<string, string> = { libvips: sharp.versions.vips };
  if (sharp.versions.sharp) versions.sharp = sharp.versions.sharp;
  return versions;
}
