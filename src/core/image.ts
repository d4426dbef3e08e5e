/**
 * Image decoding and encoding. This is the only module that imports sharp, so the rules about which bytes are
 * ever handed to libvips live in one place:
 *  - files are stat'ed before they are opened (a FIFO or a device is refused, never read), size-capped, and read
 *    into memory once, so sharp only ever sees one consistent buffer;
 *  - the container is recognised from its magic bytes, not its name, and only raster formats we support reach
 *    libvips. SVG in particular is never rasterised: it can reference external files and run a full XML parser;
 *  - the declared pixel count is checked from the header before any pixel buffer is allocated.
 *
 * Pixel semantics follow PIL's `Image.open(f).convert('RGB')`, what the HF BEiT processor consumes: alpha is
 * dropped, not composited (transparent pixels keep their colour), grey is replicated, palettes are expanded, only
 * the first frame of an animation is used, and embedded ICC profiles are ignored. Two deliberate differences:
 * 16-bit samples are scaled to 8 bits (PIL clips them at 255, which turns most 16-bit images white), and CMYK is
 * converted to sRGB with libvips' colour management rather than PIL's naive formula.
 */
import { constants as fsConstants, promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo, type Sharp } from 'sharp';

import { BeitLensError, errorMessage } from './errors';

export interface DecodeOptions {
  /** Rotate/flip by the EXIF Orientation tag first, as transformers' `load_image()` and pipelines do. Default true. */
  applyExifOrientation?: boolean;
  /** Refuse images whose declared width x height exceeds this. Default {@link DEFAULT_MAX_PIXELS}. */
  maxPixels?: number;
  /** Refuse files (or buffers) larger than this many bytes. Default {@link DEFAULT_MAX_FILE_BYTES}. */
  maxFileBytes?: number;
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

function describeNonRegular(stats: Stats): string {
  if (stats.isDirectory()) return 'is a directory, not an image file';
  if (stats.isFIFO()) return 'is a named pipe (FIFO), not an image file';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'is a device, not an image file';
  if (stats.isSocket()) return 'is a socket, not an image file';
  return 'is not a regular file';
}

function checkRegularFile(stats: Stats, file: string, maxFileBytes: number): void {
  if (!stats.isFile()) throw new BeitLensError('FILE_UNREADABLE', describeNonRegular(stats), file);
  if (stats.size > maxFileBytes) {
    throw new BeitLensError('FILE_TOO_LARGE', `file is ${stats.size} bytes; the limit is ${maxFileBytes}`, file);
  }
}

/**
 * Reads a whole image file after checking, without opening it, that it is a regular file of acceptable size.
 * The open is non-blocking and the handle re-checked, so a path swapped for a FIFO in between cannot hang us.
 */
async function readImageFile(file: string, maxFileBytes: number): Promise<Buffer> {
  let stats: Stats;
  try {
    stats = await fsp.stat(file);
  } catch (err) {
    throw fileSystemError(err, file);
  }
  checkRegularFile(stats, file, maxFileBytes);

  let handle: FileHandle;
  try {
    handle = await fsp.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fileSystemError(err, file);
  }
  try {
    const opened = await handle.stat();
    checkRegularFile(opened, file, maxFileBytes);
    // Read what the file held when opened; a concurrent writer can only shorten it, never grow our buffer.
    const buffer = Buffer.allocUnsafe(opened.size);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } catch (err) {
    if (err instanceof BeitLensError) throw err;
    throw fileSystemError(err, file);
  } finally {
    await handle.close();
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

interface ValidatedImage {
  buffer: Buffer;
  format: RasterFormat;
  metadata: Metadata;
  /** Width and height of one frame as stored. */
  storedWidth: number;
  storedHeight: number;
}

/** Everything short of decoding pixels: read, sniff, parse the header, enforce the pixel limit. */
async function loadAndValidate(
  input: string | Buffer,
  maxPixels: number,
  maxFileBytes: number,
): Promise<ValidatedImage> {
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
  return { buffer, format: sniffed.format, metadata, storedWidth, storedHeight };
}

function sharpInput(buffer: Buffer, maxPixels: number, autoOrient: boolean, ignoreIcc: boolean): Sharp {
  return sharp(buffer, {
    // 'error' makes truncated JPEG/PNG data an exception (with 'none' libvips returns the missing rows blank),
    // while files that only raise decoder warnings, which PIL opens too, still load.
    failOn: 'error',
    limitInputPixels: maxPixels,
    autoOrient,
    ignoreIcc,
    pages: 1,
    page: 0,
  });
}

/**
 * Decodes an image file or in-memory encoded image to packed 8-bit RGB, with PIL `convert('RGB')` semantics
 * (see the module comment). Every failure is a {@link BeitLensError} naming the file.
 */
export async function decodeImage(input: string | Buffer, options: DecodeOptions = {}): Promise<DecodedImage> {
  const applyExifOrientation = options.applyExifOrientation ?? true;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const file = typeof input === 'string' ? input : undefined;
  const image = await loadAndValidate(input, maxPixels, options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES);

  let raw: { data: Buffer; info: OutputInfo };
  try {
    // toColourspace('srgb') expands palettes, replicates grey, converts CMYK and scales 16-bit to 8-bit.
    // Alpha is kept here and dropped below: letting libvips remove it risks premultiplication.
    raw = await sharpInput(image.buffer, maxPixels, applyExifOrientation, true)
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(err, file);
  }
  const { width, height, channels } = raw.info;
  if ((channels !== 3 && channels !== 4) || raw.data.length !== width * height * channels) {
    throw new BeitLensError(
      'IMAGE_DECODE',
      `unexpected decoded layout (${width}x${height}, ${channels} channels, ${raw.data.length} bytes)`,
      file,
    );
  }
  return {
    width,
    height,
    data: channels === 4 ? dropAlpha(raw.data, width * height) : new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length),
    storedWidth: image.storedWidth,
    storedHeight: image.storedHeight,
    format: image.format,
    exifOrientation: image.metadata.orientation,
  };
}

/**
 * The `--fast` path for JPEG: libjpeg decodes at 1/2, 1/4 or 1/8 scale (shrink-on-load) and libvips
 * resizes the rest of the way, so a 12-megapixel photo is never decoded in full. JPEG has no alpha,
 * so libvips' premultiplication cannot darken anything. Returns undefined for other formats, which
 * take the decode-then-resize path.
 */
export async function decodeJpegResized(input: string | Buffer, width: number, height: number, kernel: ResizeKernel, options: DecodeOptions = {}): Promise<DecodedImage | undefined> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const file = typeof input === 'string' ? input : undefined;
  const image = await loadAndValidate(input, maxPixels, options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES);
  if (image.format !== 'jpeg') return undefined;
  checkSize(width, height);
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharpInput(image.buffer, maxPixels, options.applyExifOrientation ?? true, true)
      .toColourspace('srgb')
      .resize(width, height, { fit: 'fill', kernel, fastShrinkOnLoad: true })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(err, file);
  }
  if (raw.info.channels !== 3 || raw.data.length !== width * height * 3) {
    throw new BeitLensError('IMAGE_DECODE', `unexpected decoded layout (${raw.info.width}x${raw.info.height}, ${raw.info.channels} channels)`, file);
  }
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

function dropAlpha(rgba: Uint8Array, pixels: number): Uint8Array {
  const rgb = new Uint8Array(pixels * 3);
  for (let p = 0, s = 0, d = 0; p < pixels; p++, s += 4, d += 3) {
    rgb[d] = rgba[s];
    rgb[d + 1] = rgba[s + 1];
    rgb[d + 2] = rgba[s + 2];
  }
  return rgb;
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

/** RGBA overlay (heatmap, patch grid) scaled for display; 'nearest' keeps patch edges crisp. */
export function resizeRgbaForDisplay(
  rgba: Uint8Array,
  width: number,
  height: number,
  dstWidth: number,
  dstHeight: number,
  kernel: ResizeKernel = 'linear',
): Promise<Uint8Array> {
  return resizeRaw(rgba, width, height, 4, dstWidth, dstHeight, kernel);
}

/**
 * Small thumbnail as a data URI for hovers: EXIF-rotated, colour-managed for display (unlike model input),
 * never enlarged, JPEG unless the image has alpha. Same file checks and limits as {@link decodeImage}.
 */
export async function makeThumbnailDataUri(
  file: string,
  maxSide: number,
  options: Omit<DecodeOptions, 'applyExifOrientation'> = {},
): Promise<string> {
  if (!Number.isInteger(maxSide) || maxSide < 1) throw new RangeError(`maxSide must be a positive integer, got ${maxSide}`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const image = await loadAndValidate(file, maxPixels, options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES);
  try {
    const pipeline = sharpInput(image.buffer, maxPixels, true, false)
      .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb');
    const encoded = image.metadata.hasAlpha
      ? { mime: 'image/png', data: await pipeline.png().toBuffer() }
      : { mime: 'image/jpeg', data: await pipeline.jpeg({ quality: 80 }).toBuffer() };
    return `data:${encoded.mime};base64,${encoded.data.toString('base64')}`;
  } catch (err) {
    throw decodeError(err, file);
  }
}

/** Versions of the image stack, for `doctor` reports. */
export function imageLibraryVersions(): Record<string, string> {
  const versions: Record<string, string> = { libvips: sharp.versions.vips };
  if (sharp.versions.sharp) versions.sharp = sharp.versions.sharp;
  return versions;
}
