/**
 * The conversation between one dataset view's webview and the extension, without vscode, so it is tested
 * with a real results table and real messages.
 *
 * - Every inbound message is parsed with the shared protocol schema; anything else is logged and dropped.
 * - The webview names rows, never files: paths are read from this view's results table, so thumbnails,
 *   "open", copy and export can only reach images that are rows of this scan.
 * - Queries run on the extension host against the table's typed-array columns (no inference, no worker
 *   round trip), so paging and sorting stay instant while the worker is busy scanning.
 */
import * as path from 'node:path';
import { displayPath } from '../../core/scan/fileNames';
import { exportResults, type ResultFormat } from '../../core/scan/output';
import type { ResultTable, TableFilter, TableRow } from '../../core/scan/resultTable';
import {
  parseDatasetViewMessage,
  type DatasetHostMessage,
  type DatasetQueryDto,
  type DatasetRowDto,
  type DatasetViewMessage,
  type ExportFormat,
  type ExportScope,
  type ScanStateDto,
} from '../../shared/protocol';
import { DEFAULT_THUMBNAIL_SIDE } from '../../shared/thumbnailSides';
import { LruCache } from '../hover/lruCache';
import { InferenceService, isInferenceError } from '../inference/inferenceClient';
import { Logger } from '../util/logger';
import type { FolderOverrides } from '../worker/workerProtocol';
import { DatasetLabelCheck } from './datasetLabelCheck';

export interface DatasetSessionDeps {
  inference: Pick<InferenceService, 'call'>;
  post: (message: DatasetHostMessage) => unknown;
  /** Opens the explanation panel for an image of this scan. */
  openImage: (file: string) => unknown;
  copyText: (text: string) => Promise<unknown>;
  /** Asks where to export (a save dialog); undefined when the user cancels. */
  pickExportFile: (suggestedName: string, format: ExportFormat) => Promise<string | undefined>;
  /** This dataset's label corrections, kept by the extension across sessions. */
  overrides: { get(): FolderOverrides; set(value: FolderOverrides): unknown };
  log: Logger;
  lowScore?: number;
  /** Longest side of thumbnails asked for without a side (the table's), in pixels; DEFAULT_THUMBNAIL_SIDE if unset. */
  thumbnailSide?: number;
  /** Minimum time between two "rows changed" notices while a scan streams in. */
  infoIntervalMs?: number;
}

const IDLE: ScanStateDto = { status: 'idle', done: 0, imagesPerSecond: 0, classified: 0, cached: 0, errors: 0 };
const READ_PAGE = 500;
const THUMBNAIL_CACHE_BYTES = 16 * 1024 * 1024;

let sessions = 0;

const pendingKey = (row: number, side: number) => `${side}:${row}`;

export class DatasetSession {
  private table?: ResultTable;
  private generation = 0;
  private scanState: ScanStateDto = IDLE;
  private readonly labelCheck: DatasetLabelCheck;
  /** Keyed by side and path, so a re-scan of the same folder shows its thumbnails at once. */
  private readonly thumbnails = new LruCache<string, string>({ maxEntries: 4000, maxWeight: THUMBNAIL_CACHE_BYTES, weigh: (v) => v.length });
  /** Keyed by {@link pendingKey}: the table and the gallery may want one row at two sizes. */
  private readonly pendingThumbnails = new Map<string, AbortController>();
  private suspectsMemo?: { key: string; ids: Int32Array };
  private infoTimer?: NodeJS.Timeout;
  private lastInfoAt = 0;
  private disposed = false;
  /** One fair-queue lane per view: its thumbnails take turns with hovers and panels. */
  private readonly lane = `dataset-view-${++sessions}`;

  constructor(
    readonly title: string,
    readonly folder: string,
    private readonly deps: DatasetSessionDeps,
  ) {
    this.labelCheck = new DatasetLabelCheck({
      mapFolders: (folders, overrides) => this.deps.inference.call('mapFolders', { folders, overrides }, { lane: this.lane }),
      overrides: () => this.deps.overrides.get(),
      lowScore: deps.lowScore,
    });
  }

  get currentTable(): ResultTable | undefined {
    return this.table;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  /** Shows another table (a new scan's): everything the webview holds about the old one is stale. */
  async setTable(table: ResultTable): Promise<void> {
    this.table = table;
    this.generation++;
    this.labelCheck.reset();
    this.suspectsMemo = undefined;
    for (const controller of this.pendingThumbnails.values()) controller.abort();
    this.pendingThumbnails.clear();
    await this.postInfo();
  }

  /** Picks up rows the worker has appended; tells the webview (at most every `infoIntervalMs`). */
  async refresh(): Promise<number> {
    const table = this.table;
    if (!table || this.disposed) return 0;
    const added = await table.refresh();
    if (added > 0) this.postInfoSoon();
    return added;
  }

  setScanState(state: ScanStateDto): void {
    this.scanState = state;
    this.post({ type: 'scan', state });
  }

  /** The scan has ended: final rows, final label check. */
  async scanEnded(state: ScanStateDto): Promise<void> {
    await this.refresh();
    await this.postInfo();
    this.setScanState(state);
    await this.postLabelCheck();
  }

  /** Entry point for everything the webview posts. Never throws. */
  async receive(raw: unknown): Promise<void> {
    if (this.disposed) return;
    const parsed = parseDatasetViewMessage(raw);
    if (!parsed.ok) {
      this.deps.log.warn(`dataset view: dropped an invalid message (${parsed.error})`);
      return;
    }
    try {
      await this.dispatch(parsed.message);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (isInferenceError(err, 'CANCELLED')) return;
      this.deps.log.error(`dataset view: ${parsed.message.type}: ${message}`);
      this.post({ type: 'error', ...('requestId' in parsed.message ? { requestId: parsed.message.requestId } : {}), message });
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.infoTimer);
    for (const controller of this.pendingThumbnails.values()) controller.abort();
    this.pendingThumbnails.clear();
  }

  private async dispatch(message: DatasetViewMessage): Promise<void> {
    // Requests about a table this view no longer shows would read the wrong rows: drop them.
    if ('generation' in message && message.generation !== this.generation) {
      this.deps.log.debug(`dataset view: ignored a ${message.type} request for table ${message.generation}`);
      return;
    }
    const table = this.table;
    switch (message.type) {
      case 'ready':
        await this.postInfo();
        this.post({ type: 'scan', state: this.scanState });
        if (table) await this.postLabelCheck();
        return;
      case 'query': {
        if (!table) return;
        const ids = await this.idsFor(table, message.query);
        const rows = await table.read(ids.subarray(message.offset, message.offset + message.limit));
        this.post({ type: 'page', requestId: message.requestId, generation: this.generation, offset: message.offset, total: ids.length, rows: rows.map((r) => this.rowDto(r)) });
        return;
      }
      case 'histogram': {
        if (!table) return;
        const all = message.query.mode === 'errors' ? [] : table.histogram({ ...tableFilter(message.query), errors: 'exclude' });
        this.post({ type: 'histogram', requestId: message.requestId, generation: this.generation, total: all.reduce((n, b) => n + b.count, 0), bars: all.slice(0, message.limit) });
        return;
      }
      case 'labelCheck':
        if (table) await this.postLabelCheck();
        return;
      case 'searchLabels': {
        const results = await this.deps.inference.call('searchLabels', { query: message.query, limit: message.limit }, { lane: this.lane });
        this.post({ type: 'labels', requestId: message.requestId, results });
        return;
      }
      case 'setMapping':
        return this.setMapping(message.folder, message.labels);
      case 'thumbnails':
        if (table) await this.requestThumbnails(table, message.rows, message.side ?? this.deps.thumbnailSide ?? DEFAULT_THUMBNAIL_SIDE);
        return;
      case 'open': {
        if (!table || message.row >= table.size) return;
        const [row] = await table.read([message.row]);
        if (row && row.error === undefined) await this.deps.openImage(row.image);
        return;
      }
      case 'copyPaths': {
        if (!table) return;
        const paths: string[] = [];
        for await (const row of readRows(table, message.rows)) paths.push(displayPath(row.image));
        await this.deps.copyText(paths.join('\n'));
        this.post({ type: 'copied', count: paths.length });
        return;
      }
      case 'export':
        if (table) await this.export(table, message.scope, message.format, message.query, message.rows);
        return;
    }
  }

  /** Row ids for a view's query, in its order. Suspects: the ranked suspects that also pass the filter. */
  private async idsFor(table: ResultTable, query: DatasetQueryDto): Promise<Int32Array> {
    const filter = tableFilter(query);
    if (query.mode !== 'suspects') return table.ids(filter, query.sort);
    await this.labelCheck.update(table);
    const key = JSON.stringify([filter, query.sort, this.labelCheck.version, table.size]);
    if (this.suspectsMemo?.key === key) return this.suspectsMemo.ids;
    let ids: Int32Array;
    if (query.sort.key === 'order') {
      const passes = maskOf(await table.ids(filter), table.size);
      ids = this.labelCheck.rankedRows().filter((row) => passes[row] === 1);
      if (query.sort.descending) ids.reverse();
    } else {
      const suspects = this.labelCheck.suspectMask(table.size);
      ids = (await table.ids(filter, query.sort)).filter((row) => suspects[row] === 1);
    }
    this.suspectsMemo = { key, ids };
    return ids;
  }

  private rowDto(row: TableRow): DatasetRowDto {
    const image = displayPath(row.image);
    const check = this.labelCheck.checkOf(row);
    return {
      row: row.row,
      image,
      name: path.basename(image),
      folder: row.folder,
      folderLabel: row.folderLabel,
      ...(row.top ? { top: row.top } : {}),
      ...(row.error !== undefined ? { error: row.error, ...(row.errorCode ? { errorCode: row.errorCode } : {}) } : {}),
      ...(check ? { check } : {}),
    };
  }

  private async postLabelCheck(): Promise<void> {
    const table = this.table;
    if (!table) return;
    const generation = this.generation;
    await this.labelCheck.update(table);
    if (generation === this.generation) this.post({ type: 'labelCheck', generation, check: this.labelCheck.dto() });
  }

  private async setMapping(folder: string, labels: number[] | null | 'auto'): Promise<void> {
    const overrides = { ...this.deps.overrides.get() };
    if (labels === 'auto') delete overrides[folder];
    else overrides[folder] = labels;
    await this.deps.overrides.set(overrides);
    this.labelCheck.reset();
    this.suspectsMemo = undefined;
    await this.postLabelCheck();
  }

  /**
   * Thumbnails for the rows the webview shows now. Requests for rows that scrolled out of view are
   * cancelled (they are still in the fair queue, so nothing was read for them).
   */
  private async requestThumbnails(table: ResultTable, rows: number[], side: number): Promise<void> {
    const wanted = new Set(rows.map((row) => pendingKey(row, side)));
    for (const [key, controller] of this.pendingThumbnails) {
      if (wanted.has(key)) continue;
      controller.abort();
      this.pendingThumbnails.delete(key);
    }
    const generation = this.generation;
    const records = await table.read(rows.filter((r) => r < table.size && !this.pendingThumbnails.has(pendingKey(r, side))));
    for (const record of records) {
      if (record.error !== undefined) continue;
      const cacheKey = `${side}\0${record.image}`;
      const cached = this.thumbnails.get(cacheKey);
      if (cached) {
        this.post({ type: 'thumbnail', generation, row: record.row, src: cached, side });
        continue;
      }
      const key = pendingKey(record.row, side);
      const controller = new AbortController();
      this.pendingThumbnails.set(key, controller);
      this.deps.inference
        .call('thumbnail', { file: record.image, maxSide: side }, { lane: this.lane, signal: controller.signal })
        .then(
          (src) => {
            this.thumbnails.set(cacheKey, src);
            if (generation === this.generation) this.post({ type: 'thumbnail', generation, row: record.row, src, side });
          },
          (err: unknown) => {
            if (isInferenceError(err, 'CANCELLED') || controller.signal.aborted) return;
            // The row stays without a picture; the reason is the scan's (an error row) or the log's.
            this.deps.log.debug(`dataset view: no thumbnail for ${displayPath(record.image)}: ${(err as Error).message}`);
            if (generation === this.generation) this.post({ type: 'thumbnail', generation, row: record.row, src: '', side });
          },
        )
        .finally(() => {
          if (this.pendingThumbnails.get(key) === controller) this.pendingThumbnails.delete(key);
        });
    }
  }

  private async export(table: ResultTable, scope: ExportScope, format: ExportFormat, query?: DatasetQueryDto, rows?: number[]): Promise<void> {
    const what = scope === 'all' ? 'results' : scope === 'view' ? 'filtered' : 'selected';
    const base = path.basename(this.folder).replace(/[^\p{L}\p{N}._-]+/gu, '_') || 'dataset';
    const file = await this.deps.pickExportFile(`${base}-${what}.${format}`, format);
    if (!file) return;
    // The name the user typed decides when it says; the format they picked otherwise.
    const chosen: ResultFormat = /\.csv$/i.test(file) ? 'csv' : /\.jsonl?$/i.test(file) ? 'jsonl' : format;
    const records = scope === 'all' ? table.rows() : readRows(table, scope === 'view' ? await this.idsFor(table, query!) : rows!);
    const count = await exportResults(file, records, chosen);
    this.deps.log.info(`dataset view: exported ${count} rows to ${file}`);
    this.post({ type: 'exported', file, count, format: chosen });
  }

  private postInfoSoon(): void {
    if (this.infoTimer) return;
    const interval = this.deps.infoIntervalMs ?? 400;
    const wait = Math.max(0, this.lastInfoAt + interval - Date.now());
    this.infoTimer = setTimeout(() => {
      this.infoTimer = undefined;
      void this.postInfo();
    }, wait);
  }

  private async postInfo(): Promise<void> {
    const table = this.table;
    if (this.disposed) return;
    this.lastInfoAt = Date.now();
    const errors = table ? (await table.ids({ errors: 'only' })).length : 0;
    this.post({
      type: 'dataset',
      info: { generation: this.generation, title: this.title, folder: this.folder, rows: table?.size ?? 0, errors, folders: table?.folders() ?? [] },
    });
  }

  private post(message: DatasetHostMessage): void {
    if (this.disposed) return;
    try {
      const result = this.deps.post(message);
      // Webview.postMessage returns a Thenable that rejects when the panel is gone.
      if (result && typeof (result as PromiseLike<unknown>).then === 'function') (result as PromiseLike<unknown>).then(undefined, () => undefined);
    } catch {
      // The panel was closed between our check and the post.
    }
  }
}

/** The table filter of a view's query ("errors" is a filter on the table; "suspects" is applied on top). */
export function tableFilter(query: DatasetQueryDto): TableFilter {
  const f = query.filter;
  const filter: TableFilter = {};
  if (f.labelText) filter.labelText = f.labelText;
  if (f.labelIndex !== undefined) filter.labelIndex = f.labelIndex;
  if (f.minScore !== undefined) filter.minScore = f.minScore;
  if (f.maxScore !== undefined) filter.maxScore = f.maxScore;
  if (f.folderLabel !== undefined) filter.folderLabel = f.folderLabel;
  if (query.mode === 'errors') filter.errors = 'only';
  return filter;
}

function maskOf(ids: Int32Array, size: number): Uint8Array {
  const mask = new Uint8Array(size);
  for (const id of ids) mask[id] = 1;
  return mask;
}

/** Rows by id, in the given order, read a page at a time (an export of 100,000 rows never holds them all). */
async function* readRows(table: ResultTable, ids: ArrayLike<number>): AsyncGenerator<TableRow> {
  for (let start = 0; start < ids.length; start += READ_PAGE) {
    const page = Array.from({ length: Math.min(READ_PAGE, ids.length - start) }, (_, k) => ids[start + k]).filter((id) => id < table.size);
    yield* await table.read(page);
  }
}
