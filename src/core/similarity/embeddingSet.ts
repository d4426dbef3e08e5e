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
  const builder = new EmbeddingSetBuilder(dim, rootNames, entries.length);
  for (const entry of entries) builder.add(entry.image, entry.hash, entry.root, entry.embedding);
  return builder.finish();
}

/**
 * A set built one row at a time into one growing Float32Array (normalised as each row arrives), so a 100,000-image
 * dataset is one 300 MB buffer rather than 100,000 small arrays and their headers. Give `capacity` when the row
 * count is known (a results file's size) and the buffer never grows.
 */
export class EmbeddingSetBuilder {
  private vectors: Float32Array;
  private roots: Uint16Array;
  private readonly images: string[] = [];
  private readonly hashes: string[] = [];

  constructor(
    readonly dim: number,
    private readonly rootNames: readonly string[],
    capacity = 1024,
  ) {
    if (!Number.isInteger(dim) || dim <= 0) throw new BeitLensError('INTERNAL', `embedding width ${dim} is not a positive integer`);
    this.vectors = new Float32Array(Math.max(1, capacity) * dim);
    this.roots = new Uint16Array(Math.max(1, capacity));
  }

  get count(): number {
    return this.images.length;
  }

  /** Appends a row (the set's row index is the count before the call); refusals name the image. */
  add(image: string, hash: string, root: number, embedding: ArrayLike<number>): number {
    const { dim } = this;
    if (embedding.length !== dim) {
      throw new BeitLensError('MODEL_INVALID', `${image}: embedding has ${embedding.length} floats, expected ${dim}`);
    }
    if (!(root >= 0 && root < this.rootNames.length)) {
      throw new BeitLensError('MODEL_INVALID', `${image}: root ${root} is not one of the ${this.rootNames.length} scan roots`);
    }
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += embedding[i] * embedding[i];
    norm = Math.sqrt(norm);
    if (!(norm > 0) || !Number.isFinite(norm)) {
      throw new BeitLensError('NON_FINITE_OUTPUT', `${image}: embedding norm is ${norm}; it cannot be compared by cosine`);
    }
    const row = this.images.length;
    if (row === this.roots.length) {
      const vectors = new Float32Array(this.vectors.length * 2);
      vectors.set(this.vectors);
      this.vectors = vectors;
      const roots = new Uint16Array(this.roots.length * 2);
      roots.set(this.roots);
      this.roots = roots;
    }
    const base = row * dim;
    for (let i = 0; i < dim; i++) this.vectors[base + i] = embedding[i] / norm;
    this.roots[row] = root;
    this.images.push(image);
    this.hashes.push(hash);
    return row;
  }

  /** The set (trimmed to its rows); the builder is not used afterwards. */
  finish(): EmbeddingSet {
    const count = this.images.length;
    const { dim } = this;
    return {
      dim,
      count,
      vectors: this.vectors.length === count * dim ? this.vectors : this.vectors.slice(0, count * dim),
      images: this.images,
      hashes: this.hashes,
      roots: this.roots.length === count ? this.roots : this.roots.slice(0, count),
      rootNames: [...this.rootNames],
    };
  }
}

/** Row `row` of the set (a view, not a copy). */
export function embeddingRow(set: EmbeddingSet, row: number): Float32Array {
  return set.vectors.subarray(row * set.dim, (row + 1) * set.dim);
}
