import { lutOffset, VIRIDIS_LUT } from '../shared/palette';
export { minMaxNormalize } from '../shared/palette';
import { patchRect } from './geometry';

export type Rgb = readonly [number, number, number];

/** What the overlay canvas shows; the panel builds one of these from its current data. */
export type OverlayLayer =
  | { kind: 'heat'; grid: number; values01: ArrayLike<number> }
  | { kind: 'classes'; grid: number; argmax: ArrayLike<number>; colorOf: (classIndex: number) => Rgb | undefined }
  | { kind: 'empty' };

export interface Highlight {
  patch: number;
  grid: number;
  color: string;
}

/** For one axis: the two grid cells each pixel blends and the weight of the second. */
interface AxisSamples {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float32Array;
}

/**
 * Cell values sit at cell centres (as in src/core/overlay.ts), so a patch's centre pixel shows its
 * own value and the map does not drift by half a patch.
 */
function axisSamples(pixels: number, grid: number): AxisSamples {
  const lo = new Int32Array(pixels);
  const hi = new Int32Array(pixels);
  const frac = new Float32Array(pixels);
  for (let p = 0; p < pixels; p++) {
    const g = Math.min(grid - 1, Math.max(0, ((p + 0.5) / pixels) * grid - 0.5));
    const g0 = Math.floor(g);
    lo[p] = g0;
    hi[p] = Math.min(grid - 1, g0 + 1);
    frac[p] = g - g0;
  }
  return { lo, hi, frac };
}

/** Bilinearly upsampled grid map through the colormap, every pixel at the same alpha. */
export function paintHeatmap(pixels: Uint8ClampedArray, width: number, height: number, values01: ArrayLike<number>, grid: number, alpha: number): void {
  const xs = axisSamples(width, grid);
  const ys = axisSamples(height, grid);
  for (let y = 0; y < height; y++) {
    const top = ys.lo[y] * grid;
    const bottom = ys.hi[y] * grid;
    const fy = ys.frac[y];
    let o = y * width * 4;
    for (let x = 0; x < width; x++) {
      const x0 = xs.lo[x];
      const x1 = xs.hi[x];
      const fx = xs.frac[x];
      const upper = values01[top + x0] * (1 - fx) + values01[top + x1] * fx;
      const lower = values01[bottom + x0] * (1 - fx) + values01[bottom + x1] * fx;
      const c = lutOffset(upper * (1 - fy) + lower * fy);
      pixels[o] = VIRIDIS_LUT[c];
      pixels[o + 1] = VIRIDIS_LUT[c + 1];
      pixels[o + 2] = VIRIDIS_LUT[c + 2];
      pixels[o + 3] = alpha;
      o += 4;
    }
  }
}

/** Flat patches in their class colour: categories must not blend into colours of other classes. */
export function paintPatchClasses(pixels: Uint8ClampedArray, width: number, height: number, argmax: ArrayLike<number>, grid: number, colorOf: (classIndex: number) => Rgb | undefined, alpha: number): void {
  pixels.fill(0);
  for (let p = 0; p < grid * grid; p++) {
    const color = colorOf(argmax[p]);
    if (!color) continue;
    const r = patchRect(p, grid, width, height);
    for (let y = r.y; y < r.y + r.height; y++) {
      let o = (y * width + r.x) * 4;
      for (let x = 0; x < r.width; x++) {
        pixels[o] = color[0];
        pixels[o + 1] = color[1];
        pixels[o + 2] = color[2];
        pixels[o + 3] = alpha;
        o += 4;
      }
    }
  }
}

/**
 * Paints overlays onto the canvas. Opacity goes into each pixel's alpha rather than CSS opacity,
 * so what the canvas holds is exactly what an export composites over the image. The opaque
 * colours of the last layer are kept: dragging the opacity slider over a large photo then only
 * rewrites alpha instead of resampling the map for every step.
 */
export class OverlayPainter {
  private cache?: { source: ArrayLike<number>; kind: string; width: number; height: number; opaque: Uint8ClampedArray };

  constructor(private readonly canvas: HTMLCanvasElement) {}

  draw(layer: OverlayLayer, opacity: number, highlight?: Highlight): void {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    if (layer.kind !== 'empty') {
      const opaque = this.opaquePixels(layer, width, height);
      const image = ctx.createImageData(width, height);
      const out = image.data;
      out.set(opaque);
      const alpha = Math.round(Math.min(1, Math.max(0, opacity)) * 255);
      // Unpainted pixels (alpha 0) stay transparent whatever the opacity.
      for (let i = 3; i < out.length; i += 4) if (out[i] !== 0) out[i] = alpha;
      ctx.putImageData(image, 0, 0);
    }
    if (highlight) strokePatch(ctx, highlight, width, height);
  }

  private opaquePixels(layer: Exclude<OverlayLayer, { kind: 'empty' }>, width: number, height: number): Uint8ClampedArray {
    const source = layer.kind === 'heat' ? layer.values01 : layer.argmax;
    const c = this.cache;
    if (c && c.source === source && c.kind === layer.kind && c.width === width && c.height === height) return c.opaque;
    const opaque = new Uint8ClampedArray(width * height * 4);
    if (layer.kind === 'heat') paintHeatmap(opaque, width, height, layer.values01, layer.grid, 255);
    else paintPatchClasses(opaque, width, height, layer.argmax, layer.grid, layer.colorOf, 255);
    this.cache = { source, kind: layer.kind, width, height, opaque };
    return opaque;
  }
}

/** An outline inside the patch's edge: it marks the patch without covering its centre pixel. */
function strokePatch(ctx: CanvasRenderingContext2D, highlight: Highlight, width: number, height: number): void {
  const r = patchRect(highlight.patch, highlight.grid, width, height);
  const line = Math.max(2, Math.round(Math.min(r.width, r.height) / 12));
  ctx.save();
  ctx.strokeStyle = highlight.color;
  ctx.lineWidth = line;
  ctx.strokeRect(r.x + line / 2, r.y + line / 2, r.width - line, r.height - line);
  ctx.restore();
}
