/** Space between cells and around the grid, in CSS pixels. */
export const GALLERY_GAP = 8;
/** Under each picture: the top-1 label and its score, one line each. media/dataset.css sizes the caption to match. */
export const CAPTION_HEIGHT = 36;
/**
 * Where the gallery's cells go: a grid of equal cells, as many columns as fit the width, filled row by row in
 * the query's order. Like RowLayout it is arithmetic only, so a 100,000-image dataset costs nothing to lay out
 * and only the cells on screen are ever built. DOM-free.
 */
export class GridLayout {
  count = 0;

  constructor(
    public cell: number,
    public width: number,
  ) {}

  get columns(): number {
    return Math.max(1, Math.floor((this.width - GALLERY_GAP) / (this.cell + GALLERY_GAP)));
  }

  get rowPitch(): number {
    return this.cell + CAPTION_HEIGHT + GALLERY_GAP;
  }

  get rows(): number {
    return Math.ceil(this.count / this.columns);
  }

  get totalHeight(): number {
    return this.rows * this.rowPitch + GALLERY_GAP;
  }

  offsetOf(position: number): { left: number; top: number } {
    const columns = this.columns;
    return { left: GALLERY_GAP + (position % columns) * (this.cell + GALLERY_GAP), top: GALLERY_GAP + Math.floor(position / columns) * this.rowPitch };
  }

  /** The first position of the grid row drawn at `y` (clamped into the grid). */
  positionAt(y: number): number {
    if (this.count === 0) return -1;
    const row = Math.max(0, Math.min(this.rows - 1, Math.floor((y - GALLERY_GAP) / this.rowPitch)));
    return row * this.columns;
  }

  /** Positions of the cells intersecting [top, top + height), plus `overscanRows` grid rows on each side. */
  visibleRange(top: number, height: number, overscanRows = 0): { first: number; last: number } {
    if (this.count === 0) return { first: 0, last: -1 };
    const columns = this.columns;
    const firstRow = Math.max(0, Math.floor((top - GALLERY_GAP) / this.rowPitch) - overscanRows);
    const lastRow = Math.min(this.rows - 1, Math.floor((top + Math.max(1, height) - 1 - GALLERY_GAP) / this.rowPitch) + overscanRows);
    return { first: Math.min(this.count - 1, firstRow * columns), last: Math.min(this.count - 1, (lastRow + 1) * columns - 1) };
  }
}
