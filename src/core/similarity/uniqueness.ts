/**
 * Uniqueness per image, as FiftyOne's Brain computes it (voxel51/fiftyone-brain,
 * fiftyone/brain/internal/core/uniqueness.py `_compute_uniqueness`, with the default sklearn similarity backend of
 * fiftyone/brain/internal/core/sklearn.py):
 *
 *   - distance: cosine distance (1 − cos) between embeddings centred on their mean (`_build_dists` /
 *     `_build_neighbors` subtract `embeddings.mean(axis=0)` before the metric, default metric "cosine");
 *   - K = 3 nearest neighbours, weights [0.6, 0.3, 0.1]: `np.mean(dists[:, 1:] * weights, axis=1)`;
 *   - normalised by the maximum over the dataset, so the most unique image scores 1;
 *   - a dataset of K images or fewer scores 1 everywhere.
 *
 * Two notes. FiftyOne centres the raw vectors; an EmbeddingSet holds them L2-normalised, so the mean removed here
 * is the mean of the unit rows (for the layer-normed pooled output, whose norms vary little, the two agree closely).
 * And FiftyOne's `dists[:, 1:]` drops column 0 assuming it is the query itself: true on its nearest-neighbours
 * path (over 15,000 samples), but its precomputed-matrix path (≤ 15,000) fills the diagonal with NaN so column 0 is
 * already the nearest other sample and the first neighbour is dropped instead. We follow the intended definition,
 * the three nearest other images, at every size.
 *
 * Exact over every pair while the set is searched exactly; above that, the three are chosen among the
 * UNIQUENESS_CANDIDATES nearest by the index (uncentred cosine) and ranked by the centred distance.
 */
import { BeitLensError } from '../errors';
import { EmbeddingSet } from './embeddingSet';
import { nextTurn, SimilarityIndex } from './search';
import { dot } from './vectorMath';

export const UNIQUENESS_K = 3;
export const UNIQUENESS_WEIGHTS: readonly number[] = [0.6, 0.3, 0.1];
/** Candidates per image from the approximate index, re-ranked by centred distance. */
export const UNIQUENESS_CANDIDATES = 32;
const YIELD_EVERY = 64;

export interface UniquenessOptions {
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

/** One score per row of the set, in [0, 1]; 1 is the most unique image. */
export async function uniqueness(set: EmbeddingSet, index: SimilarityIndex, options: UniquenessOptions = {}): Promise<Float32Array> {
  if (index.set !== set) throw new BeitLensError('INTERNAL', 'uniqueness: the index was opened on another set');
  const { count, dim, vectors } = set;
  const out = new Float32Array(count);
  if (count <= UNIQUENESS_K) return out.fill(1);
  const cancelled = () => new BeitLensError('CANCELLED', 'computing uniqueness cancelled');

  // Centred cosine from the uncentred dot product: with m the mean row, a_i = v_i·m and s_i = |v_i − m|,
  // cos_c(i, j) = (v_i·v_j − a_i − a_j + m·m) / (s_i s_j). No centred copy of the set is held.
  const mean = new Float64Array(dim);
  for (let row = 0; row < count; row++) for (let i = 0; i < dim; i++) mean[i] += vectors[row * dim + i];
  const m = new Float32Array(dim);
  for (let i = 0; i < dim; i++) m[i] = mean[i] / count;
  const mm = dot(m, 0, m, 0, dim);
  const along = new Float64Array(count);
  const spread = new Float64Array(count);
  for (let row = 0; row < count; row++) {
    along[row] = dot(vectors, row * dim, m, 0, dim);
    spread[row] = Math.sqrt(Math.max(0, 1 - 2 * along[row] + mm));
  }
  const distance = (i: number, j: number, cosine: number): number => {
    const norms = spread[i] * spread[j];
    // sklearn's cosine distance treats a zero vector as orthogonal to everything (distance 1).
    if (!(norms > 1e-12)) return 1;
    return 1 - (cosine - along[i] - along[j] + mm) / norms;
  };

  // The K smallest distances per row, ascending; Infinity while unfilled.
  const nearest = new Float64Array(count * UNIQUENESS_K).fill(Infinity);
  const offer = (row: number, d: number): void => {
    const base = row * UNIQUENESS_K;
    if (d >= nearest[base + UNIQUENESS_K - 1]) return;
    let i = UNIQUENESS_K - 1;
    while (i > 0 && nearest[base + i - 1] > d) {
      nearest[base + i] = nearest[base + i - 1];
      i--;
    }
    nearest[base + i] = d;
  };

  for (let a = 0; a < count; a++) {
    if (a % YIELD_EVERY === 0) {
      if (options.signal?.aborted) throw cancelled();
      options.onProgress?.(a, count);
      await nextTurn();
    }
    if (!index.approximate) {
      for (let b = a + 1; b < count; b++) {
        const d = distance(a, b, dot(vectors, a * dim, vectors, b * dim, dim));
        offer(a, d);
        offer(b, d);
      }
    } else {
      for (const n of index.neighboursOf(a, UNIQUENESS_CANDIDATES)) offer(a, distance(a, n.row, n.similarity));
    }
  }
  options.onProgress?.(count, count);

  let max = 0;
  for (let row = 0; row < count; row++) {
    let weighted = 0;
    for (let k = 0; k < UNIQUENESS_K; k++) weighted += nearest[row * UNIQUENESS_K + k] * UNIQUENESS_WEIGHTS[k];
    out[row] = weighted / UNIQUENESS_K;
    if (out[row] > max) max = out[row];
  }
  // All images identical: FiftyOne would divide by zero (NaN); nothing stands out, so every score is 0.
  if (max > 0) for (let row = 0; row < count; row++) out[row] /= max;
  return out;
}
