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

/** The patch under a point given as fractions of the image's width and height; undefined outside it. */
export function patchAt(fx: number, fy: number, grid: number): PatchCell | undefined {
  if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) return undefined;
  const col = Math.min(grid - 1, Math.floor(fx * grid));
  const row = Math.min(grid - 1, Math.floor(fy * grid));
  return { row, col, index: row * grid + col };
}

export function cellOf(index: number, grid: number): PatchCell {
  return { row: Math.floor(index / grid), col: index % grid, index };
}

/**
 * The patch's rectangle in a surface of the given size. Edges are rounded the same way for
 * neighbours, so adjacent patches tile without gaps or overlaps.
 */
export function patchRect(index: number, grid: number, width: number, height: number): Rect {
  const { row, col } = cellOf(index, grid);
  const x0 = Math.round((col * width) / grid);
  const x1 = Math.round(((col + 1) * width) / grid);
  const y0 = Math.round((row * height) / grid);
  const y1 = Math.round(((row + 1) * height) / grid);
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
