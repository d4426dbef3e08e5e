/**
 * Viridis, sampled at nine stops from matplotlib's table. A perceptually uniform map keeps equal
 * steps in attention looking like equal steps in colour, and its dark low end stays readable on top
 * of the photo; the stops include the CLI's five (src/core/overlay.ts), so exports look alike.
 */
const VIRIDIS_STOPS: readonly (readonly [number, number, number])[] = [
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

export const COLORMAP_TOP: readonly [number, number, number] = VIRIDIS_STOPS[VIRIDIS_STOPS.length - 1];
export const COLORMAP_BOTTOM: readonly [number, number, number] = VIRIDIS_STOPS[0];

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

export function cssColor(rgb: readonly [number, number, number]): string {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/** A CSS gradient of the map for the colour-scale key next to the controls. */
export function colormapGradient(): string {
  return `linear-gradient(to right, ${VIRIDIS_STOPS.map((s) => cssColor(s)).join(', ')})`;
}
