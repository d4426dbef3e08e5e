/**
 * Patch geometry. BEiT resizes the whole image to a square without cropping, so the grid stretches
 * uniformly over the image: patch (row, col) covers the same fraction of any rendering of it,
 * whether the canvas backing store, the scaled element on screen or the exported PNG.
 */

export interface PatchCell {
  row: number;
  col: number;
  index: number;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The patch under a point at (x, y) on a surface of width x height, in any unit (client pixels,
 * canvas pixels); undefined outside it. One multiplication and one division keep exact ties on a
 * patch edge exact, so a pixel centre lands in the same patch that `patchRect` paints it in.
 */
export function patchAt(x: number, y: number, width: number, height: number, grid: number): PatchCell | undefined {
  if (!(x >= 0 && x < width && y >= 0 && y < height)) return undefined;
  const col = Math.min(grid - 1, Math.floor((x * grid) / width));
  const row = Math.min(grid - 1, Math.floor((y * grid) / height));
  return { row, col, index: row * grid + col };
}

export function cellOf(index: number, grid: number): PatchCell {
  return { row: Math.floor(index / grid), col: index % grid, index };
}

/**
 * The patch's rectangle in pixels of a surface of the given size: the pixels whose centres fall
 * in the patch (see `patchAt`). Neighbours share their edges, so patches tile without gaps or
 * overlaps even when a patch is narrower than a pixel.
 */
export function patchRect(index: number, grid: number, width: number, height: number): Rect {
  const { row, col } = cellOf(index, grid);
  // First pixel x with (x + 0.5) * grid / size >= edge, in integers so no rounding moves an edge.
  const start = (edge: number, size: number): number => Math.max(0, Math.ceil((2 * edge * size - grid) / (2 * grid)));
  const x0 = start(col, width);
  const x1 = start(col + 1, width);
  const y0 = start(row, height);
  const y1 = start(row + 1, height);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * The size to give the canvas backing store: the image's own size, scaled down so the per-pixel
 * heatmap loop stays fast on camera-sized photos.
 */
export function surfaceSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const w = Math.max(1, Math.round(width));
  const h = Math.max(1, Math.round(height));
  const scale = Math.min(1, maxSide / Math.max(w, h));
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}
