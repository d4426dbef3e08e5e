/**
 * A bit-exact port of Pillow's convolution resampler (`ImagingResample` in Pillow's Resample.c, 8 bits per
 * channel), because the HF image processors resize with PIL and the BEiT checkpoints were evaluated that way:
 * any other resampler moves the model input by whole uint8 levels and the logits with it.
 *
 * Pillow's scheme, reproduced step for step:
 *  - per axis, each output sample gets a window [min, min + count) of input samples and float64 weights from the
 *    filter, normalised to sum 1 and then rounded to fixed point with PRECISION_BITS fractional bits;
 *  - the horizontal pass runs first and writes uint8 (rounded and clipped), which the vertical pass then reads;
 *  - a pass whose axis keeps its size is skipped entirely (not an identity convolution), as Pillow does.
 */

/** Pillow's resampling filter numbers (PIL.Image.Resampling), as stored in `preprocessor_config.json`. */
export const PilResample = {
  NEAREST: 0,
  LANCZOS: 1,
  BILINEAR: 2,
  BICUBIC: 3,
  BOX: 4,
  HAMMING: 5,
} as const;

interface PilFilter {
  readonly name: string;
  readonly support: number;
  weight(x: number): number;
}

const BICUBIC_A = -0.5;
// Pillow writes these as C float literals (0.54f, 0.46f); the float32 values change the last bits of the weights.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: ReadonlyMap<number, PilFilter> = new Map<number, PilFilter>([
  [
    PilResample.BOX,
    {
      name: 'box',
      support: 0.5,
      weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0),
    },
  ],
  [
    PilResample.BILINEAR,
    {
      name: 'bilinear',
      support: 1,
      weight: (x) => {
        const ax = Math.abs(x);
        return ax < 1 ? 1 - ax : 0;
      },
    },
  ],
  [
    PilResample.HAMMING,
    {
      name: 'hamming',
      support: 1,
      weight: (x) => {
        const ax = Math.abs(x);
        if (ax === 0) return 1;
        if (ax >= 1) return 0;
        const px = ax * Math.PI;
        return (Math.sin(px) / px) * (HAMMING_A + HAMMING_B * Math.cos(px));
      },
    },
  ],
  [
    PilResample.BICUBIC,
    {
      name: 'bicubic',
      support: 2,
      weight: (x) => {
        const ax = Math.abs(x);
        if (ax < 1) return ((BICUBIC_A + 2) * ax - (BICUBIC_A + 3)) * ax * ax + 1;
        if (ax < 2) return (((ax - 5) * ax + 8) * ax - 4) * BICUBIC_A;
        return 0;
      },
    },
  ],
  [
    PilResample.LANCZOS,
    {
      name: 'lanczos',
      support: 3,
      weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0),
    },
  ],
]);

/** Resample filters this module reproduces exactly (everything Pillow resamples by convolution; not NEAREST). */
export function isSupportedPilResample(resample: number): boolean {
  return FILTERS.has(resample);
}

/** 32 bits minus 8 for the sample and 2 of headroom for negative lobes and rounding, as in Pillow. */
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const CLIP_HIGH = ONE << 8;

/**
 * Per output sample: the first input index and how many inputs it reads, plus `taps` fixed-point weights
 * (unused tail zero). Computed once per axis so the pixel loops only multiply and add.
 */
interface AxisCoefficients {
  readonly taps: number;
  readonly start: Int32Array;
  readonly count: Int32Array;
  readonly weights: Int32Array;
}

function computeAxisCoefficients(inSize: number, outSize: number, filter: PilFilter): AxisCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  // Pillow multiplies by the reciprocal rather than dividing by filterScale; the last bit of the weights
  // (and so, occasionally, a rounded output level) depends on that.
  const invFilterScale = 1 / filterScale;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const raw = new Float64Array(taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    // C's (int) cast truncates toward zero; negatives are clamped to 0 right after, so trunc is equivalent.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const n = hi - lo;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const w = filter.weight((k + lo - center + 0.5) * invFilterScale);
      raw[k] = w;
      total += w;
    }
    const base = o * taps;
    for (let k = 0; k < n; k++) {
      const w = total !== 0 ? raw[k] / total : raw[k];
      // Round half away from zero, as Pillow's `(int)(w * ONE ± 0.5)`.
      weights[base + k] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[o] = lo;
    count[o] = n;
  }
  return { taps, start, count, weights };
}

function clip8(acc: number): number {
  if (acc >= CLIP_HIGH) return 255;
  if (acc <= 0) return 0;
  return acc >> PRECISION_BITS;
}

/** Horizontal pass over source rows [rowStart, rowStart + rows), written to a `rows`-high uint8 image. */
function resampleHorizontal(
  src: Uint8Array,
  srcW: number,
  rowStart: number,
  rows: number,
  channels: number,
  dstW: number,
  coeffs: AxisCoefficients,
): Uint8Array {
  if (channels === 3) return resampleHorizontalRgb(src, srcW, rowStart, rows, dstW, coeffs);
  const out = new Uint8Array(dstW * rows * channels);
  const { taps, start, count, weights } = coeffs;
  const srcStride = srcW * channels;
  for (let y = 0; y < rows; y++) {
    const rowBase = (y + rowStart) * srcStride;
    let o = y * dstW * channels;
    for (let x = 0; x < dstW; x++) {
      const kBase = x * taps;
      const n = count[x];
      const pBase = rowBase + start[x] * channels;
      for (let c = 0; c < channels; c++) {
        let acc = HALF;
        let p = pBase + c;
        for (let k = 0; k < n; k++, p += channels) acc += src[p] * weights[kBase + k];
        out[o++] = clip8(acc);
      }
    }
  }
  return out;
}

/** The RGB case of {@link resampleHorizontal} (every model input), one pass over each pixel's three bytes. */
function resampleHorizontalRgb(
  src: Uint8Array,
  srcW: number,
  rowStart: number,
  rows: number,
  dstW: number,
  coeffs: AxisCoefficients,
): Uint8Array {
  const out = new Uint8Array(dstW * rows * 3);
  const { taps, start, count, weights } = coeffs;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const rowBase = (y + rowStart) * srcW * 3;
    for (let x = 0; x < dstW; x++) {
      const kBase = x * taps;
      const n = count[x];
      let p = rowBase + start[x] * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let k = 0; k < n; k++, p += 3) {
        const w = weights[kBase + k];
        r += src[p] * w;
        g += src[p + 1] * w;
        b += src[p + 2] * w;
      }
      out[o++] = clip8(r);
      out[o++] = clip8(g);
      out[o++] = clip8(b);
    }
  }
  return out;
}

/**
 * Vertical pass; `rowOffset` maps the coefficient row indices onto the rows present in `src`. Accumulates whole
 * rows at a time so memory is read sequentially; Int32 accumulators are exact because Pillow's sums fit an int.
 */
function resampleVertical(
  src: Uint8Array,
  width: number,
  rowOffset: number,
  channels: number,
  dstH: number,
  coeffs: AxisCoefficients,
): Uint8Array {
  const rowLen = width * channels;
  const out = new Uint8Array(rowLen * dstH);
  const acc = new Int32Array(rowLen);
  const { taps, start, count, weights } = coeffs;
  for (let y = 0; y < dstH; y++) {
    acc.fill(HALF);
    const kBase = y * taps;
    const n = count[y];
    for (let k = 0; k < n; k++) {
      const w = weights[kBase + k];
      const rowBase = (start[y] - rowOffset + k) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += src[rowBase + i] * w;
    }
    const outRow = y * rowLen;
    for (let i = 0; i < rowLen; i++) out[outRow + i] = clip8(acc[i]);
  }
  return out;
}

/**
 * `Image.resize((dstW, dstH), resample)` of Pillow 9.x on an 8-bit image with interleaved channels, bit for bit.
 * Defaults to BILINEAR (resample 2), the BEiT checkpoints' setting. The source must not be premultiplied: like
 * PIL's "RGB" mode, channels are resampled independently.
 */
export function resizeBilinearPil(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  channels: number,
  dstW: number,
  dstH: number,
): Uint8Array {
  return resizePil(src, srcW, srcH, channels, dstW, dstH, PilResample.BILINEAR);
}

function axisScratchBytes(inSize: number, outSize: number, filter: PilFilter): number {
  const taps = Math.ceil(filter.support * Math.max(inSize / outSize, 1)) * 2 + 1;
  // start + count + weights (Int32) and the float64 row of raw weights.
  return outSize * (2 + taps) * 4 + taps * 8;
}

/**
 * Bytes {@link resizePil} allocates besides its source: per resized axis the coefficient tables, then the
 * horizontal pass's image (dstW x the source rows the vertical pass reads, at most srcH) and the output with the
 * vertical pass's accumulator row. An upper bound, computed without allocating anything, so a decode budget can
 * be charged before the source is even decoded: for 1 x 100,000,000 -> 224 x 224 it is 67 GB.
 */
export function pilResizeScratchBytes(srcW: number, srcH: number, channels: number, dstW: number, dstH: number, resample: number): number {
  const filter = FILTERS.get(resample);
  if (!filter) throw new RangeError(`Pillow resample ${resample} is not a supported convolution filter`);
  const needHorizontal = dstW !== srcW;
  const needVertical = dstH !== srcH;
  if (!needHorizontal && !needVertical) return srcW * srcH * channels;
  let bytes = 0;
  if (needHorizontal) bytes += axisScratchBytes(srcW, dstW, filter) + dstW * srcH * channels;
  if (needVertical) bytes += axisScratchBytes(srcH, dstH, filter) + dstW * dstH * channels + dstW * channels * 4;
  return bytes;
}

/** Same as {@link resizeBilinearPil} with any of Pillow's convolution filters (see {@link isSupportedPilResample}). */
export function resizePil(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  channels: number,
  dstW: number,
  dstH: number,
  resample: number,
): Uint8Array {
  const filter = FILTERS.get(resample);
  if (!filter) throw new RangeError(`Pillow resample ${resample} is not a supported convolution filter`);
  for (const [name, v] of [['srcW', srcW], ['srcH', srcH], ['dstW', dstW], ['dstH', dstH], ['channels', channels]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (src.length !== srcW * srcH * channels) {
    throw new RangeError(`source has ${src.length} bytes, expected ${srcW}x${srcH}x${channels}`);
  }
  const needHorizontal = dstW !== srcW;
  const needVertical = dstH !== srcH;
  if (!needHorizontal && !needVertical) return src.slice();

  const vertical = needVertical ? computeAxisCoefficients(srcH, dstH, filter) : undefined;
  let image = src;
  let rowOffset = 0;
  if (needHorizontal) {
    const horizontal = computeAxisCoefficients(srcW, dstW, filter);
    // Only the source rows the vertical pass will read need the horizontal pass (Pillow does the same).
    let firstRow = 0;
    let rows = srcH;
    if (vertical) {
      firstRow = vertical.start[0];
      rows = vertical.start[dstH - 1] + vertical.count[dstH - 1] - firstRow;
    }
    image = resampleHorizontal(src, srcW, firstRow, rows, channels, dstW, horizontal);
    rowOffset = firstRow;
  }
  if (vertical) image = resampleVertical(image, dstW, rowOffset, channels, dstH, vertical);
  return image;
}
