/**
 * Nearest neighbours in an EmbeddingSet. Small sets are searched exactly (a matrix-vector product over the unit
 * rows, top-k by partial selection); above EXACT_SEARCH_MAX_ROWS an approximate index proposes candidates and
 * every one is re-ranked here with the exact cosine, so a reported similarity is always exact whichever path
 * found it. The approximate index may miss a true neighbour (its recall is measured in bench/), never misreport one.
 */
import { BeitLensError } from '../errors';
import { EmbeddingSet } from './embeddingSet';
import { dot, TopK, unitVector } from './vectorMath';

export interface Neighbour {
  row: number;
  /** Exact cosine between the query and the row. */
  similarity: number;
}

export interface SearchOptions {
  /** Rows whose content hash is listed are left out (the query's own file, found by content, when it lies in the set). */
  excludeHashes?: ReadonlySet<string>;
  /** Rows left out by number. */
  excludeRows?: ReadonlySet<number>;
}

export interface OpenOptions {
  /** Where the approximate index is persisted (beside the dataset's store); unused while the set is searched exactly. */
  indexFile?: string;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
  /** A persisted index that could not be used (truncated, corrupt, built from other embeddings) and was rebuilt. */
  onWarning?(message: string): void;
  /** Force a path regardless of the set's size (tests and benchmarks compare the two). */
  mode?: 'exact' | 'approximate';
}

/**
 * Up to this many rows, exact search is used: one query is a 768-float dot product per row, and a whole-set
 * pass (duplicates, uniqueness) is count² of them. The figure is measured (bench/similarity.ts).
 */
export const EXACT_SEARCH_MAX_ROWS = 4096;

/** Proposes candidate rows for a query; the approximate index implements it. */
export interface CandidateSource {
  /** Up to `k` candidate rows for a unit query, best first by the source's own (approximate) measure. */
  candidates(query: Float32Array, k: number): number[];
  close(): void;
}

export class SimilarityIndex {
  private closed = false;

  private constructor(
    readonly set: EmbeddingSet,
    private readonly source: CandidateSource | undefined,
  ) {}

  static async open(set: EmbeddingSet, options: OpenOptions = {}): Promise<SimilarityIndex> {
    if (options.signal?.aborted) throw new BeitLensError('CANCELLED', 'opening the similarity index cancelled');
    const approximate = options.mode ? options.mode === 'approximate' : set.count > EXACT_SEARCH_MAX_ROWS;
    if (!approximate) {
      options.onProgress?.(set.count, set.count);
      return new SimilarityIndex(set, undefined);
    }
    // Loaded on demand: exact search must keep working where the native index has no build for the platform.
    const { openApproximateIndex } = await import('./approximateIndex');
    const source = await openApproximateIndex(set, options);
    return new SimilarityIndex(set, source);
  }

  /** Whether candidates come from the approximate index (similarities are exact either way). */
  get approximate(): boolean {
    return this.source !== undefined;
  }

  /** The `k` rows most similar to `query` (any norm, the set's dimension), most similar first. */
  search(query: ArrayLike<number>, k: number, options: SearchOptions = {}): Neighbour[] {
    this.assertOpen();
    if (query.length !== this.set.dim) {
      throw new BeitLensError('MODEL_INVALID', `query has ${query.length} floats, the set's embeddings ${this.set.dim}`);
    }
    const unit = unitVector(query);
    if (!unit) throw new BeitLensError('NON_FINITE_OUTPUT', 'query embedding has no direction (zero or non-finite norm)');
    return this.searchUnit(unit, k, (row) => !options.excludeRows?.has(row) && !options.excludeHashes?.has(this.set.hashes[row]));
  }

  /**
   * The `k` rows most similar to row `row`, the row itself left out. Other rows with the same content hash (exact
   * copies) are kept, at similarity 1: they are real other files and the first thing a user looking for similar
   * images wants to know about.
   */
  neighboursOf(row: number, k: number): Neighbour[] {
    this.assertOpen();
    if (!(row >= 0 && row < this.set.count)) throw new BeitLensError('INTERNAL', `row ${row} is not in the set of ${this.set.count}`);
    const { dim, vectors } = this.set;
    return this.searchUnit(vectors.subarray(row * dim, (row + 1) * dim), k, (r) => r !== row);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.source?.close();
  }

  private searchUnit(unit: Float32Array, k: number, keep: (row: number) => boolean): Neighbour[] {
    const { count, dim, vectors } = this.set;
    const wanted = Math.min(Math.max(0, Math.floor(k)), count);
    if (wanted === 0) return [];
    if (!this.source) {
      const top = new TopK(wanted);
      for (let row = 0; row < count; row++) {
        if (keep(row)) top.push(row, dot(vectors, row * dim, unit, 0, dim));
      }
      return top.sorted();
    }
    // Ask for more than k so that excluded rows and the approximate order's mistakes near the cut still leave k.
    let ask = Math.min(count, wanted * 2 + 16);
    for (;;) {
      const candidates = this.source.candidates(unit, ask);
      const top = new TopK(wanted);
      const seen = new Set<number>();
      let kept = 0;
      for (const row of candidates) {
        if (seen.has(row) || !keep(row)) continue;
        seen.add(row);
        kept++;
        top.push(row, dot(vectors, row * dim, unit, 0, dim));
      }
      if (kept >= wanted || ask >= count || candidates.length < ask) return top.sorted();
      ask = Math.min(count, ask * 4);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new BeitLensError('INTERNAL', 'the similarity index is closed');
  }
}

/** Yields to the event loop so a cancel (or a progress message) can land during a long pass; one home for the batch passes. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
