/**
 * The two kernels every similarity feature runs: a dot product over unit rows (a cosine, as EmbeddingSet
 * normalises once) and a bounded top-k. One home so search, duplicates and uniqueness agree to the last bit
 * on what "the exact cosine" of two rows is.
 */

/** Dot product of `a[aOffset..aOffset+dim)` and `b[bOffset..)`; unrolled by four, which V8 vectorises no further but pipelines. */
export function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  const end4 = dim - (dim % 4);
  for (; i < end4; i += 4) {
    s0 += a[aOffset + i] * b[bOffset + i];
    s1 += a[aOffset + i + 1] * b[bOffset + i + 1];
    s2 += a[aOffset + i + 2] * b[bOffset + i + 2];
    s3 += a[aOffset + i + 3] * b[bOffset + i + 3];
  }
  for (; i < dim; i++) s0 += a[aOffset + i] * b[bOffset + i];
  return s0 + s1 + s2 + s3;
}

/** Copy of `query` scaled to unit L2 norm; undefined when it has no direction (zero or non-finite). */
export function unitVector(query: ArrayLike<number>): Float32Array | undefined {
  let norm = 0;
  for (let i = 0; i < query.length; i++) norm += query[i] * query[i];
  norm = Math.sqrt(norm);
  if (!(norm > 0) || !Number.isFinite(norm)) return undefined;
  const out = new Float32Array(query.length);
  for (let i = 0; i < query.length; i++) out[i] = query[i] / norm;
  return out;
}

/**
 * The k best (row, score) pairs seen, by partial selection: a binary min-heap of size k, so a pass over n rows
 * costs n·log k and k slots of memory, whatever n is. Ties keep the lower row (stable across runs and backends).
 */
export class TopK {
  private readonly rows: Int32Array;
  private readonly scores: Float64Array;
  private size = 0;

  constructor(readonly k: number) {
    this.rows = new Int32Array(Math.max(0, k));
    this.scores = new Float64Array(Math.max(0, k));
  }

  /** The score a candidate must beat to enter (−Infinity until full). */
  get floor(): number {
    return this.size < this.k ? -Infinity : this.scores[0];
  }

  push(row: number, score: number): void {
    if (this.k <= 0) return;
    if (this.size < this.k) {
      let i = this.size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.worse(row, score, this.rows[parent], this.scores[parent])) break;
        this.rows[i] = this.rows[parent];
        this.scores[i] = this.scores[parent];
        i = parent;
      }
      this.rows[i] = row;
      this.scores[i] = score;
      return;
    }
    if (!this.worse(this.rows[0], this.scores[0], row, score)) return;
    // Replace the root (the worst kept) and sift down.
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= this.size) break;
      const right = left + 1;
      const child = right < this.size && this.worse(this.rows[right], this.scores[right], this.rows[left], this.scores[left]) ? right : left;
      if (!this.worse(this.rows[child], this.scores[child], row, score)) break;
      this.rows[i] = this.rows[child];
      this.scores[i] = this.scores[child];
      i = child;
    }
    this.rows[i] = row;
    this.scores[i] = score;
  }

  /** Best first. */
  sorted(): { row: number; similarity: number }[] {
    const out: { row: number; similarity: number }[] = [];
    for (let i = 0; i < this.size; i++) out.push({ row: this.rows[i], similarity: this.scores[i] });
    return out.sort((a, b) => b.similarity - a.similarity || a.row - b.row);
  }

  /** Whether (rowA, a) ranks below (rowB, b). */
  private worse(rowA: number, a: number, rowB: number, b: number): boolean {
    return a < b || (a === b && rowA > rowB);
  }
}
