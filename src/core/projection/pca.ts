/**
 * PCA of an embedding matrix: to 2-D for the map's instant view, and to ~50-D as UMAP's input.
 *
 * Why not ml-pca: it forms the full d x d covariance (100,000 x 768 rows: 5.9e10 multiply-adds, about a minute
 * in JavaScript) and then its SVD, where the map needs the top 2 or 50 directions within a few seconds. This is
 * the randomized range finder of Halko, Martinsson and Tropp (2011, algorithm 4.4, with power iterations): a
 * sketch of k + oversampling columns, orthonormalised, then the exact eigenvectors of the small projected
 * matrix (ml-matrix, already shipped with umap-js). It is fitted on a seeded sample of at most `sampleRows`
 * rows: the top directions of 20,000 rows of a 768-D embedding are those of the whole set to within sampling
 * noise, and the fit then costs the same at 100,000 or 1,000,000 rows; only the projection grows with the set.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { BeitLensError } from '../errors';
import { seededNormal, seededUniform } from '../seededRandom';

export interface PcaOptions {
  components: number;
  /** Rows the directions are fitted on (a seeded sample when the set has more). Default 20,000. */
  sampleRows?: number;
  /** Power iterations: each sharpens the gap between kept and dropped directions. Default 4. */
  powerIterations?: number;
  /** Extra sketch columns beyond `components`. Default 10. */
  oversample?: number;
  seed?: number;
  signal?: AbortSignal;
}

export interface PcaFit {
  dim: number;
  components: number;
  /** Column means the directions were fitted around. */
  mean: Float64Array;
  /** Row-major [components, dim]; unit rows, strongest first. Sign: each row's largest loading is positive. */
  directions: Float64Array;
  /** Variance along each direction (over the fitted rows), strongest first. */
  variance: Float64Array;
}

export const DEFAULT_PCA_SAMPLE_ROWS = 20_000;

/** The rows the fit reads: all of them, or `limit` of them chosen by a seeded partial shuffle, in row order. */
function sampleRowIds(count: number, limit: number, random: () => number): Int32Array {
  if (count <= limit) return Int32Array.from({ length: count }, (_, i) => i);
  const ids = Int32Array.from({ length: count }, (_, i) => i);
  for (let i = 0; i < limit; i++) {
    const j = i + Math.floor(random() * (count - i));
    const t = ids[i];
    ids[i] = ids[j];
    ids[j] = t;
  }
  return ids.subarray(0, limit).sort();
}

/** Modified Gram-Schmidt on the columns of row-major [rows, cols]; a column that vanishes is left at zero. */
function orthonormaliseColumns(m: Float64Array, rows: number, cols: number): void {
  for (let c = 0; c < cols; c++) {
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let r = 0; r < rows; r++) dot += m[r * cols + c] * m[r * cols + p];
      for (let r = 0; r < rows; r++) m[r * cols + c] -= dot * m[r * cols + p];
    }
    let norm = 0;
    for (let r = 0; r < rows; r++) norm += m[r * cols + c] ** 2;
    norm = Math.sqrt(norm);
    const scale = norm > 1e-12 ? 1 / norm : 0;
    for (let r = 0; r < rows; r++) m[r * cols + c] *= scale;
  }
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new BeitLensError('CANCELLED', 'the projection was cancelled');
}

/** Fits the top `components` directions of `vectors` (row-major [count, dim]). */
export function pcaFit(vectors: Float32Array, count: number, dim: number, options: PcaOptions): PcaFit {
  const k = options.components;
  if (!Number.isInteger(k) || k < 1 || k > dim) throw new RangeError(`PCA components must be 1..${dim}, got ${k}`);
  if (count < 2) throw new RangeError(`PCA needs at least 2 rows, got ${count}`);
  const seed = options.seed ?? 42;
  const random = seededUniform(seed);
  const ids = sampleRowIds(count, options.sampleRows ?? DEFAULT_PCA_SAMPLE_ROWS, random);
  const n = ids.length;
  const l = Math.min(dim, n, k + (options.oversample ?? 10));

  // The centred sample, A [n, dim], in float64 so the power iterations do not lose the weaker directions.
  const mean = new Float64Array(dim);
  for (const id of ids) for (let j = 0; j < dim; j++) mean[j] += vectors[id * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= n;
  const a = new Float64Array(n * dim);
  ids.forEach((id, r) => {
    for (let j = 0; j < dim; j++) a[r * dim + j] = vectors[id * dim + j] - mean[j];
  });

  // Y = A Ω, then (A Aᵀ)^q Y with re-orthonormalisation between products (the numerically stable form).
  const omega = new Float64Array(dim * l);
  const gaussian = seededNormal(seed + 1);
  for (let i = 0; i < omega.length; i++) omega[i] = gaussian();
  let y = multiply(a, n, dim, omega, l);
  orthonormaliseColumns(y, n, l);
  for (let q = 0; q < (options.powerIterations ?? 4); q++) {
    checkAborted(options.signal);
    const z = multiplyTransposed(a, n, dim, y, l); // Aᵀ Y: [dim, l]
    orthonormaliseColumns(z, dim, l);
    y = multiply(a, n, dim, z, l);
    orthonormaliseColumns(y, n, l);
  }
  checkAborted(options.signal);
  // B = Qᵀ A is [l, dim]; its right singular vectors are A's top directions. B Bᵀ is l x l, so its exact
  // eigendecomposition is cheap: B Bᵀ = U Σ² Uᵀ, and the directions are Bᵀ U Σ⁻¹.
  const bt = multiplyTransposed(a, n, dim, y, l); // Aᵀ Q = Bᵀ: [dim, l]
  const bbt = new Matrix(l, l);
  for (let p = 0; p < l; p++) {
    for (let s = p; s < l; s++) {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += bt[j * l + p] * bt[j * l + s];
      bbt.set(p, s, dot);
      bbt.set(s, p, dot);
    }
  }
  const evd = new EigenvalueDecomposition(bbt, { assumeSymmetric: true });
  const order = evd.realEigenvalues.map((value, index) => ({ value, index })).sort((x, z) => z.value - x.value);
  const u = evd.eigenvectorMatrix;
  const directions = new Float64Array(k * dim);
  const variance = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    const { value, index } = order[c];
    const sigma = Math.sqrt(Math.max(value, 0));
    variance[c] = value / (n - 1);
    let largest = 0;
    for (let j = 0; j < dim; j++) {
      let v = 0;
      for (let p = 0; p < l; p++) v += bt[j * l + p] * u.get(p, index);
      v = sigma > 0 ? v / sigma : 0;
      directions[c * dim + j] = v;
      if (Math.abs(v) > Math.abs(largest)) largest = v;
    }
    if (largest < 0) for (let j = 0; j < dim; j++) directions[c * dim + j] = -directions[c * dim + j];
  }
  return { dim, components: k, mean, directions, variance };
}

/** Every row of `vectors` in the fit's coordinates: row-major [count, components] (the first `use` of them). */
export function pcaProject(fit: PcaFit, vectors: Float32Array, count: number, use = fit.components): Float32Array {
  const { dim, mean, directions } = fit;
  const out = new Float32Array(count * use);
  const centred = new Float64Array(dim);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dim; j++) centred[j] = vectors[r * dim + j] - mean[j];
    for (let c = 0; c < use; c++) {
      let v = 0;
      const base = c * dim;
      for (let j = 0; j < dim; j++) v += centred[j] * directions[base + j];
      out[r * use + c] = v;
    }
  }
  return out;
}

/** A [rows, inner] times B [inner, cols], all row-major. */
function multiply(a: Float64Array, rows: number, inner: number, b: Float64Array, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let i = 0; i < inner; i++) {
      const v = a[r * inner + i];
      if (v === 0) continue;
      const bi = i * cols;
      for (let c = 0; c < cols; c++) out[o + c] += v * b[bi + c];
    }
  }
  return out;
}

/** Aᵀ [inner, rows] times B [rows, cols], for A [rows, inner] row-major: [inner, cols]. */
function multiplyTransposed(a: Float64Array, rows: number, inner: number, b: Float64Array, cols: number): Float64Array {
  const out = new Float64Array(inner * cols);
  for (let r = 0; r < rows; r++) {
    const br = r * cols;
    for (let i = 0; i < inner; i++) {
      const v = a[r * inner + i];
      if (v === 0) continue;
      const o = i * cols;
      for (let c = 0; c < cols; c++) out[o + c] += v * b[br + c];
    }
  }
  return out;
}
