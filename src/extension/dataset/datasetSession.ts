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
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { DEFAULT_NEAR_DUPLICATE_THRESHOLD } from '../../core/similarity/duplicates';
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
  type DuplicateGroupDto,
  type RowSetDto,
  type MapColouringDto,
  type MapPointsDto,
  type ScanStateDto,
  type SimilarityStateDto,
} from '../../shared/protocol';
import { DEFAULT_THUMBNAIL_SIDE } from '../../shared/thumbnailSides';
import { LruCache } from '../hover/lruCache';
import { InferenceService, isInferenceError } from '../inference/inferenceClient';
import { Logger } from '../util/logger';
import type { FolderOverrides, ProjectionAnswer } from '../worker/workerProtocol';
import { DatasetLabelCheck } from './datasetLabelCheck';
import { DatasetSimilarity, splitFolders, splitOf } from './datasetSimilarity';

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
  /** Where this dataset's embeddings come from (the worker reads them); none: no similarity features. */
  embeddings?: { resultsFile: string; cacheFile: string; indexFile: string };
  /** How many neighbours Find Similar shows (the beitLens.similar.topK setting). */
  similarTopK?: () => number;
  /** The scan cache holding this dataset's embeddings (the Map tab reads them there); none: no map. */
  cacheFile?: string;
}

/** Rows the extension picked for the view; the view's query names one by id (RowSetDto). */
interface RowSet {
  kind: RowSetDto['kind'];
  label: string;
  rows: number[];
  similarity?: Map<number, number>;
}

/** Row sets kept per view: the one shown and a few the user may go back to. */
const MAX_ROW_SETS = 8;
/** Groups sent to the Duplicates tab (largest first); the summary counts them all. */
const MAX_GROUPS_SENT = 1000;

const IDLE: ScanStateDto = { status: 'idle', done: 0, imagesPerSecond: 0, classified: 0, cached: 0, errors: 0 };
const READ_PAGE = 500;
const THUMBNAIL_CACHE_BYTES = 16 * 1024 * 1024;
/** One seed for every map, so the same scan gives the same picture each time it is opened. */
const MAP_SEED = 42;

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
  /** The map being computed; a new request (or a new table) cancels it. */
  private mapJob?: { requestId: number; controller: AbortController };
  /** Row ids of a Map selection: the table shows only these until it is cleared. */
  private mapSelection?: number[];
  /** One fair-queue lane per view: its thumbnails take turns with hovers and panels. */
  private readonly lane = `dataset-view-${++sessions}`;
  private readonly similarity?: DatasetSimilarity;
  private similarityState: SimilarityStateDto = { status: 'unavailable', images: 0, missing: 0, splits: [], threshold: DEFAULT_NEAR_DUPLICATE_THRESHOLD };
  private readonly rowSets = new Map<number, RowSet>();
  private nextRowSet = 1;
  /** The last row set sent: sent again when the webview (re)loads, which may have missed it. */
  private lastRowSet?: RowSetDto;
  /** Uniqueness by row id, once loaded for this table. */
  private uniquenessByRow?: Float32Array;
  private uniquenessMemo?: { key: string; ids: Int32Array };

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
    if (deps.embeddings) this.similarity = new DatasetSimilarity({ inference: deps.inference, ...deps.embeddings, lane: this.lane });
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
    this.mapJob?.controller.abort();
    this.mapJob = undefined;
    this.mapSelection = undefined;
    for (const controller of this.pendingThumbnails.values()) controller.abort();
    this.pendingThumbnails.clear();
    this.forgetSimilarity();
    await this.postInfo();
  }

  /** Picks up rows the worker has appended; tells the webview (at most every `infoIntervalMs`). */
  async refresh(): Promise<number> {
    const table = this.table;
    if (!table || this.disposed) return 0;
    const added = await table.refresh();
    if (added > 0) {
      // New rows have no place in the worker's index yet: it is loaded again when next needed.
      if (this.similarityState.status !== 'unavailable' || this.uniquenessByRow) this.forgetSimilarity();
      this.postInfoSoon();
    }
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
    await this.loadSimilarity();
  }

  /**
   * Find Similar Images for any image file (the explorer, the image preview, the explanation panel): a row of
   * this table is looked up by the worker, any other file is embedded there. Resolves to the neighbours shown.
   */
  async findSimilarToFile(file: string): Promise<number> {
    return this.findSimilar({ file }, path.basename(file));
  }

  /** Loads the embeddings for the current table and tells the view what it can offer. */
  async loadSimilarity(): Promise<void> {
    const similarity = this.similarity;
    const table = this.table;
    if (!similarity || !table || this.disposed) return;
    const generation = this.generation;
    const splits = splitFolders(await topLevelFolders(this.folder));
    this.postSimilarity({ ...this.similarityState, status: 'loading', splits });
    try {
      const info = await similarity.info();
      if (generation !== this.generation) return;
      if (info.images === 0) {
        const why = info.missingExamples[0]?.reason;
        return this.postSimilarity({ status: 'unavailable', images: 0, missing: info.missing, splits, threshold: this.similarityState.threshold, message: why ? `no image has an embedding (${why})` : 'no image has an embedding' });
      }
      const values = await similarity.uniqueness();
      if (generation !== this.generation) return;
      this.uniquenessByRow = values;
      this.uniquenessMemo = undefined;
      this.postSimilarity({ status: 'ready', images: info.images, missing: info.missing, splits, threshold: this.similarityState.threshold });
    } catch (err) {
      if (generation !== this.generation || isInferenceError(err, 'CANCELLED')) return;
      const message = err instanceof Error ? err.message : String(err);
      this.deps.log.warn(`dataset view: no similarity features for ${this.folder}: ${message}`);
      this.postSimilarity({ status: 'failed', images: 0, missing: 0, splits, threshold: this.similarityState.threshold, message });
    }
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
    this.mapJob?.controller.abort();
    for (const controller of this.pendingThumbnails.values()) controller.abort();
    this.pendingThumbnails.clear();
    this.similarity?.dispose();
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
        if (this.lastRowSet && this.rowSets.has(this.lastRowSet.id)) this.post({ type: 'rowSet', generation: this.generation, set: this.lastRowSet });
        if (table && this.similarityState.status !== 'unavailable') this.postSimilarity(this.similarityState);
        else if (table && this.scanState.status !== 'running' && this.scanState.status !== 'restarting') await this.loadSimilarity();
        return;
      case 'query': {
        if (!table) return;
        const ids = await this.idsFor(table, message.query);
        const rows = await table.read(ids.subarray(message.offset, message.offset + message.limit));
        const set = message.query.rowSet !== undefined ? this.rowSets.get(message.query.rowSet) : undefined;
        this.post({ type: 'page', requestId: message.requestId, generation: this.generation, offset: message.offset, total: ids.length, rows: rows.map((r) => this.rowDto(r, set)) });
        return;
      }
      case 'findSimilar': {
        if (!table || message.row >= table.size) return;
        const [row] = await table.read([message.row]);
        if (row && row.error === undefined) await this.findSimilar({ row: message.row }, path.basename(displayPath(row.image)));
        return;
      }
      case 'showRows': {
        if (!table) return;
        this.postRowSet({ kind: 'group', label: message.label, rows: message.rows.filter((r) => r < table.size) });
        return;
      }
      case 'duplicates':
        if (table) await this.postDuplicates(table, message.requestId, message.threshold);
        return;
      case 'histogram': {
        if (!table) return;
        const all = message.query.mode === 'errors' ? [] : table.histogram({ ...this.filterOf(message.query), errors: 'exclude' });
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
      case 'map':
        if (table) await this.runMap(table, message.requestId);
        else this.post({ type: 'mapEnded', requestId: message.requestId, generation: this.generation, status: 'failed', message: 'Scan the folder first: the map shows the scan’s images' });
        return;
      case 'cancelMap':
        if (this.mapJob?.requestId === message.requestId) this.mapJob.controller.abort();
        return;
      case 'mapSelection': {
        if (!table) return;
        const rows = message.rows ? [...new Set(message.rows.filter((r) => r < table.size))] : [];
        this.mapSelection = rows.length > 0 ? rows : undefined;
        this.suspectsMemo = undefined;
        this.post({ type: 'mapSelection', generation: this.generation, count: rows.length });
        return;
      }
    }
  }

  /** The table filter of a query, restricted to the Map selection when there is one. */
  private filterOf(query: DatasetQueryDto): TableFilter {
    const filter = tableFilter(query);
    if (this.mapSelection) filter.rows = this.mapSelection;
    return filter;
  }

  /**
   * The Map tab's points: the worker projects the stored embeddings (PCA, then UMAP) on a thread of its own;
   * each answer is posted with its colourings as it comes. Replies for a superseded request or an older table are
   * dropped here, so the webview only ever hears about its latest request.
   */
  private async runMap(table: ResultTable, requestId: number): Promise<void> {
    this.mapJob?.controller.abort();
    const job = { requestId, controller: new AbortController() };
    this.mapJob = job;
    const generation = this.generation;
    const current = () => this.mapJob === job && generation === this.generation && !this.disposed;
    const ended = (status: 'done' | 'cancelled' | 'failed', message?: string) => current() && this.post({ type: 'mapEnded', requestId, generation, status, ...(message ? { message } : {}) });
    const cacheFile = this.deps.cacheFile;
    if (!cacheFile) return void ended('failed', 'This view has no scan cache, so it has no stored embeddings to map');
    let details: Promise<MapDetails> | undefined;
    let delivered = Promise.resolve();
    const send = (answer: ProjectionAnswer) => {
      delivered = delivered.then(async () => {
        details ??= this.mapDetails(table, answer.rows);
        const d = await details;
        if (current()) this.post({ type: 'mapPoints', requestId, generation, map: { method: answer.method, rows: Array.from(answer.rows), points: Array.from(answer.points), ...d } });
      });
      return delivered;
    };
    try {
      const result = await this.deps.inference.call(
        'project',
        { resultsFile: table.file, cacheFile, methods: ['pca', 'umap'], seed: MAP_SEED },
        {
          lane: this.lane,
          signal: job.controller.signal,
          timeoutMs: 0,
          onProgress: (event) => {
            if (!current()) return;
            if (event.kind === 'projection') this.post({ type: 'mapProgress', requestId, generation, phase: event.progress.phase, done: event.progress.done, total: event.progress.total });
            else if (event.kind === 'projectionPoints') void send(event.answer);
          },
        },
      );
      await send(result);
      ended('done');
    } catch (err) {
      if (isInferenceError(err, 'CANCELLED') || job.controller.signal.aborted) return void ended('cancelled');
      const message = err instanceof Error ? err.message : String(err);
      this.deps.log.warn(`dataset view: map: ${message}`);
      ended('failed', message);
    } finally {
      if (this.mapJob === job) this.mapJob = undefined;
    }
  }

  /** Per point: its path (relative to the dataset folder) and its folder, top-1 label and suspect status. */
  private async mapDetails(table: ResultTable, rows: ArrayLike<number>): Promise<MapDetails> {
    await this.labelCheck.update(table);
    const suspects = this.labelCheck.suspectMask(table.size);
    const paths: string[] = [];
    const folder = new Categories();
    const label = new Categories();
    const suspect: number[] = [];
    for await (const row of readRows(table, rows)) {
      const shown = displayPath(row.image);
      const relative = path.relative(this.folder, shown);
      paths.push(relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : shown);
      folder.add(row.folderLabel ?? '(root)');
      label.add(row.top?.[0]?.label);
      suspect.push(suspects[row.row] === 1 ? 0 : 1);
    }
    const colourings: MapColouringDto[] = [
      { key: 'folder', title: 'Folder', ...folder.dto() },
      { key: 'label', title: 'Top-1 label', ...label.dto() },
      { key: 'suspect', title: 'Suspect', names: ['suspect', 'not suspect'], values: suspect },
    ];
    return { paths, colourings };
  }

  /** Row ids for a view's query, in its order. Suspects: the ranked suspects that also pass the filter. */
  private async idsFor(table: ResultTable, query: DatasetQueryDto): Promise<Int32Array> {
    const filter = this.filterOf(query);
    if (query.rowSet !== undefined) {
      const set = this.rowSets.get(query.rowSet);
      // Row sets live only while the extension runs (and only the last few): say so rather than show all rows.
      if (!set) throw new Error('this result is no longer held; run Find Similar again, or clear it');
      // A Map selection and a row set both restrict the rows: the set's order, the selection's members.
      const selected = filter.rows ? new Set(filter.rows) : undefined;
      filter.rows = selected ? set.rows.filter((row) => selected.has(row)) : set.rows;
    }
    if (query.mode !== 'suspects') return this.sortedIds(table, filter, query.sort);
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
      ids = (await this.sortedIds(table, filter, query.sort)).filter((row) => suspects[row] === 1);
    }
    this.suspectsMemo = { key, ids };
    return ids;
  }

  /** The table's sorts, plus uniqueness (held here, not in the table) and 'given' without a row set (file order). */
  private async sortedIds(table: ResultTable, filter: TableFilter, sort: DatasetQueryDto['sort']): Promise<Int32Array> {
    if (sort.key === 'given' && !filter.rows) return table.ids(filter, { key: 'order', descending: sort.descending });
    if (sort.key !== 'uniqueness') return table.ids(filter, sort as { key: Exclude<DatasetQueryDto['sort']['key'], 'uniqueness'>; descending: boolean });
    const values = await this.uniquenessValues();
    const key = JSON.stringify([filter, sort.descending, table.size]);
    if (this.uniquenessMemo?.key === key) return this.uniquenessMemo.ids;
    const ids = await table.ids(filter, { key: filter.rows ? 'given' : 'order' });
    const sign = sort.descending ? -1 : 1;
    const valueOf = (row: number) => (row < values.length ? values[row] : Number.NaN);
    // Rows without an embedding (NaN) last either way; ties in file order.
    const sorted = Int32Array.from(ids).sort((a, b) => {
      const va = valueOf(a);
      const vb = valueOf(b);
      if (Number.isNaN(va) || Number.isNaN(vb)) return Number.isNaN(va) === Number.isNaN(vb) ? a - b : Number.isNaN(va) ? 1 : -1;
      return va === vb ? a - b : sign * (va - vb);
    });
    this.uniquenessMemo = { key, ids: sorted };
    return sorted;
  }

  private async uniquenessValues(): Promise<Float32Array> {
    if (this.uniquenessByRow) return this.uniquenessByRow;
    if (!this.similarity) throw new Error('this view has no embeddings to rank by uniqueness');
    this.uniquenessByRow = await this.similarity.uniqueness();
    return this.uniquenessByRow;
  }

  private async findSimilar(query: { row: number } | { file: string }, name: string): Promise<number> {
    if (!this.similarity || !this.table) throw new Error('this view has no embeddings to search');
    const generation = this.generation;
    const found = await this.similarity.similar(query, this.deps.similarTopK?.() ?? 24);
    if (generation !== this.generation) return 0;
    this.postRowSet({ kind: 'similar', label: `Similar to ${name}`, rows: found.map((n) => n.row), similarity: new Map(found.map((n) => [n.row, n.similarity])) });
    return found.length;
  }

  private postRowSet(set: RowSet): void {
    const id = this.nextRowSet++;
    this.rowSets.set(id, set);
    while (this.rowSets.size > MAX_ROW_SETS) this.rowSets.delete(this.rowSets.keys().next().value as number);
    this.lastRowSet = { id, kind: set.kind, label: set.label, count: set.rows.length };
    this.post({ type: 'rowSet', generation: this.generation, set: this.lastRowSet });
  }

  private async postDuplicates(table: ResultTable, requestId: number, threshold: number): Promise<void> {
    if (!this.similarity) throw new Error('this view has no embeddings to compare');
    const generation = this.generation;
    const found = await this.similarity.duplicates(threshold);
    if (generation !== this.generation) return;
    const splits = this.similarityState.splits;
    const groups: DuplicateGroupDto[] = [];
    let leakage = 0;
    // Largest first, exact before near at equal size: what a user cleans up first.
    const ordered = [...found].sort((a, b) => b.rows.length - a.rows.length || (a.kind === b.kind ? b.similarity - a.similarity : a.kind === 'exact' ? -1 : 1));
    for (const g of ordered) {
      const records = await table.read(g.rows);
      const images = records.map((r) => r.image);
      const inSplits = [...new Set(images.map((image) => splitOf(this.folder, image, splits)).filter(Boolean))].sort();
      const leak = inSplits.length >= 2;
      if (leak) leakage++;
      if (groups.length < MAX_GROUPS_SENT) groups.push({ kind: g.kind, similarity: g.similarity, rows: records.map((r) => r.row), images: images.map(displayPath), splits: inSplits, leakage: leak });
    }
    this.post({ type: 'duplicates', requestId, generation, threshold, groups, total: found.length, leakage });
  }

  private postSimilarity(state: SimilarityStateDto): void {
    this.similarityState = state;
    this.post({ type: 'similarity', generation: this.generation, state });
  }

  private forgetSimilarity(): void {
    this.similarity?.invalidate();
    this.rowSets.clear();
    this.lastRowSet = undefined;
    this.uniquenessByRow = undefined;
    this.uniquenessMemo = undefined;
    this.similarityState = { ...this.similarityState, status: 'unavailable', images: 0, missing: 0 };
  }

  private rowDto(row: TableRow, set?: RowSet): DatasetRowDto {
    const image = displayPath(row.image);
    const check = this.labelCheck.checkOf(row);
    const similarity = set?.similarity?.get(row.row);
    const uniqueness = this.uniquenessByRow && row.row < this.uniquenessByRow.length ? this.uniquenessByRow[row.row] : Number.NaN;
    return {
      row: row.row,
      image,
      name: path.basename(image),
      folder: row.folder,
      folderLabel: row.folderLabel,
      ...(row.top ? { top: row.top } : {}),
      ...(row.error !== undefined ? { error: row.error, ...(row.errorCode ? { errorCode: row.errorCode } : {}) } : {}),
      ...(check ? { check } : {}),
      ...(row.flags ? { flags: row.flags } : {}),
      ...(similarity !== undefined ? { similarity } : {}),
      ...(Number.isFinite(uniqueness) ? { uniqueness } : {}),
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
      info: { generation: this.generation, title: this.title, folder: this.folder, rows: table?.size ?? 0, errors, folders: table?.folders() ?? [], flagCounts: table?.flagCounts() ?? [] },
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
  if (f.flags?.length) filter.flags = f.flags;
  if (query.mode === 'errors') filter.errors = 'only';
  return filter;
}

/** The scanned folder's subfolders (where split folders would be); none when it cannot be read. */
async function topLevelFolders(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

type MapDetails = Pick<MapPointsDto, 'paths' | 'colourings'>;

/** Names to small indices, in the order met; undefined is "none" (-1). */
class Categories {
  private readonly index = new Map<string, number>();
  readonly values: number[] = [];

  add(name: string | undefined): void {
    if (name === undefined) {
      this.values.push(-1);
      return;
    }
    let i = this.index.get(name);
    if (i === undefined) this.index.set(name, (i = this.index.size));
    this.values.push(i);
  }

  dto(): { names: string[]; values: number[] } {
    return { names: [...this.index.keys()], values: this.values };
  }
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
