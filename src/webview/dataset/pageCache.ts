/**
 * Pages of query results held by the webview. The table asks for the pages its visible rows fall in; while
 * a scan streams rows in, pages are marked stale (still shown, so nothing flickers) and asked for again
 * when they are on screen. Only a bounded number of pages is kept. DOM-free.
 */
export class PageCache<T> {
  private readonly pages = new Map<number, { rows: T[]; version: number }>();
  /** Page -> data version it was last requested at. */
  private readonly requested = new Map<number, number>();
  private dataVersion = 0;

  constructor(
    readonly pageSize: number,
    private readonly maxPages = 40,
  ) {}

  get version(): number {
    return this.dataVersion;
  }

  /** A different query: nothing held applies any more. */
  clear(): void {
    this.pages.clear();
    this.requested.clear();
    this.dataVersion++;
  }

  /** Same query, new data: keep showing what is held, but ask again. */
  invalidate(): void {
    this.dataVersion++;
  }

  get(position: number): T | undefined {
    return this.pages.get(Math.floor(position / this.pageSize))?.rows[position % this.pageSize];
  }

  /** Pages covering positions first..last that are missing or stale and not yet asked for at this version. */
  wanted(first: number, last: number): number[] {
    const out: number[] = [];
    if (last < first) return out;
    for (let page = Math.floor(first / this.pageSize); page <= Math.floor(last / this.pageSize); page++) {
      const held = this.pages.get(page);
      if (held && held.version === this.dataVersion) continue;
      if (this.requested.get(page) === this.dataVersion) continue;
      out.push(page);
    }
    return out;
  }

  markRequested(page: number): void {
    this.requested.set(page, this.dataVersion);
  }

  /** Stores a page; evicts the pages farthest from it when over the bound. */
  store(page: number, rows: T[], version: number): void {
    const held = this.pages.get(page);
    if (held && held.version > version) return;
    this.pages.delete(page);
    this.pages.set(page, { rows, version });
    if (this.pages.size <= this.maxPages) return;
    const far = [...this.pages.keys()].sort((a, b) => Math.abs(b - page) - Math.abs(a - page));
    for (const p of far.slice(0, this.pages.size - this.maxPages)) {
      this.pages.delete(p);
      this.requested.delete(p);
    }
  }

  /** Replaces one row everywhere it is held (a thumbnail or a check arrived). */
  update(match: (row: T) => boolean, replace: (row: T) => T): void {
    for (const held of this.pages.values()) held.rows = held.rows.map((r) => (match(r) ? replace(r) : r));
  }
}
