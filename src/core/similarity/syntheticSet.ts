/**
 * Synthetic clustered embeddings for the similarity benchmarks and tests: vectors around random centres, the shape
 * real embeddings have (classes, near copies), where uniform noise would make every neighbour equally far.
 * Seeded, so a failing test or a benchmark figure reproduces.
 */
import { EmbeddingSet } from './embeddingSet';

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal by Box–Muller. */
export function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
}

export interface ClusteredOptions {
  count: number;
  dim: number;
  clusters: number;
  /** Standard deviation of each coordinate around its centre (centres are standard normal). */
  spread: number;
  seed: number;
}

/** Row-major [count, dim]; row i belongs to cluster i % clusters. Not normalised. */
export function clusteredVectors(options: ClusteredOptions): Float32Array {
  const { count, dim, clusters, spread } = options;
  const next = seededRandom(options.seed);
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = gaussian(next);
  const out = new Float32Array(count * dim);
  for (let row = 0; row < count; row++) {
    const c = (row % clusters) * dim;
    for (let i = 0; i < dim; i++) out[row * dim + i] = centres[c + i] + spread * gaussian(next);
  }
  return out;
}

/**
 * An EmbeddingSet of clustered vectors without building one entry object per row (100,000 of them would be the
 * benchmark's largest cost): rows normalised in place, hashes `h<row>`, all under one root.
 */
export function clusteredSet(options: ClusteredOptions): EmbeddingSet {
  const { count, dim } = options;
  const vectors = clusteredVectors(options);
  for (let row = 0; row < count; row++) {
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += vectors[row * dim + i] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < dim; i++) vectors[row * dim + i] /= norm;
  }
  return {
    dim,
    count,
    vectors,
    images: Array.from({ length: count }, (_, row) => `synthetic/${row}.png`),
    hashes: Array.from({ length: count }, (_, row) => `h${row}`),
    roots: new Uint16Array(count),
    rootNames: ['synthetic'],
  };
}
