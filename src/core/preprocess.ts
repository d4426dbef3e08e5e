/**
 * The HF `BeitImageProcessor` (PIL backend) pipeline, reproduced to the bit: decode -> resize with Pillow's
 * resampler on uint8 -> optional centre crop -> rescale (uint8 * factor in float64, then float32) -> normalise in
 * float32 -> CHW. Matching it exactly matters because whole-level differences in the resized image move the logits
 * by ~0.1 (see the fixtures' README). The `fast` option trades that exactness for libvips' resampler.
 */
import { RECLAIM_AFTER_BYTES, reclaimDecodedMemory } from './decodeBudget';
import { BeitLensError } from './errors';
import {
  decodeCostBytes,
  decodeInspected,
  decodeInspectedJpegResized,
  inspectImage,
  resizeRaw,
  resizeRawCostBytes,
  withDecodeBudget,
  type DecodedImage,
  type DecodeOptions,
  type ResizeKernel,
} from './image';
import { PilResample, pilResizeScratchBytes, resizePil } from './pilResize';
import { measureQuality, qualityScratchBytes, type QualityMeasures } from './quality/measures';
import { modelInputSize, type PreprocessorConfig } from './preprocessorConfig';

/**
 * Decode options (limits, the byte budget; EXIF orientation is applied by default, as transformers' pipelines do)
 * plus the choice of resampler.
 */
export interface PreprocessOptions extends DecodeOptions {
  /** Resize with libvips instead of the exact Pillow port (faster on very large images, not HF-exact). */
  fast?: boolean;
  /**
   * Also measure image quality (quality/measures.ts) on the decoded pixels while they are at hand: the scan's
   * preprocessing workers do, so the flags cost no second decode. Only for encoded input (a file or bytes).
   */
  measureQuality?: boolean;
}

export interface PreprocessedImage {
  /** Model input for one image, CHW float32, `3 * height * width` values. */
  pixelValues: Float32Array;
  /** The uint8 RGB image (HWC) that pixelValues was computed from, after resize and crop. */
  resized: Uint8Array;
  width: number;
  height: number;
  /**
   * The decoded image before resizing: the caller's own DecodedImage when it passed one, otherwise its description
   * only (the full-size pixels are freed before the decode budget is released; use decodeImage to keep them).
   */
  source: DecodedImageInfo;
  /** With `measureQuality`: cleanvision's measures of the decoded image. */
  quality?: QualityMeasures;
}

export type DecodedImageInfo = Omit<DecodedImage, 'data'>;

/** The closest libvips kernel to each Pillow filter, for the fast path. */
const FAST_KERNELS: Record<number, ResizeKernel> = {
  [PilResample.BILINEAR]: 'linear',
  [PilResample.BICUBIC]: 'cubic',
  [PilResample.LANCZOS]: 'lanczos3',
  [PilResample.BOX]: 'linear',
  [PilResample.HAMMING]: 'linear',
};

function isDecodedImage(input: string | Buffer | DecodedImage): input is DecodedImage {
  return typeof input !== 'string' && !Buffer.isBuffer(input);
}

/**
 * HF `center_crop`: the window starts at floor((size - crop) / 2) on each axis, and wherever it falls outside the
 * image (crop larger than the image) the output is zero, as HF pads with zeros before cropping.
 */
function centerCrop(rgb: Uint8Array, width: number, height: number, cropW: number, cropH: number): Uint8Array {
  const out = new Uint8Array(cropW * cropH * 3);
  const left = Math.floor((width - cropW) / 2);
  const top = Math.floor((height - cropH) / 2);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(cropW, width - left);
  for (let y = 0; y < cropH; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= height || x1 <= x0) continue;
    const src = (sy * width + left + x0) * 3;
    out.set(rgb.subarray(src, src + (x1 - x0) * 3), (y * cropW + x0) * 3);
  }
  return out;
}

/**
 * Per channel, the float32 model input for each of the 256 uint8 levels, computed with HF's exact operation
 * order: rescale `float32(u * factor)` with the product in float64 (numpy), then `(x - mean) / std` in float32.
 */
function levelTables(config: PreprocessorConfig): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const mean = Math.fround(config.imageMean[c]);
    const std = Math.fround(config.imageStd[c]);
    const table = new Float32Array(256);
    for (let u = 0; u < 256; u++) {
      let x = config.doRescale ? Math.fround(u * config.rescaleFactor) : u;
      if (config.doNormalize) x = Math.fround(Math.fround(x - mean) / std);
      table[u] = x;
    }
    return table;
  });
}

/**
 * Rescales and normalises an HWC uint8 RGB image into CHW float32 model input. Writes into `out` at `offset`
 * when given (e.g. a slot of a batch tensor), else into a new array.
 */
export function pixelValuesFromResized(
  resized: Uint8Array,
  width: number,
  height: number,
  config: PreprocessorConfig,
  out: Float32Array = new Float32Array(3 * width * height),
  offset = 0,
): Float32Array {
  const plane = width * height;
  if (resized.length !== plane * 3) {
    throw new RangeError(`resized image has ${resized.length} bytes, expected ${width}x${height}x3`);
  }
  if (offset < 0 || offset + 3 * plane > out.length) {
    throw new RangeError(`output has room for ${out.length - offset} values at offset ${offset}, need ${3 * plane}`);
  }
  const [t0, t1, t2] = levelTables(config);
  for (let p = 0, s = 0; p < plane; p++, s += 3) {
    out[offset + p] = t0[resized[s]];
    out[offset + plane + p] = t1[resized[s + 1]];
    out[offset + 2 * plane + p] = t2[resized[s + 2]];
  }
  return out;
}

/** Concatenates per-image CHW inputs of one size into a single NCHW batch tensor `[N, 3, height, width]`: the one batching of classifyFiles and embedFiles. */
export function stackPixelValues(items: readonly Float32Array[], width: number, height: number): Float32Array {
  const size = 3 * width * height;
  const batch = new Float32Array(items.length * size);
  items.forEach((item, i) => {
    if (item.length !== size) throw new RangeError(`item ${i} has ${item.length} values, expected 3x${height}x${width}`);
    batch.set(item, i * size);
  });
  return batch;
}

/**
 * Decodes (unless given decoded pixels) and preprocesses one image into model input, following
 * `config` the way BeitImageProcessor does. The decode, the resize and the model input are charged to the decode
 * budget together, from the header, before any of them is allocated; the returned `source` pixels are the
 * caller's. Errors are BeitLensErrors naming the file.
 */
export async function preprocessImage(
  input: string | Buffer | DecodedImage,
  config: PreprocessorConfig,
  options: PreprocessOptions = {},
): Promise<PreprocessedImage> {
  if (isDecodedImage(input)) {
    const size = { storedWidth: input.width, storedHeight: input.height };
    return withDecodeBudget(size, resizeCostBytes(input.width, input.height, config, options), options.budget, () => finish(input, config, options, undefined));
  }
  const applyExifOrientation = options.applyExifOrientation ?? true;
  const image = await inspectImage(input, options);
  const shrinkOnLoad = options.fast === true && config.doResize && image.format === 'jpeg';
  const orientation = image.metadata.orientation ?? 1;
  const swapped = applyExifOrientation && orientation >= 5 && orientation <= 8;
  const width = swapped ? image.storedHeight : image.storedWidth;
  const height = swapped ? image.storedWidth : image.storedHeight;
  const decodedW = shrinkOnLoad ? config.width : width;
  const decodedH = shrinkOnLoad ? config.height : height;
  const cost =
    (shrinkOnLoad
      ? decodeCostBytes(image, { applyExifOrientation, resizeTo: { width: config.width, height: config.height } }) + resizeCostBytes(config.width, config.height, config, options)
      : decodeCostBytes(image, { applyExifOrientation }) + resizeCostBytes(width, height, config, options)) +
    (options.measureQuality ? qualityScratchBytes(decodedW, decodedH) : 0);
  return withDecodeBudget(image, cost, options.budget, async () => {
    // The decoded pixels live only inside this call, so they are garbage once it returns.
    const result = await (async () => {
      const source = shrinkOnLoad
        ? await decodeInspectedJpegResized(image, config.width, config.height, FAST_KERNELS[config.resample] ?? 'linear', applyExifOrientation)
        : await decodeInspected(image, applyExifOrientation);
      const quality = options.measureQuality ? measureDecoded(source, image.metadata.channels === 1, width, height) : undefined;
      const { data: _pixels, ...info } = source;
      return { ...(await finish(source, config, options, image.file)), source: info, ...(quality ? { quality } : {}) };
    })();
    if (cost >= RECLAIM_AFTER_BYTES) await reclaimDecodedMemory();
    return result;
  });
}

/**
 * Quality measures of the decoded pixels. One band in the file is PIL's mode "L" (cleanvision's grayscale).
 * On the fast JPEG path the pixels are already shrunk (and stretched) to the model size, so the pixel measures
 * are approximate there; the shape measures always come from the image's own size.
 */
function measureDecoded(source: DecodedImage, oneBand: boolean, width: number, height: number): QualityMeasures {
  const measures = measureQuality(source.data, source.width, source.height, oneBand);
  if (source.width === width && source.height === height) return measures;
  return { ...measures, aspectRatio: Math.min(width / height, height / width), size: Math.sqrt(width) * Math.sqrt(height) };
}

/** What {@link finish} allocates for a decoded width x height image: the resize's buffers and the model input. */
function resizeCostBytes(width: number, height: number, config: PreprocessorConfig, options: PreprocessOptions): number {
  const { width: inW, height: inH } = modelInputSize(config);
  // Cropped uint8 image, its copy in the result, and the float32 CHW input.
  const modelInput = inW * inH * 3 * 2 + inW * inH * 3 * 4;
  if (!config.doResize || (width === config.width && height === config.height)) return modelInput;
  const resize = options.fast
    ? resizeRawCostBytes(width, height, 3, config.width, config.height)
    : pilResizeScratchBytes(width, height, 3, config.width, config.height, config.resample);
  return resize + modelInput;
}

async function finish(source: DecodedImage, config: PreprocessorConfig, options: PreprocessOptions, file: string | undefined): Promise<PreprocessedImage> {
  let pixels = source.data;
  let width = source.width;
  let height = source.height;
  if (config.doResize && (width !== config.width || height !== config.height)) {
    pixels = options.fast
      ? await resizeRaw(pixels, width, height, 3, config.width, config.height, FAST_KERNELS[config.resample] ?? 'linear')
      : resizePil(pixels, width, height, 3, config.width, config.height, config.resample);
    width = config.width;
    height = config.height;
  }
  if (config.doCenterCrop) {
    pixels = centerCrop(pixels, width, height, config.cropWidth, config.cropHeight);
    width = config.cropWidth;
    height = config.cropHeight;
  }
  const expected = modelInputSize(config);
  if (width !== expected.width || height !== expected.height) {
    throw new BeitLensError(
      'IMAGE_UNSUPPORTED',
      `image is ${width}x${height} but do_resize is false and the model input is ${expected.width}x${expected.height}`,
      file,
    );
  }
  if (pixels === source.data) pixels = pixels.slice();
  return { pixelValues: pixelValuesFromResized(pixels, width, height, config), resized: pixels, width, height, source };
}
