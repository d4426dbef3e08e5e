/**
 * The results of one scan as a queryable table for the dataset view: sort, filter, page, histogram, without
 * holding the results in memory.
 *
 * Rows live in a JSONL file (the same format as `beit-lens scan --out x.jsonl`, so a CLI results file opens
 * directly). In memory there are only typed-array columns per row, about 30 bytes each: file offset and length,
 * walk order, top-1 label index and score, folder id. Sorting and filtering run over those columns; only the
 * rows of the requested page are read back from the file.
 */
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { parseJsonLine, toRecord, type ScanRecord } from './output';
import type { ScanResult } from './scanner';

export interface TableFilter {
  /** Case-insensitive text that the top-1 label must contain. */
  labelText?: string;
  /** Top-1 label index (e.g. a histogram bar). */
  labelIndex?: number;
  minScore?: number;
  maxScore?: number;
  /** Folder label; null selects files directly in the root. */
  folderLabel?: string | null;
  /** Error rows only, or none (default: both). */
  errors?: 'only' | 'exclude';
}

export type SortKey = 'order' | 'folder' | 'label' | 'score' | 'error';

export interface TableQuery {
  filter?: TableFilter;
  sort?: { key: SortKey; descending?: boolean };
  offset?: number;
  limit?: number;
}

export interface TableRow extends ScanRecord {
  /** Stable row id within this table. */
  row: number;
}

export interface TablePage {
  /** Rows matching the filter. */
  total: number;
  rows: TableRow[];
}

const NO_FOLDER = '\u0000(root)';

class Column<T extends Float64Array | Float32Array | Int32Array> {
  constructor(public data: T) {}
  grow(capacity: number, make: (n: number) => T): void {
    if (capacity <= this.data.length) return;
    const next = make(Math.max(capacity, this.data.length * 2));
    next.set(this.data as never);
    this.data = next;
  }
}

export class ResultTable {
  private count = 0;
  private end = 0;
  private readonly offsets = new Column(new Float64Array(1024));
  private readonly lengths = new Column(new Int32Array(1024));
  private readonly order = new Column(new Int32Array(1024));
  private readonly top1 = new Column(new Int32Array(1024));
  private readonly score = new Column(new Float32Array(1024));
  private readonly folder = new Column(new Int32Array(1024));
  private readonly folderIds = new Map<string, number>();
  private readonly folderNames: string[] = [];
  private readonly labelText = new Map<number, string>();
  private cached?: { key: string; count: number; ids: Int32Array };

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
  ) {}

  /** A new, empty table backed by `file` (replaced). */
  static async create(file: string): Promise<ResultTable> {
    return new ResultTable(file, await open(file, 'w+'));
  }

  /** A table over an existing results JSONL file (a CLI `--out` file, or a table's own file); it can grow. */
  static async open(file: string): Promise<ResultTable> {
    const table = new ResultTable(file, await open(file, 'a+'));
    await table.load();
    return table;
  }

  private async load(): Promise<void> {
    const { size } = await this.handle.stat();
    let position = 0;
    let carry = Buffer.alloc(0);
    while (position < size) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, size - position));
      const { bytesRead } = await this.handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      const data = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const dataStart = position - carry.length;
      position += bytesRead;
      let start = 0;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
        const record = parseJsonLine(data.toString('utf8', start, nl));
        if (record) this.index(record, dataStart + start, nl + 1 - start, this.count);
        start = nl + 1;
      }
      carry = Buffer.from(data.subarray(start));
    }
    // A torn last line (interrupted writer) is ignored here and overwritten by nothing: appends start after it.
    this.end = size;
  }

  private index(record: ScanRecord, offset: number, length: number, order: number): void {
    const i = this.count++;
    const capacity = this.count;
    this.offsets.grow(capacity, (n) => new Float64Array(n));
    this.lengths.grow(capacity, (n) => new Int32Array(n));
    this.order.grow(capacity, (n) => new Int32Array(n));
    this.top1.grow(capacity, (n) => new Int32Array(n));
    this.score.grow(capacity, (n) => new Float32Array(n));
    this.folder.grow(capacity, (n) => new Int32Array(n));
    this.offsets.data[i] = offset;
    this.lengths.data[i] = length;
    this.order.data[i] = order;
    const first = record.top?.[0];
    this.top1.data[i] = first ? first.index : -1;
    this.score.data[i] = first ? first.score : NaN;
    if (first && !this.labelText.has(first.index)) this.labelText.set(first.index, first.label);
    const folderKey = record.folderLabel ?? NO_FOLDER;
    let id = this.folderIds.get(folderKey);
    if (id === undefined) {
      id = this.folderNames.length;
      this.folderIds.set(folderKey, id);
      this.folderNames.push(folderKey);
    }
    this.folder.data[i] = id;
    this.cached = undefined;
  }

  /** Adds a scan result (written to the file at once, so a crash loses nothing already shown). */
  append(result: ScanResult | ScanRecord): number {
    const record = toRecord(result);
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    let written = 0;
    while (written < line.length) written += writeSync(this.handle.fd, line, written, line.length - written);
    const row = this.count;
    this.index(record, this.end, line.length, 'seq' in result ? result.seq : row);
    this.end += line.length;
    return row;
  }

  get size(): number {
    return this.count;
  }

  private matches(i: number, f: TableFilter, labelSet: Set<number> | undefined, folderId: number | undefined): boolean {
    const top = this.top1.data[i];
    if (f.errors === 'only' && top >= 0) return false;
    if (f.errors === 'exclude' && top < 0) return false;
    if (f.labelIndex !== undefined && top !== f.labelIndex) return false;
    if (labelSet && !labelSet.has(top)) return false;
    const s = this.score.data[i];
    if (f.minScore !== undefined && !(s >= f.minScore)) return false;
    if (f.maxScore !== undefined && !(s <= f.maxScore)) return false;
    if (folderId !== undefined && this.folder.data[i] !== folderId) return false;
    return true;
  }

  /** Row ids matching the filter, in the requested order (memoised for paging through one query). */
  private select(filter: TableFilter, key: SortKey, descending: boolean): Int32Array {
    const cacheKey = createHash('sha1').update(JSON.stringify([filter, key, descending])).digest('hex');
    if (this.cached && this.cached.key === cacheKey && this.cached.count === this.count) return this.cached.ids;
    let labelSet: Set<number> | undefined;
    if (filter.labelText !== undefined) {
      const needle = filter.labelText.toLowerCase();
      labelSet = new Set([...this.labelText].filter(([, text]) => text.toLowerCase().includes(needle)).map(([i]) => i));
    }
    let folderId: number | undefined;
    if (filter.folderLabel !== undefined) folderId = this.folderIds.get(filter.folderLabel ?? NO_FOLDER) ?? -2;
    const picked: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.matches(i, filter, labelSet, folderId)) picked.push(i);
    const ids = Int32Array.from(picked);

    const order = this.order.data;
    const sign = descending ? -1 : 1;
    let primary: (a: number, b: number) => number;
    switch (key) {
      case 'score': {
        // Error rows (no score) sort last either way.
        const s = this.score.data;
        primary = (a, b) => (Number.isNaN(s[a]) ? 1 : 0) - (Number.isNaN(s[b]) ? 1 : 0) || sign * (s[a] - s[b]);
        break;
      }
      case 'label': {
        const rank = this.rankOf([...this.labelText].map(([i, text]) => [i, text] as [number, string]));
        const t = this.top1.data;
        primary = (a, b) => sign * ((rank.get(t[a]) ?? Infinity) - (rank.get(t[b]) ?? Infinity) || 0);
        break;
      }
      case 'folder': {
        const rank = this.rankOf(this.folderNames.map((name, i) => [i, name] as [number, string]));
        const f = this.folder.data;
        primary = (a, b) => sign * (rank.get(f[a])! - rank.get(f[b])!);
        break;
      }
      case 'error': {
        const t = this.top1.data;
        primary = (a, b) => sign * ((t[b] < 0 ? 1 : 0) - (t[a] < 0 ? 1 : 0));
        break;
      }
      default:
        primary = (a, b) => sign * (order[a] - order[b]);
    }
    ids.sort((a, b) => primary(a, b) || order[a] - order[b] || a - b);
    this.cached = { key: cacheKey, count: this.count, ids };
    return ids;
  }

  private rankOf(entries: Array<[number, string]>): Map<number, number> {
    entries.sort((a, b) => a[1].localeCompare(b[1]));
    return new Map(entries.map(([id], rank) => [id, rank]));
  }

  async query(q: TableQuery = {}): Promise<TablePage> {
    const ids = this.select(q.filter ?? {}, q.sort?.key ?? 'order', q.sort?.descending ?? false);
    const offset = Math.max(0, q.offset ?? 0);
    const limit = Math.max(0, q.limit ?? 100);
    const page = ids.subarray(offset, offset + limit);
    return { total: ids.length, rows: await this.read(page) };
  }

  /** Reads rows by id. */
  async read(rows: ArrayLike<number>): Promise<TableRow[]> {
    const out: TableRow[] = [];
    for (let k = 0; k < rows.length; k++) {
      const row = rows[k];
      if (row < 0 || row >= this.count) throw new RangeError(`no row ${row}`);
      const buffer = Buffer.allocUnsafe(this.lengths.data[row]);
      await this.handle.read(buffer, 0, buffer.length, this.offsets.data[row]);
      const record = parseJsonLine(buffer.toString('utf8').trimEnd());
      if (record) out.push({ ...record, row });
    }
    return out;
  }

  /** Every matching row in walk order, read in pages: for a full export or a label check. */
  async *rows(filter: TableFilter = {}, pageSize = 500): AsyncGenerator<TableRow> {
    const ids = this.select(filter, 'order', false).slice();
    for (let start = 0; start < ids.length; start += pageSize) yield* await this.read(ids.subarray(start, start + pageSize));
  }

  /** Top-1 label counts over the filtered rows, most frequent first (error rows excluded). */
  histogram(filter: TableFilter = {}): Array<{ index: number; label: string; count: number }> {
    const counts = new Map<number, number>();
    for (const i of this.select(filter, 'order', false)) {
      const top = this.top1.data[i];
      if (top >= 0) counts.set(top, (counts.get(top) ?? 0) + 1);
    }
    return [...counts]
      .map(([index, count]) => ({ index, label: this.labelText.get(index) ?? `class ${index}`, count }))
      .sort((a, b) => b.count - a.count || a.index - b.index);
  }

  /** Folder labels with their row counts (null: files directly in the root). */
  folders(): Array<{ folderLabel: string | null; count: number }> {
    const counts = new Array<number>(this.folderNames.length).fill(0);
    for (let i = 0; i < this.count; i++) counts[this.folder.data[i]]++;
    return this.folderNames.map((name, i) => ({ folderLabel: name === NO_FOLDER ? null : name, count: counts[i] }));
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
