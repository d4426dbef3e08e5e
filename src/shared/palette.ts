/**
 * The overlay's colours and scaling, one home for the panel (src/webview) and the CLI's PNG
 * renderer (src/core/overlay.ts), so a heatmap exported from either looks the same. Pure: no DOM,
 * no Node, no native modules.
 */

export type Rgb = readonly [number, number, number];

/**
 * Viridis, sampled at nine stops from matplotlib's table. A perceptually uniform map keeps equal
 * steps in attention looking like equal steps in colour, and its dark low end stays readable on top
 * of the photo.
 */
export const VIRIDIS_STOPS: readonly Rgb[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 82, 139],
  [44, 113, 142],
  [33, 145, 140],
  [39, 173, 129],
  [94, 201, 98],
  [170, 220, 50],
  [253, 231, 37],
];

export const COLORMAP_TOP: Rgb = VIRIDIS_STOPS[VIRIDIS_STOPS.length - 1];
export const COLORMAP_BOTTOM: Rgb = VIRIDIS_STOPS[0];

/** Entries in the lookup table: interpolating once up front keeps the per-pixel loop to an index. */
export const LUT_SIZE = 256;

function buildLut(): Uint8ClampedArray {
  const lut = new Uint8ClampedArray(LUT_SIZE * 3);
  const segments = VIRIDIS_STOPS.length - 1;
  for (let i = 0; i < LUT_SIZE; i++) {
    const x = (i / (LUT_SIZE - 1)) * segments;
    const s = Math.min(segments - 1, Math.floor(x));
    const f = x - s;
    const a = VIRIDIS_STOPS[s];
    const b = VIRIDIS_STOPS[s + 1];
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(a[c] + (b[c] - a[c]) * f);
  }
  return lut;
}

export const VIRIDIS_LUT: Uint8ClampedArray = buildLut();

/** LUT offset (not index) of t in [0, 1]; NaN and out-of-range values clamp rather than poison the image. */
export function lutOffset(t: number): number {
  const clamped = t > 0 ? (t < 1 ? t : 1) : 0;
  return Math.round(clamped * (LUT_SIZE - 1)) * 3;
}

export function colormap(t: number): [number, number, number] {
  const o = lutOffset(t);
  return [VIRIDIS_LUT[o], VIRIDIS_LUT[o + 1], VIRIDIS_LUT[o + 2]];
}

/** Min-max scaling to [0, 1]; a constant map becomes all zeros, so nothing looks "hot" without a reason. */
export function minMaxNormalize(values: ArrayLike<number>): Float32Array {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = max - min;
  const out = new Float32Array(values.length);
  if (!(range > 0)) return out;
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - min) / range;
  return out;
}

/** Distinct colours for patch classes: golden-angle hues at fixed saturation and lightness. */
export function classColor(rank: number): [number, number, number] {
  const h = (rank * 137.508) % 360;
  return hslToRgb(h, 0.7, 0.55);
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}
