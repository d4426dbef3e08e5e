/**
 * A dataset's embeddings and similarity index inside the inference worker, behind a handle (as explanations
 * are): 100,000 × 768 floats (300 MB) stay here, and the extension host sends row ids and gets row ids back.
 *
 * Rows on the wire are the results table's row ids (what the dataset view names); the EmbeddingSet has only
 * the rows with an embedding, so each handle maps between the two.
 */
import type { BeitModel } from '../../core/beitModel';
import { BeitLensError } from '../../core/errors';
import { loadDatasetEmbeddings } from '../../core/similarity/datasetEmbeddings';
import { findDuplicates } from '../../core/similarity/duplicates';
import type { EmbeddingSet } from '../../core/similarity/embeddingSet';
import { embeddingRow } from '../../core/similarity/embeddingSet';
import { SimilarityIndex } from '../../core/similarity/search';
import { uniqueness } from '../../core/similarity/uniqueness';
import type { DatasetDuplicateGroup, DatasetEmbeddingsInfo, SimilarImage } from './workerProtocol';

export class EmbeddingsGoneError extends Error {
  readonly code = 'EMBEDDINGS_GONE';
  constructor() {
    super('the dataset embeddings are no longer in memory; they will be loaded again');
  }
}

interface Entry {
  set: EmbeddingSet;
  index: SimilarityIndex;
  /** Table row id of each set row. */
  rowOfEntry: Int32Array;
  /** Set row of each table row id (-1: no embedding). */
  entryOfRow: Int32Array;
  entryOfImage?: Map<string, number>;
  uniqueness?: Promise<Float32Array>;
}

/** Datasets held at once (one per open Dataset view, usually); the oldest goes first. */
const MAX_DATASETS = 4;

export class DatasetEmbeddingsHandles {
  private readonly entries = new Map<string, Entry>();
  private nextHandle = 1;

  async load(
    model: BeitModel,
    args: { resultsFile: string; cacheFile: string; indexFile?: string; modelKey: string },
    ctx: { signal: AbortSignal; onProgress?: (done: number, total: number) => void; onWarning?: (message: string) => void },
  ): Promise<DatasetEmbeddingsInfo> {
    const loaded = await loadDatasetEmbeddings({ resultsFile: args.resultsFile, cacheFile: args.cacheFile, modelKey: args.modelKey, dim: model.embeddingSize });
    const { set, rowOfEntry } = loaded;
    const index = await SimilarityIndex.open(set, { indexFile: args.indexFile, signal: ctx.signal, onProgress: ctx.onProgress, onWarning: ctx.onWarning });
    let rows = 0;
    for (const r of rowOfEntry) rows = Math.max(rows, r + 1);
    const entryOfRow = new Int32Array(rows).fill(-1);
    rowOfEntry.forEach((row, entry) => (entryOfRow[row] = entry));
    const handle = `${process.pid}-emb-${this.nextHandle++}`;
    this.entries.set(handle, { set, index, rowOfEntry, entryOfRow });
    while (this.entries.size > MAX_DATASETS) this.release(this.entries.keys().next().value as string);
    return { handle, images: set.count, missing: loaded.missing.length, dim: set.dim, missingExamples: loaded.missing.slice(0, 5) };
  }

  /**
   * Neighbours of a table row, or of any image file (embedded with the worker's model: it may lie outside the
   * scanned folder). The query itself is left out when it is one of the rows.
   */
  async similar(model: BeitModel, handle: string, query: { row: number } | { file: string }, k: number): Promise<SimilarImage[]> {
    const e = this.entry(handle);
    let vector: Float32Array;
    let self = -1;
    if ('row' in query) {
      self = query.row < e.entryOfRow.length ? e.entryOfRow[query.row] : -1;
      if (self < 0) throw new RangeError(`row ${query.row} has no embedding (an error row, or not scanned with this model)`);
      vector = embeddingRow(e.set, self);
    } else {
      e.entryOfImage ??= new Map(e.set.images.map((image, i) => [image, i]));
      self = e.entryOfImage.get(query.file) ?? -1;
      if (self >= 0) vector = embeddingRow(e.set, self);
      else {
        const [result] = await model.embedFiles([query.file]);
        // The result's error already names the file.
        if (!result.embedding) throw new BeitLensError(result.code ?? 'IMAGE_DECODE', result.error ?? `${query.file}: could not be embedded`);
        vector = result.embedding;
      }
    }
    const found = self >= 0 ? e.index.neighboursOf(self, k) : e.index.search(vector, k);
    return found.filter((n) => n.row !== self).slice(0, k).map((n) => ({ row: e.rowOfEntry[n.row], similarity: n.similarity }));
  }

  async duplicates(handle: string, threshold: number, ctx: { signal: AbortSignal; onProgress?: (done: number, total: number) => void }): Promise<DatasetDuplicateGroup[]> {
    const e = this.entry(handle);
    const groups = await findDuplicates(e.set, e.index, { threshold, signal: ctx.signal, onProgress: ctx.onProgress });
    return groups.map((g) => ({ kind: g.kind, similarity: g.similarity, rows: g.rows.map((r) => e.rowOfEntry[r]) }));
  }

  /** Uniqueness of each table row (NaN: no embedding), computed once per handle. */
  async uniqueness(handle: string, ctx: { signal: AbortSignal }): Promise<Float32Array> {
    const e = this.entry(handle);
    e.uniqueness ??= uniqueness(e.set, e.index, { signal: ctx.signal }).then((values) => {
      const byRow = new Float32Array(e.entryOfRow.length).fill(Number.NaN);
      values.forEach((v, entry) => (byRow[e.rowOfEntry[entry]] = v));
      return byRow;
    });
    try {
      return await e.uniqueness;
    } catch (err) {
      e.uniqueness = undefined;
      throw err;
    }
  }

  release(handle: string): void {
    const e = this.entries.get(handle);
    if (!e) return;
    this.entries.delete(handle);
    e.index.close();
  }

  clear(): void {
    for (const handle of [...this.entries.keys()]) this.release(handle);
  }

  private entry(handle: string): Entry {
    const e = this.entries.get(handle);
    if (!e) throw new EmbeddingsGoneError();
    return e;
  }
}
