/**
 * One dataset view's similarity features on the extension host: the handle of its embeddings in the inference
 * worker (loaded once per table, again after a model change or a worker restart), and what the view needs of
 * them — neighbours, duplicate groups, uniqueness — as results-table row ids. No vectors come to the host;
 * uniqueness is one float per row (400 KB for 100,000 images).
 */
import * as path from 'node:path';
import { InferenceService, isInferenceError } from '../inference/inferenceClient';
import type { DatasetDuplicateGroup, DatasetEmbeddingsInfo, ProgressEvent, SimilarImage } from '../worker/workerProtocol';

export interface DatasetSimilarityDeps {
  inference: Pick<InferenceService, 'call'>;
  resultsFile: string;
  cacheFile: string;
  /** Where the similarity index is persisted: beside the results file. */
  indexFile: string;
  lane: string;
  onProgress?: (event: ProgressEvent) => void;
}

/**
 * Names of subfolders that are dataset splits. The view checks leakage across the scanned folder's top-level
 * subfolders when at least two of them are named like this (ImageFolder's class folders are not splits: a
 * near-duplicate across two classes is a labelling question, not leakage).
 */
const SPLIT_NAMES = new Set(['train', 'training', 'val', 'valid', 'validation', 'dev', 'test', 'testing', 'eval', 'evaluation', 'holdout']);

/** The split folders of a dataset: its top-level subfolders, when at least two are named like splits. */
export function splitFolders(topLevel: readonly string[]): string[] {
  const splits = topLevel.filter((name) => SPLIT_NAMES.has(name.toLowerCase()));
  return splits.length >= 2 ? [...splits].sort() : [];
}

/** The split an image is in ('' when none): the first path component under the scanned folder. */
export function splitOf(folder: string, image: string, splits: readonly string[]): string {
  const first = path.relative(folder, image).split(/[\\/]/)[0];
  return splits.includes(first) ? first : '';
}

export class DatasetSimilarity {
  private loading?: Promise<DatasetEmbeddingsInfo>;
  private uniquenessValues?: Promise<Float32Array>;
  private disposed = false;

  constructor(private readonly deps: DatasetSimilarityDeps) {}

  /** The table changed (a new scan, rows appended): what the worker holds is for other rows. */
  invalidate(): void {
    const loading = this.loading;
    this.loading = undefined;
    this.uniquenessValues = undefined;
    void loading?.then(
      (info) => this.deps.inference.call('releaseEmbeddings', { handle: info.handle }, { lane: this.deps.lane }).catch(() => undefined),
      () => undefined,
    );
  }

  dispose(): void {
    this.disposed = true;
    this.invalidate();
  }

  /** Loads the embeddings (once per table); rejects with the worker's reason. */
  info(): Promise<DatasetEmbeddingsInfo> {
    if (this.disposed) return Promise.reject(new Error('the dataset view was closed'));
    const loading = (this.loading ??= this.deps.inference.call(
      'loadEmbeddings',
      { resultsFile: this.deps.resultsFile, cacheFile: this.deps.cacheFile, indexFile: this.deps.indexFile },
      { lane: this.deps.lane, onProgress: this.deps.onProgress },
    ));
    // A failed load is not remembered: the next request tries again (the model may have come back).
    loading.catch(() => {
      if (this.loading === loading) this.loading = undefined;
    });
    return loading;
  }

  similar(query: { row: number } | { file: string }, k: number): Promise<SimilarImage[]> {
    return this.withHandle((handle) => this.deps.inference.call('similarImages', { handle, query, k }, { lane: this.deps.lane }));
  }

  duplicates(threshold: number, signal?: AbortSignal): Promise<DatasetDuplicateGroup[]> {
    return this.withHandle((handle) => this.deps.inference.call('duplicateGroups', { handle, threshold }, { lane: this.deps.lane, signal, onProgress: this.deps.onProgress }));
  }

  /** Uniqueness by table row (NaN: no embedding), once per table. */
  uniqueness(): Promise<Float32Array> {
    const values = (this.uniquenessValues ??= this.withHandle((handle) => this.deps.inference.call('uniqueness', { handle }, { lane: this.deps.lane })));
    values.catch(() => {
      if (this.uniquenessValues === values) this.uniquenessValues = undefined;
    });
    return values;
  }

  /** The worker drops every handle when the model changes or it restarts: load again once, then retry. */
  private async withHandle<T>(fn: (handle: string) => Promise<T>): Promise<T> {
    const { handle } = await this.info();
    try {
      return await fn(handle);
    } catch (err) {
      if (!isInferenceError(err, 'EMBEDDINGS_GONE') && !isInferenceError(err, 'WORKER_CRASHED')) throw err;
      if (this.loading && (await this.loading.catch(() => undefined))?.handle === handle) this.loading = undefined;
      this.uniquenessValues = undefined;
      return fn((await this.info()).handle);
    }
  }
}
