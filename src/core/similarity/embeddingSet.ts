/**
 * The embeddings of one dataset as every similarity feature reads them: search, duplicates, uniqueness and the
 * map all take an EmbeddingSet, whoever built it (the CLI from a scan, the worker from a results file).
 *
 * Rows are L2-normalised once here, so a cosine is a dot product everywhere downstream and no consumer
 * normalises again (or forgets to). Images without an embedding (decode errors) are not rows at all: an
 * all-zero row would be "similar" to nothing yet still take part in neighbour counts.
 */
import { BeitLensError } from '../errors';

export interface EmbeddingSet {
  /** Floats per embedding (the model's hidden size). */
  readonly dim: number;
  /** Rows. */
  readonly count: number;
  /** Row-major [count, dim]; every row has unit L2 norm. */
  readonly vectors: Float32Array;
  /** The image of each row, as the scan reported it. */
  readonly images: readonly string[];
  /** sha256 (hex) of each row's file content: equal hashes are exact duplicates. */
  readonly hashes: readonly string[];
  /** Which scan root (index into `rootNames`) each row was found under: groups spanning two roots are leakage. */
  readonly roots: Uint16Array;
  /** The root arguments, as given. */
  readonly rootNames: readonly string[];
}

export interface EmbeddingEntry {
  image: string;
  hash: string;
  root: number;
  embedding: Float32Array;
}

/** Builds a set from entries in the order given; a zero or non-finite embedding is refused naming its image. */
export function embeddingSetFrom(entries: readonly EmbeddingEntry[], dim: number, rootNames: readonly string[]): EmbeddingSet {
  const vectors = new Float32Array(entries.length * dim);
  const roots = new Uint16Array(entries.length);
  entries.forEach((entry, row) => {
    if (entry.embedding.length !== dim) {
      throw new BeitLensError('MODEL_INVALID', `${entry.image}: embedding has ${entry.embedding.length} floats, expected ${dim}`);
    }
    if (!(entry.root >= 0 && entry.root < rootNames.length)) {
      throw new BeitLensError('MODEL_INVALID', `${entry.image}: root ${entry.root} is not one of the ${rootNames.length} scan roots`);
    }
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += entry.embedding[i] * entry.embedding[i];
    norm = Math.sqrt(norm);
    if (!(norm > 0) || !Number.isFinite(norm)) {
      throw new BeitLensError('NON_FINITE_OUTPUT', `${entry.image}: embedding norm is ${norm}; it cannot be compared by cosine`);
    }
    const base = row * dim;
    for (let i = 0; i < dim; i++) vectors[base + i] = entry.embedding[i] / norm;
    roots[row] = entry.root;
  });
  return {
    dim,
    count: entries.length,
    vectors,
    images: entries.map((e) => e.image),
    hashes: entries.map((e) => e.hash),
    roots,
    rootNames: [...rootNames],
  };
}

/** Row `row` of the set (a view, not a copy). */
export function embeddingRow(set: EmbeddingSet, row: number): Float32Array {
  return set.vectors.subarray(row * set.dim, (row + 1) * set.dim);
}
