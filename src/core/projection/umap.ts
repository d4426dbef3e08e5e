/**
 * UMAP to 2-D with umap-js, run epoch by epoch so it reports progress and stops when its signal aborts.
 *
 * Determinism: umap-js draws every random number (its random-projection trees, neighbour descent, initial
 * layout and negative samples) from the `random` it is given, so a seeded generator gives the same layout for
 * the same input on every run.
 */
import { UMAP } from 'umap-js';
import { BeitLensError } from '../errors';
import { seededUniform } from '../seededRandom';

export interface UmapOptions {
  seed?: number;
  /** Default 15, umap-learn's. */
  nNeighbors?: number;
  /** Default 0.1, umap-learn's. */
  minDist?: number;
  /** Default: umap-js's choice by size (500 epochs for small sets down to 200 for large ones). */
  nEpochs?: number;
  signal?: AbortSignal;
  /** 'neighbours' once before the (uninterruptible) neighbour graph, then 'layout' as epochs complete. */
  onProgress?: (phase: 'neighbours' | 'layout', done: number, total: number) => void;
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new BeitLensError('CANCELLED', 'the projection was cancelled');
}

/** Row-major [count, 2] layout of row-major [count, dim] `input`. */
export function umapLayout(input: Float32Array, count: number, dim: number, options: UmapOptions = {}): Float32Array {
  const nNeighbors = Math.min(options.nNeighbors ?? 15, count - 1);
  if (nNeighbors < 2) throw new RangeError(`UMAP needs at least 3 points, got ${count}`);
  const rows: number[][] = new Array(count);
  for (let r = 0; r < count; r++) rows[r] = Array.from(input.subarray(r * dim, (r + 1) * dim));
  const umap = new UMAP({ nComponents: 2, nNeighbors, minDist: options.minDist ?? 0.1, nEpochs: options.nEpochs, random: seededUniform(options.seed ?? 42) });
  checkAborted(options.signal);
  options.onProgress?.('neighbours', 0, 1);
  const epochs = umap.initializeFit(rows);
  const every = Math.max(1, Math.floor(epochs / 100));
  for (let epoch = 0; epoch < epochs; ) {
    checkAborted(options.signal);
    epoch = umap.step();
    if (epoch % every === 0 || epoch === epochs) options.onProgress?.('layout', epoch, epochs);
  }
  const embedding = umap.getEmbedding();
  const out = new Float32Array(count * 2);
  for (let r = 0; r < count; r++) {
    out[r * 2] = embedding[r][0];
    out[r * 2 + 1] = embedding[r][1];
  }
  return out;
}
