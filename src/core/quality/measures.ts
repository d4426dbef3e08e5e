/**
 * Image-quality measures and flags, reproducing cleanvision's image-property issues (cleanlab/cleanvision,
 * src/cleanvision/issue_managers/image_property.py for the measures and scores,
 * image_property_issue_manager.py `get_default_params` for the thresholds,
 * utils/constants.py MAX_RESOLUTION_FOR_BLURRY_DETECTION = 64).
 *
 * Everything is computed from the decoded 8-bit RGB pixels the scan decodes anyway (image.ts), in one or two
 * passes with histograms, so memory is a few hundred KB whatever the image size (cleanvision's numpy
 * percentile holds a float64 per pixel). Where cleanvision works on PIL's native mode, so do we:
 *  - a one-band (grey) source is PIL mode "L": brightness is value / 255, the entropy histogram has one band,
 *    and it is the `grayscale` issue (cleanvision flags mode "L" only, not RGB files with equal channels);
 *  - alpha is not looked at (our decode drops it), so an RGBA file's entropy has three bands where PIL's has
 *    four, and its blur resize is not premultiplied as PIL's is;
 *  - a palette file is measured on its colours (cleanvision's numpy path would read the palette indices).
 */
import { PilResample, resizePil } from '../pilResize';
import type { QualityFlag } from './flags';

export { QUALITY_FLAGS, flagBits, flagsFromBits, type QualityFlag } from './flags';

/** cleanvision's default parameters (ImagePropertyIssueManager.get_default_params). */
export const QUALITY_THRESHOLDS = {
  dark: 0.32,
  light: 0.05,
  oddAspectRatio: 0.35,
  lowInformation: { threshold: 0.3, normalizingFactor: 0.1 },
  blurry: { threshold: 0.29, normalizingFactor: 0.01, colorThreshold: 0.18 },
  oddSize: { iqrFactor: 3.0 },
} as const;

/**
 * Names the measure definitions in stored records: bumped when a measure changes, so stored values from an
 * older definition are measured again instead of served.
 */
export const QUALITY_REVISION = 'cv1';

/** constants.py MAX_RESOLUTION_FOR_BLURRY_DETECTION: blurriness is measured on a copy no larger than this. */
export const BLUR_MAX_RESOLUTION = 64;

/** The raw measures (cleanvision's score columns), stored per content hash. */
export interface QualityMeasures {
  /** brightness_perc_99: the 99th percentile of per-pixel brightness, 0..1 (dark below 0.32). */
  brightnessP99: number;
  /** brightness_perc_5 (light when 1 - this is below 0.05). */
  brightnessP5: number;
  /** PIL Image.entropy() in bits over the concatenated per-band histograms (low information below 3). */
  entropy: number;
  /** sqrt of the variance of FIND_EDGES on the <= 64 px grey copy. */
  blurriness: number;
  /** blurriness_grayscale_std: standard deviation of that grey copy's 256-bin histogram. */
  grayscaleStd: number;
  /** min(w/h, h/w). */
  aspectRatio: number;
  /** sqrt(w) * sqrt(h), what odd_size compares across the dataset. */
  size: number;
  /** The source has one band (PIL mode "L"). */
  grayscale: boolean;
}

/**
 * cleanvision's calculate_brightness, scaled by 1000 into an exact integer (0..65_025_000): 241 r^2 + 691 g^2 +
 * 68 b^2, from three lookup tables so the per-pixel work is three loads and two adds.
 */
const KEY_R = Int32Array.from({ length: 256 }, (_, v) => 241 * v * v);
const KEY_G = Int32Array.from({ length: 256 }, (_, v) => 691 * v * v);
const KEY_B = Int32Array.from({ length: 256 }, (_, v) => 68 * v * v);
const KEY_SHIFT = 10;
const KEY_MASK = (1 << KEY_SHIFT) - 1;
const COARSE_BINS = ((KEY_R[255] + KEY_G[255] + KEY_B[255]) >>> KEY_SHIFT) + 1;

/**
 * One pass over the pixels: the coarse brightness histogram (key >> 10) and the per-band value histograms
 * (one band for a grey source, as PIL's mode "L").
 */
function histograms(rgb: Uint8Array, pixels: number, grayscale: boolean): { coarse: Uint32Array; bands: Uint32Array } {
  const coarse = new Uint32Array(COARSE_BINS);
  const bands = new Uint32Array(grayscale ? 256 : 768);
  const end = pixels * 3;
  if (grayscale) {
    for (let s = 0; s < end; s += 3) {
      const v = rgb[s];
      coarse[(KEY_R[v] + KEY_G[v] + KEY_B[v]) >>> KEY_SHIFT]++;
      bands[v]++;
    }
  } else {
    for (let s = 0; s < end; s += 3) {
      const r = rgb[s];
      const g = rgb[s + 1];
      const b = rgb[s + 2];
      coarse[(KEY_R[r] + KEY_G[g] + KEY_B[b]) >>> KEY_SHIFT]++;
      bands[r]++;
      bands[256 + g]++;
      bands[512 + b]++;
    }
  }
  return { coarse, bands };
}

/**
 * numpy.percentile's default ('linear') for the given percentiles, from order statistics found with the coarse
 * histogram and, for the few bins holding the wanted ranks, a fine one (a second pass): exact, in O(pixels)
 * time and O(1) memory.
 */
function brightnessPercentiles(rgb: Uint8Array, pixels: number, coarse: Uint32Array, percentiles: readonly number[]): number[] {
  // numpy's _compute_virtual_index with alpha = beta = 1, written as numpy does so the float rounding matches.
  const wanted = percentiles.map((p) => {
    const q = p / 100;
    const index = pixels * q + (1 + q * (1 - 1 - 1)) - 1;
    const lo = Math.min(Math.max(Math.floor(index), 0), pixels - 1);
    return { lo, hi: Math.min(lo + 1, pixels - 1), gamma: index - Math.floor(index) };
  });
  const sorted = [...new Set(wanted.flatMap((w) => [w.lo, w.hi]))].sort((a, b) => a - b);
  // Coarse bin of each wanted rank, and the rank's position within that bin.
  const binOf = new Map<number, { bin: number; within: number }>();
  let seen = 0;
  let k = 0;
  for (let bin = 0; bin < COARSE_BINS && k < sorted.length; bin++) {
    const next = seen + coarse[bin];
    while (k < sorted.length && sorted[k] < next) binOf.set(sorted[k], { bin, within: sorted[k++] - seen });
    seen = next;
  }
  const bins = [...new Set([...binOf.values()].map((v) => v.bin))];
  const fine = bins.map(() => new Uint32Array(1 << KEY_SHIFT));
  if (bins.length === 1) {
    // The usual case for a flat or narrow image: one bin, no lookup per pixel.
    const [only] = bins;
    const counts = fine[0];
    for (let s = 0, end = pixels * 3; s < end; s += 3) {
      const key = KEY_R[rgb[s]] + KEY_G[rgb[s + 1]] + KEY_B[rgb[s + 2]];
      if (key >>> KEY_SHIFT === only) counts[key & KEY_MASK]++;
    }
  } else {
    const slot = new Int8Array(COARSE_BINS).fill(-1);
    bins.forEach((bin, i) => (slot[bin] = i));
    for (let s = 0, end = pixels * 3; s < end; s += 3) {
      const key = KEY_R[rgb[s]] + KEY_G[rgb[s + 1]] + KEY_B[rgb[s + 2]];
      const i = slot[key >>> KEY_SHIFT];
      if (i >= 0) fine[i][key & KEY_MASK]++;
    }
  }
  const valueAt = (rank: number): number => {
    const { bin, within } = binOf.get(rank)!;
    const counts = fine[bins.indexOf(bin)];
    let acc = 0;
    for (let j = 0; j < counts.length; j++) {
      acc += counts[j];
      if (within < acc) return Math.sqrt(((bin << KEY_SHIFT) + j) / 1000) / 255;
    }
    throw new Error('unreachable: rank beyond its bin');
  };
  // numpy's _lerp, including its switch to interpolating from the upper value when gamma >= 0.5.
  return wanted.map(({ lo, hi, gamma }) => {
    const a = valueAt(lo);
    const b = valueAt(hi);
    const diff = b - a;
    return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
  });
}

/** PIL's `Image.entropy()`: -sum p log2 p over all bands' histogram bins, p = count / (bands * pixels). */
function histogramEntropy(histogram: Uint32Array, total: number): number {
  let entropy = 0;
  for (let i = 0; i < histogram.length; i++) {
    if (histogram[i] === 0) continue;
    const p = histogram[i] / total;
    entropy += p * Math.log2(p);
  }
  return -entropy;
}

/** Python's float floor division (`w // ratio`), which rounds the quotient of the exact remainder-free part. */
function pythonFloorDiv(a: number, b: number): number {
  const mod = a % b;
  const div = (a - mod) / b;
  if (div === 0) return 0;
  let floor = Math.floor(div);
  if (div - floor > 0.5) floor += 1;
  return floor;
}

/** The size cleanvision's BlurrinessProperty resizes to: longer side down to 64 px, never up. */
export function blurResizeTarget(width: number, height: number): { width: number; height: number } {
  const ratio = Math.max(width, height) / BLUR_MAX_RESOLUTION;
  if (ratio <= 1) return { width, height };
  return { width: Math.max(pythonFloorDiv(width, ratio), 1), height: Math.max(pythonFloorDiv(height, ratio), 1) };
}

/** PIL convert('L') from RGB (Convert.c L24: ITU-R 601-2 luma in 16-bit fixed point, rounded). */
function luma(rgb: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels);
  for (let p = 0, s = 0; p < pixels; p++, s += 3) out[p] = (rgb[s] * 19595 + rgb[s + 1] * 38470 + rgb[s + 2] * 7471 + 0x8000) >>> 16;
  return out;
}

/**
 * ImageFilter.FIND_EDGES (3x3 kernel, 8 in the middle, -1 around) as Pillow's Filter.c applies it: the border
 * rows and columns are copied unchanged, the rest clipped to 0..255. Returns the edge image's histogram.
 */
function edgeHistogram(gray: Uint8Array, width: number, height: number): Uint32Array {
  const histogram = new Uint32Array(256);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (y === 0 || x === 0 || y === height - 1 || x === width - 1) {
        histogram[gray[i]]++;
        continue;
      }
      const around =
        gray[i - width - 1] + gray[i - width] + gray[i - width + 1] + gray[i - 1] + gray[i + 1] + gray[i + width - 1] + gray[i + width] + gray[i + width + 1];
      const v = 8 * gray[i] - around;
      histogram[v <= 0 ? 0 : v >= 255 ? 255 : v]++;
    }
  }
  return histogram;
}

/** ImageStat's population variance from a histogram. */
function histogramVariance(histogram: Uint32Array): number {
  let n = 0;
  let sum = 0;
  let sum2 = 0;
  for (let v = 0; v < 256; v++) {
    n += histogram[v];
    sum += v * histogram[v];
    sum2 += v * v * histogram[v];
  }
  return n === 0 ? 0 : (sum2 - (sum * sum) / n) / n;
}

/** numpy.std of a histogram's bin counts (population). */
function countsStd(histogram: Uint32Array): number {
  let mean = 0;
  for (const c of histogram) mean += c;
  mean /= histogram.length;
  let acc = 0;
  for (const c of histogram) acc += (c - mean) * (c - mean);
  return Math.sqrt(acc / histogram.length);
}

/** Bytes {@link measureQuality} allocates beyond the image, at most: for the decode budget. */
export function qualityScratchBytes(width: number, height: number): number {
  const target = blurResizeTarget(width, height);
  // Coarse brightness histogram and its slot table, fine bins, the blur resize's horizontal pass, grey copy.
  return COARSE_BINS * 5 + 4 * 4096 + height * target.width * 3 + target.width * target.height * 4;
}

/**
 * Measures one decoded image. `rgb` is packed 8-bit RGB (grey sources replicated, as image.ts decodes them);
 * `grayscale` says the source had one band.
 */
export function measureQuality(rgb: Uint8Array, width: number, height: number, grayscale: boolean): QualityMeasures {
  const pixels = width * height;
  if (!Number.isInteger(pixels) || pixels < 1 || rgb.length !== pixels * 3) throw new RangeError(`expected ${width}x${height}x3 bytes, got ${rgb.length}`);
  const { coarse, bands } = histograms(rgb, pixels, grayscale);
  const [brightnessP5, brightnessP99] = brightnessPercentiles(rgb, pixels, coarse, [5, 99]);
  const entropy = histogramEntropy(bands, (grayscale ? 1 : 3) * pixels);

  // BlurrinessProperty.calculate: resize (PIL's default, bicubic) to <= 64 px, convert('L'), FIND_EDGES.
  const target = blurResizeTarget(width, height);
  const small = target.width === width && target.height === height ? rgb : resizePil(rgb, width, height, 3, target.width, target.height, PilResample.BICUBIC);
  const gray = luma(small, target.width * target.height);
  const grayHistogram = new Uint32Array(256);
  for (const v of gray) grayHistogram[v]++;
  const blurriness = Math.sqrt(histogramVariance(edgeHistogram(gray, target.width, target.height)));

  return {
    brightnessP99,
    brightnessP5,
    entropy,
    blurriness,
    grayscaleStd: countsStd(grayHistogram),
    aspectRatio: Math.min(width / height, height / width),
    size: Math.sqrt(width) * Math.sqrt(height),
    grayscale,
  };
}

/** cleanvision's issue scores (0..1, lower is worse), for the flags that need only the image itself. */
export function qualityScores(m: QualityMeasures): Record<Exclude<QualityFlag, 'odd_size' | 'grayscale'>, number> {
  const { blurry, lowInformation } = QUALITY_THRESHOLDS;
  const blur = 1 - Math.exp(-m.blurriness * blurry.normalizingFactor);
  let std = 1 - Math.exp(-m.grayscaleStd * blurry.normalizingFactor);
  if (std <= blurry.colorThreshold) std = 0;
  return {
    dark: m.brightnessP99,
    light: 1 - m.brightnessP5,
    odd_aspect_ratio: m.aspectRatio,
    low_information: Math.min(lowInformation.normalizingFactor * m.entropy, 1),
    blurry: Math.min(blur + std, 1),
  };
}

/** The flags one image raises on its own (odd_size needs the dataset: {@link oddSizeFlags}). */
export function imageFlags(m: QualityMeasures): QualityFlag[] {
  const s = qualityScores(m);
  const t = QUALITY_THRESHOLDS;
  const flags: QualityFlag[] = [];
  if (s.dark < t.dark) flags.push('dark');
  if (s.light < t.light) flags.push('light');
  if (s.odd_aspect_ratio < t.oddAspectRatio) flags.push('odd_aspect_ratio');
  if (s.low_information < t.lowInformation.threshold) flags.push('low_information');
  if (s.blurry < t.blurry.threshold) flags.push('blurry');
  if (m.grayscale) flags.push('grayscale');
  return flags;
}

/** numpy.percentile (linear) of sorted values. */
function sortedPercentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  const q = p / 100;
  const index = n * q + (1 + q * (1 - 1 - 1)) - 1;
  const lo = Math.min(Math.max(Math.floor(index), 0), n - 1);
  const hi = Math.min(lo + 1, n - 1);
  const gamma = index - Math.floor(index);
  const diff = sorted[hi] - sorted[lo];
  return gamma >= 0.5 ? sorted[hi] - diff * (1 - gamma) : sorted[lo] + diff * gamma;
}

/**
 * SizeProperty: which of the dataset's images are odd_size. Sizes (sqrt area) further than iqr_factor IQRs
 * outside the quartiles score below 0.5; a dataset whose quartiles coincide normalises by the middle and flags
 * everything off it (threshold 1). NaN sizes (error rows) are ignored and never flagged.
 */
export function oddSizeFlags(sizes: ArrayLike<number>, iqrFactor: number = QUALITY_THRESHOLDS.oddSize.iqrFactor): Uint8Array {
  const out = new Uint8Array(sizes.length);
  const valid = Float64Array.from(Array.prototype.filter.call(sizes, (v: number) => Number.isFinite(v)) as number[]).sort();
  if (valid.length === 0) return out;
  const q1 = sortedPercentile(valid, 25);
  const q3 = sortedPercentile(valid, 75);
  const iqr = q3 - q1;
  const min = q1 - iqrFactor * iqr;
  const max = q3 + iqrFactor * iqr;
  const mid = (min + max) / 2;
  const gap = max - min;
  const norm = gap > 0 ? gap : mid;
  const threshold = gap > 0 ? 0.5 : 1.0;
  for (let i = 0; i < sizes.length; i++) {
    const v = sizes[i];
    if (!Number.isFinite(v)) continue;
    const score = 1 - Math.min(Math.max(Math.abs(v - mid) / norm, 0), 1);
    if (score < threshold) out[i] = 1;
  }
  return out;
}

/** A stored or received measures object, checked field by field (undefined when it is not one). */
export function parseQualityMeasures(value: unknown): QualityMeasures | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const numbers = ['brightnessP99', 'brightnessP5', 'entropy', 'blurriness', 'grayscaleStd', 'aspectRatio', 'size'] as const;
  for (const k of numbers) if (typeof v[k] !== 'number' || !Number.isFinite(v[k])) return undefined;
  if (typeof v.grayscale !== 'boolean') return undefined;
  const out = {} as QualityMeasures;
  for (const k of numbers) out[k] = v[k] as number;
  out.grayscale = v.grayscale;
  return out;
}
