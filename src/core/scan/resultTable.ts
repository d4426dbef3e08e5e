/**
 * The results of one scan as a queryable table for the dataset view: sort, filter, page, histogram, without
 * holding the results in memory.
 *
 * Rows live in a JSONL file (the same format as `beit-lens scan --out x.jsonl`, so a CLI results file opens
 * directly). In memory there are only typed-array columns per row, about 30 bytes each: file offset and length,
 * walk order, top-1 label index and score, folder id. Sorting and filtering run over those columns; only the
 * rows of the requested page are read back from the file.
 *
 * One process writes a results file (through {@link ResultTable.append}); others may follow it with
 * {@link ResultTable.refresh}, which indexes only complete lines, so a reader never sees half a record.
 */
import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { QUALITY_FLAGS, flagBits, flagsFromBits, oddSizeFlags, type QualityFlag } from '../quality/measures';
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
  /**
   * Only these row ids (a Find Similar result, a Map selection, a duplicate group); ids the table does not have
   * are ignored. With sort key 'given' the rows come in this list's order.
   */
  rows?: readonly number[];
  /** Rows raising at least one of these quality flags (odd_size as decided over the whole table). */
  flags?: readonly QualityFlag[];
}

export type SortKey = 'order' | 'path' | 'folder' | 'label' | 'score' | 'error' | 'given';

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
const ODD_SIZE_BIT = flagBits(['odd_size']);
/** Bytes read at once when walking the file in order. */
const READ_CHUNK = 1 << 20;
/** Paths sort as people expect: "img2" before "img10". */
const PATH_ORDER = new Intl.Collator(undefined, { numeric: true });

/**
 * Path order: numeric-aware, then by code units where the collator sees two paths as equal ("img2" and
 * "img02", "a" and "A" in some locales), so no tie is left to the row id, which is completion order and
 * differs between two scans of the same folder.
 */
export function comparePaths(a: string, b: string): number {
  return PATH_ORDER.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

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
  /** File size as this table knows it: where its own appends go. */
  private end = 0;
  /** Bytes up to the end of the last complete line indexed: where {@link refresh} continues. */
  private scanned = 0;
  /** The file ends inside a line (its writer was killed mid-write): the next append starts a new line. */
  private tornTail = false;
  private loading: Promise<number> = Promise.resolve(0);
  private pathRank?: Int32Array;
  private readonly offsets = new Column(new Float64Array(1024));
  private readonly lengths = new Column(new Int32Array(1024));
  private readonly order = new Column(new Int32Array(1024));
  private readonly top1 = new Column(new Int32Array(1024));
  private readonly score = new Column(new Float32Array(1024));
  private readonly folder = new Column(new Int32Array(1024));
  /** Quality flag bits the row raised on its own (bit i: QUALITY_FLAGS[i]); 0 for rows without measures. */
  private readonly flagBits = new Column(new Int32Array(1024));
  /** sqrt(w) * sqrt(h) for odd_size; NaN for rows without measures. */
  private readonly imageSize = new Column(new Float32Array(1024));
  /** odd_size per row, decided over all rows' sizes and recomputed when the table has grown. */
  private oddSize?: { count: number; flags: Uint8Array };
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
    await table.load(true);
    return table;
  }

  /**
   * Indexes the complete lines after {@link scanned}. `final`: no writer is active (the table is being opened
   * to write), so a last line without its newline is taken as what the killed writer left: a whole record is
   * kept, and either way the next append starts on a new line rather than gluing itself onto the fragment.
   */
  private async load(final: boolean): Promise<number> {
    const before = this.count;
    const { size } = await this.handle.stat();
    let position = this.scanned;
    let carry = Buffer.alloc(0);
    while (position < size) {
      const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - position));
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
    this.scanned = position - carry.length;
    if (final && carry.length > 0) {
      const record = parseJsonLine(carry.toString('utf8'));
      if (record) this.index(record, this.scanned, carry.length, this.count);
      this.tornTail = true;
      this.scanned = position;
    }
    this.end = Math.max(this.end, position);
    return this.count - before;
  }

  /**
   * Indexes rows another process has appended since the last look (the editor follows the inference worker's
   * results file this way). Only complete lines count; a line being written is picked up next time.
   * Returns how many rows were added.
   */
  refresh(): Promise<number> {
    this.loading = this.loading.then(
      () => this.load(false),
      () => this.load(false),
    );
    return this.loading;
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
    this.flagBits.grow(capacity, (n) => new Int32Array(n));
    this.imageSize.grow(capacity, (n) => new Float32Array(n));
    // odd_size is never taken from the file: it is this table's to decide.
    this.flagBits.data[i] = record.flags ? flagBits(record.flags.filter((f) => f !== 'odd_size')) : 0;
    this.imageSize.data[i] = record.quality ? record.quality.size : NaN;
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
    const newline = this.tornTail ? 1 : 0;
    const line = Buffer.from(`${newline ? '\n' : ''}${JSON.stringify(record)}\n`, 'utf8');
    let written = 0;
    while (written < line.length) written += writeSync(this.handle.fd, line, written, line.length - written);
    const row = this.count;
    this.index(record, this.end + newline, line.length - newline, 'seq' in result ? result.seq : row);
    this.end += line.length;
    this.scanned = this.end;
    this.tornTail = false;
    return row;
  }

  get size(): number {
    return this.count;
  }

  /** Row i's quality flag bits, odd_size included. */
  private rowFlagBits(i: number): number {
    if (this.oddSize?.count !== this.count) this.oddSize = { count: this.count, flags: oddSizeFlags(this.imageSize.data.subarray(0, this.count)) };
    return this.flagBits.data[i] | (this.oddSize.flags[i] ? ODD_SIZE_BIT : 0);
  }

  /** How many rows raise each quality flag (error rows raise none). */
  flagCounts(): Array<{ flag: QualityFlag; count: number }> {
    const counts = new Array<number>(QUALITY_FLAGS.length).fill(0);
    for (let i = 0; i < this.count; i++) {
      const bits = this.rowFlagBits(i);
      for (let f = 0; f < QUALITY_FLAGS.length; f++) if (bits & (1 << f)) counts[f]++;
    }
    return QUALITY_FLAGS.map((flag, f) => ({ flag, count: counts[f] }));
  }

  private matches(i: number, f: TableFilter, labelSet: Set<number> | undefined, folderId: number | undefined, flagMask?: number): boolean {
    const top = this.top1.data[i];
    if (flagMask !== undefined && (this.rowFlagBits(i) & flagMask) === 0) return false;
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
    // An empty list asks for nothing in particular; a list of only unknown names matches no row.
    const flagMask = filter.flags?.length ? flagBits(filter.flags) : undefined;
    const picked: number[] = [];
    if (filter.rows) {
      const seen = new Set<number>();
      for (const i of filter.rows) {
        if (Number.isInteger(i) && i >= 0 && i < this.count && !seen.has(i) && this.matches(i, filter, labelSet, folderId, flagMask)) picked.push(i);
        seen.add(i);
      }
      // Kept in the list's order: for 'given' that is the order, for the other keys the sort below replaces it.
      if (key === 'given') {
        const ids = Int32Array.from(descending ? picked.reverse() : picked);
        this.cached = { key: cacheKey, count: this.count, ids };
        return ids;
      }
    } else {
      for (let i = 0; i < this.count; i++) if (this.matches(i, filter, labelSet, folderId, flagMask)) picked.push(i);
    }
    const ids = Int32Array.from(picked);

    const order = this.order.data;
    const sign = descending ? -1 : 1;
    let primary: (a: number, b: number) => number;
    switch (key) {
      case 'path': {
        // Rows added since the rank was computed sort after the others, in file order, until the next query.
        const rank = this.pathRank ?? new Int32Array(0);
        const rankOf = (i: number) => (i < rank.length ? rank[i] : rank.length + i);
        primary = (a, b) => sign * (rankOf(a) - rankOf(b));
        break;
      }
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

  /** Path order needs the paths, which live in the file: ranks are computed once per table size. */
  private async prepare(key: SortKey): Promise<void> {
    if (key !== 'path' || this.pathRank?.length === this.count) return;
    const n = this.count;
    const names = new Array<string>(n);
    for await (const row of this.entries(0, n)) names[row.row] = row.image;
    const ids = Array.from({ length: n }, (_, i) => i).sort((a, b) => comparePaths(names[a] ?? '', names[b] ?? '') || a - b);
    const rank = new Int32Array(n);
    ids.forEach((id, r) => (rank[id] = r));
    this.pathRank = rank;
    this.cached = undefined;
  }

  /**
   * Ids of the rows matching `filter`, in the requested order: what a caller combining the table with its
   * own row sets (the label check's suspects) pages through. Shared with the query memo: do not modify.
   */
  async ids(filter: TableFilter = {}, sort: { key: SortKey; descending?: boolean } = { key: 'order' }): Promise<Int32Array> {
    await this.prepare(sort.key);
    return this.select(filter, sort.key, sort.descending ?? false);
  }

  async query(q: TableQuery = {}): Promise<TablePage> {
    const ids = await this.ids(q.filter ?? {}, q.sort ?? { key: 'order' });
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
      if (record) out.push(this.withTableFlags({ ...record, row }));
    }
    return out;
  }

  /**
   * Rows `from` to `to` (exclusive) in file order, read sequentially in large chunks: a pass over every
   * row (path ranks, the label check) costs one read per megabyte instead of one per row.
   */
  async *entries(from = 0, to = this.count): AsyncGenerator<TableRow> {
    const offsets = this.offsets.data;
    const lengths = this.lengths.data;
    let i = Math.max(0, from);
    const last = Math.min(to, this.count);
    while (i < last) {
      const start = offsets[i];
      let j = i + 1;
      while (j < last && offsets[j] + lengths[j] - start <= READ_CHUNK) j++;
      const buffer = Buffer.allocUnsafe(offsets[j - 1] + lengths[j - 1] - start);
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await this.handle.read(buffer, filled, buffer.length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      for (let k = i; k < j; k++) {
        const at = offsets[k] - start;
        const record = parseJsonLine(buffer.toString('utf8', at, at + lengths[k]).trimEnd());
        if (record) yield this.withTableFlags({ ...record, row: k });
      }
      i = j;
    }
  }

  /** A row as read from the file, its flags as this table decides them (odd_size over the whole table). */
  private withTableFlags(row: TableRow): TableRow {
    if (!row.quality) return row;
    return { ...row, flags: flagsFromBits(this.rowFlagBits(row.row)) };
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
