/**
 * Vertical layout of the virtualised table: every row has the same height except the few the user has
 * expanded (top-5 shown). Only the expanded positions are stored, sorted, so the offset of any row and the
 * row under any scroll position are found by binary search whatever the number of rows. DOM-free.
 */
export class RowLayout {
  private expanded: number[] = [];
  private rows = 0;

  constructor(
    private row: number,
    private expandedRow: number,
  ) {}

  get rowHeight(): number {
    return this.row;
  }

  get expandedHeight(): number {
    return this.expandedRow;
  }

  /** New heights (the thumbnail size changed); expanded rows stay expanded. */
  setHeights(rowHeight: number, expandedHeight: number): void {
    this.row = rowHeight;
    this.expandedRow = expandedHeight;
  }

  get count(): number {
    return this.rows;
  }

  set count(n: number) {
    this.rows = Math.max(0, Math.floor(n));
    this.expanded = this.expanded.filter((p) => p < this.rows);
  }

  get totalHeight(): number {
    return this.rows * this.rowHeight + this.expanded.length * (this.expandedHeight - this.rowHeight);
  }

  isExpanded(position: number): boolean {
    const i = this.lowerBound(position);
    return this.expanded[i] === position;
  }

  /** Expands or collapses a row; returns whether it is expanded now. */
  toggle(position: number): boolean {
    if (position < 0 || position >= this.rows) return false;
    const i = this.lowerBound(position);
    if (this.expanded[i] === position) {
      this.expanded.splice(i, 1);
      return false;
    }
    this.expanded.splice(i, 0, position);
    return true;
  }

  collapseAll(): void {
    this.expanded = [];
  }

  offsetOf(position: number): number {
    return position * this.rowHeight + this.lowerBound(position) * (this.expandedHeight - this.rowHeight);
  }

  heightOf(position: number): number {
    return this.isExpanded(position) ? this.expandedHeight : this.rowHeight;
  }

  /** The row drawn at `y` (clamped into the list); -1 when the list is empty. */
  indexAt(y: number): number {
    if (this.rows === 0) return -1;
    let lo = 0;
    let hi = this.rows - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsetOf(mid) <= y) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Rows intersecting [top, top + height), plus `overscan` on each side. */
  visibleRange(top: number, height: number, overscan = 0): { first: number; last: number } {
    if (this.rows === 0) return { first: 0, last: -1 };
    const first = Math.max(0, this.indexAt(Math.max(0, top)) - overscan);
    const last = Math.min(this.rows - 1, this.indexAt(top + Math.max(0, height) - 1) + overscan);
    return { first, last };
  }

  /** Index of the first expanded position >= p. */
  private lowerBound(p: number): number {
    let lo = 0;
    let hi = this.expanded.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.expanded[mid] < p) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
