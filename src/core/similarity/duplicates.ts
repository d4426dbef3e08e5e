/**
 * Exact and near duplicates, and the split leakage they reveal.
 *
 * Exact duplicates share a content hash. Near duplicates are the connected components of the graph linking two
 * images whose embeddings have cosine ≥ threshold (union-find over each image's neighbours above it), as
 * FiftyOne's compute_near_duplicates and cleanlab's near_duplicate check do. Groups partition the images they
 * hold: a component with one content hash is an 'exact' group, one with several is 'near' (its exact copies
 * included). A group whose images were found under two or more scan roots (train/ and val/, say) is leakage.
 */
import { BeitLensError } from '../errors';
import { EmbeddingSet } from './embeddingSet';
import { nextTurn, SimilarityIndex } from './search';
import { dot } from './vectorMath';

/**
 * Provisional: chosen without the real checkpoint (not available offline where this was written). Recompressed,
 * resized and lightly blurred copies of one photo typically keep a pooled-output cosine above 0.95 on ViT-family
 * models, while distinct photos of one class sit lower; FiftyOne's default (cosine distance 0.2 on mean-centred
 * embeddings) is looser because centring removes the common component our uncentred cosine keeps.
 * bench/duplicateThreshold.ts measures the two distributions on a folder with a real model; rerun it and
 * update this value and the README together.
 */
export const DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.95;

export interface DuplicateGroup {
  kind: 'exact' | 'near';
  /** Lowest cosine between two of the group's images; 1 for an exact group. */
  similarity: number;
  /** Rows of the set, ascending. */
  rows: number[];
  /** The scan roots (indices into the set's rootNames) its rows came from, ascending. */
  roots: number[];
  /** Spans two or more roots: the same picture in two splits. */
  leakage: boolean;
}

export interface DuplicateOptions {
  /** Cosine at or above which two images are near duplicates (0 < T ≤ 1). */
  threshold?: number;
  signal?: AbortSignal;
  onProgress?(done: number, total: number): void;
}

/** Above this many distinct images in one group, the lowest pairwise cosine is not computed pair by pair. */
const MAX_PAIRWISE_GROUP = 1000;
/** Neighbours asked of the approximate index per image at first; doubled while they are all above the threshold. */
const FIRST_NEIGHBOURS = 16;
/** The most neighbours asked per image: bounds the time a pathological set (thousands of copies) can take. */
const MAX_NEIGHBOURS = 4096;
const YIELD_EVERY = 64;

export async function findDuplicates(set: EmbeddingSet, index: SimilarityIndex, options: DuplicateOptions = {}): Promise<DuplicateGroup[]> {
  const threshold = options.threshold ?? DEFAULT_NEAR_DUPLICATE_THRESHOLD;
  if (!(threshold > 0 && threshold <= 1)) throw new BeitLensError('CONFIG_INVALID', `duplicate threshold ${threshold} is not a cosine in (0, 1]`);
  if (index.set !== set) throw new BeitLensError('INTERNAL', 'findDuplicates: the index was opened on another set');
  const cancelled = () => new BeitLensError('CANCELLED', 'finding duplicates cancelled');
  const { count, dim, vectors, hashes } = set;

  const parent = new Int32Array(count);
  for (let i = 0; i < count; i++) parent[i] = i;
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };

  // Exact copies first; then one representative per content hash is enough for the embedding links.
  const firstOfHash = new Map<string, number>();
  const representatives: number[] = [];
  for (let row = 0; row < count; row++) {
    const first = firstOfHash.get(hashes[row]);
    if (first === undefined) {
      firstOfHash.set(hashes[row], row);
      representatives.push(row);
    } else union(first, row);
  }

  const total = representatives.length;
  if (!index.approximate) {
    // Every pair, once: exact, and cheaper than count neighbour queries over the same rows.
    for (let a = 0; a < total; a++) {
      if (a % YIELD_EVERY === 0) {
        if (options.signal?.aborted) throw cancelled();
        options.onProgress?.(a, total);
        await nextTurn();
      }
      const ra = representatives[a];
      for (let b = a + 1; b < total; b++) {
        const rb = representatives[b];
        if (dot(vectors, ra * dim, vectors, rb * dim, dim) >= threshold) union(ra, rb);
      }
    }
  } else {
    for (let a = 0; a < total; a++) {
      if (a % YIELD_EVERY === 0) {
        if (options.signal?.aborted) throw cancelled();
        options.onProgress?.(a, total);
        await nextTurn();
      }
      const row = representatives[a];
      for (let k = FIRST_NEIGHBOURS; ; k *= 2) {
        const neighbours = index.neighboursOf(row, Math.min(k, count - 1));
        for (const n of neighbours) if (n.similarity >= threshold) union(row, n.row);
        const last = neighbours[neighbours.length - 1];
        if (!last || last.similarity < threshold || neighbours.length < k || k >= MAX_NEIGHBOURS) break;
      }
    }
  }
  options.onProgress?.(total, total);

  const members = new Map<number, number[]>();
  for (let row = 0; row < count; row++) {
    const root = find(row);
    let list = members.get(root);
    if (!list) members.set(root, (list = []));
    list.push(row);
  }
  const groups: DuplicateGroup[] = [];
  for (const rows of members.values()) {
    if (rows.length < 2) continue;
    const distinct = rows.filter((row) => firstOfHash.get(hashes[row]) === row);
    const roots = [...new Set(rows.map((row) => set.roots[row]))].sort((a, b) => a - b);
    groups.push({
      kind: distinct.length === 1 ? 'exact' : 'near',
      similarity: distinct.length === 1 ? 1 : lowestCosine(set, distinct, threshold),
      rows,
      roots,
      leakage: roots.length > 1,
    });
  }
  // Exact groups first, then near ones from the tightest down; larger groups first among equals.
  const kindOrder = (g: DuplicateGroup) => (g.kind === 'exact' ? 0 : 1);
  return groups.sort((a, b) => kindOrder(a) - kindOrder(b) || b.similarity - a.similarity || b.rows.length - a.rows.length || a.rows[0] - b.rows[0]);
}

/**
 * The lowest cosine between two distinct images of a group. Chained links can put it below the threshold, which
 * is why it is reported. For very large groups the exact minimum (quadratic) is replaced by the lowest cosine
 * to the group's first image, an upper bound on it, to keep the pass bounded.
 */
function lowestCosine(set: EmbeddingSet, distinct: readonly number[], threshold: number): number {
  const { dim, vectors } = set;
  let lowest = Infinity;
  if (distinct.length <= MAX_PAIRWISE_GROUP) {
    for (let a = 0; a < distinct.length; a++) {
      for (let b = a + 1; b < distinct.length; b++) lowest = Math.min(lowest, dot(vectors, distinct[a] * dim, vectors, distinct[b] * dim, dim));
    }
  } else {
    for (let b = 1; b < distinct.length; b++) lowest = Math.min(lowest, dot(vectors, distinct[0] * dim, vectors, distinct[b] * dim, dim));
  }
  return Number.isFinite(lowest) ? Math.min(1, lowest) : threshold;
}
