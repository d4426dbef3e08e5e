/**
 * The map's two projections of an embedding matrix to 2-D: PCA (a second or two, shown at once) and UMAP (a
 * minute or two for 100,000 points; umap-learn's usual recipe of PCA to 50 dimensions first, which keeps the
 * neighbour search affordable and drops the noise directions).
 */
import { pcaFit, pcaProject } from './pca';
import { umapLayout } from './umap';

export type ProjectionMethod = 'pca' | 'umap';

export interface ProjectionProgress {
  phase: 'pca' | 'neighbours' | 'layout';
  done: number;
  total: number;
}

export interface ProjectionOptions {
  method: ProjectionMethod;
  seed?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ProjectionProgress) => void;
}

/**
 * Rows the PCA directions are fitted on. The top directions of 5,000 rows of a clustered embedding are those of
 * the whole set to |cos| > 0.99 (bench/projection.ts measures it against the exact PCA); fitting on more only
 * costs time. UMAP's PCA-50 needs one power iteration: it only has to keep the neighbourhoods, not order the
 * fiftieth direction exactly.
 */
export const VIEW_SAMPLE_ROWS = 5_000;

/** UMAP's input dimension: umap-learn's documentation recommends PCA to about 50 first. */
export const UMAP_INPUT_DIM = 50;

/** Row-major [count, 2] points for row-major [count, dim] `vectors`. */
export function projectEmbeddings(vectors: Float32Array, count: number, dim: number, options: ProjectionOptions): Float32Array {
  const { seed, signal, onProgress } = options;
  onProgress?.({ phase: 'pca', done: 0, total: 1 });
  if (options.method === 'pca') {
    const fit = pcaFit(vectors, count, dim, { components: 2, seed, signal, sampleRows: VIEW_SAMPLE_ROWS });
    const points = pcaProject(fit, vectors, count);
    onProgress?.({ phase: 'pca', done: 1, total: 1 });
    return points;
  }
  let input = vectors;
  let inputDim = dim;
  if (dim > UMAP_INPUT_DIM && count > UMAP_INPUT_DIM) {
    input = pcaProject(pcaFit(vectors, count, dim, { components: UMAP_INPUT_DIM, seed, signal, sampleRows: VIEW_SAMPLE_ROWS, powerIterations: 1 }), vectors, count);
    inputDim = UMAP_INPUT_DIM;
  }
  onProgress?.({ phase: 'pca', done: 1, total: 1 });
  return umapLayout(input, count, inputDim, { seed, signal, onProgress: (phase, done, total) => onProgress?.({ phase, done, total }) });
}
