/**
 * Pure-JS overlay rendering shared by `beit-lens explain --out` and tests; the webview draws its
 * own on a canvas. Images are packed RGB, maps are grid*grid row-major.
 */

/** A perceptually ordered palette (viridis-like, 5 stops) so low values stay visible under the image. */
const HEAT_STOPS: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export function heatColor(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = HEAT_STOPS[i];
  const b = HEAT_STOPS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
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

/** Min-max scales a map to [0, 1]; a constant map becomes all zeros. */
export function normalizeMap(values: Float32Array): Float32Array {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const range = max - min;
  return values.map((v) => (range > 0 ? (v - min) / range : 0));
}

/** Bilinear sample of a grid map at image pixel (x, y), grid cells centred on their patches. */
function sampleSmooth(map: Float32Array, grid: number, x: number, y: number, width: number, height: number): number {
  const gx = Math.min(grid - 1, Math.max(0, ((x + 0.5) / width) * grid - 0.5));
  const gy = Math.min(grid - 1, Math.max(0, ((y + 0.5) / height) * grid - 0.5));
  const x0 = Math.floor(gx);
  const y0 = Math.floor(gy);
  const x1 = Math.min(grid - 1, x0 + 1);
  const y1 = Math.min(grid - 1, y0 + 1);
  const fx = gx - x0;
  const fy = gy - y0;
  const top = map[y0 * grid + x0] * (1 - fx) + map[y0 * grid + x1] * fx;
  const bottom = map[y1 * grid + x0] * (1 - fx) + map[y1 * grid + x1] * fx;
  return top * (1 - fy) + bottom * fy;
}

export function blendHeatmap(rgb: Uint8Array, width: number, height: number, map01: Float32Array, grid: number, opacity = 0.5): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = heatColor(sampleSmooth(map01, grid, x, y, width, height));
      const o = (y * width + x) * 3;
      out[o] = rgb[o] * (1 - opacity) + r * opacity;
      out[o + 1] = rgb[o + 1] * (1 - opacity) + g * opacity;
      out[o + 2] = rgb[o + 2] * (1 - opacity) + b * opacity;
    }
  }
  return out;
}

/** Colours each patch by its argmax class; `colorOf` maps a class index to its legend colour. */
export function blendPatchClasses(rgb: Uint8Array, width: number, height: number, argmax: Int32Array, grid: number, colorOf: (cls: number) => [number, number, number], opacity = 0.5): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < height; y++) {
    const gy = Math.min(grid - 1, Math.floor((y / height) * grid));
    for (let x = 0; x < width; x++) {
      const gx = Math.min(grid - 1, Math.floor((x / width) * grid));
      const [r, g, b] = colorOf(argmax[gy * grid + gx]);
      const o = (y * width + x) * 3;
      out[o] = rgb[o] * (1 - opacity) + r * opacity;
      out[o + 1] = rgb[o + 1] * (1 - opacity) + g * opacity;
      out[o + 2] = rgb[o + 2] * (1 - opacity) + b * opacity;
    }
  }
  return out;
}

export interface PatchLegendEntry {
  index: number;
  label: string;
  patches: number;
  share: number;
  color: [number, number, number];
}

/** Distinct patch classes, most patches first, with the colour each is drawn in. */
export function patchLegend(argmax: Int32Array, labels: readonly string[]): PatchLegendEntry[] {
  const counts = new Map<number, number>();
  for (const c of argmax) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .map(([index, patches], rank) => ({ index, label: labels[index] ?? `class ${index}`, patches, share: patches / argmax.length, color: classColor(rank) }));
}
