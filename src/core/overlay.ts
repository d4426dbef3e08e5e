/**
 * Pure-JS overlay rendering for `beit-lens explain --out` and tests; the webview draws its own on a
 * canvas, from the same palette and normaliser (src/shared/palette.ts) and with the same legend
 * strip (src/shared/legendStrip.ts). Images are packed RGB, maps are grid*grid row-major.
 */
import { paintLegendStrip, type LegendStripSpec } from '../shared/legendStrip';
import { classColor, colormap, minMaxNormalize } from '../shared/palette';

/** The heatmap colour of t in [0, 1]: the panel's viridis table (src/shared/palette.ts), so exports look alike. */
export const heatColor = colormap;

export { classColor };

/** Min-max scales a map to [0, 1]; a constant map becomes all zeros (the panel's normaliser). */
export function normalizeMap(values: Float32Array): Float32Array {
  return minMaxNormalize(values);
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

/** The image with the legend strip appended below it, as packed RGB: what `explain --out` writes. */
export function withLegendStrip(rgb: Uint8Array, width: number, height: number, spec: LegendStripSpec): { rgb: Uint8Array; height: number } {
  const { layout, rgba } = paintLegendStrip(width, spec);
  const out = new Uint8Array(width * (height + layout.height) * 3);
  out.set(rgb.subarray(0, width * height * 3));
  let o = width * height * 3;
  for (let i = 0; i < rgba.length; i += 4) {
    out[o++] = rgba[i];
    out[o++] = rgba[i + 1];
    out[o++] = rgba[i + 2];
  }
  return { rgb: out, height: height + layout.height };
}
