/**
 * UMAP to 2-D with umap-js, run epoch by epoch so it reports progress and stops when its signal aborts.
 *
 * Determinism: umap-js draws every random number (its random-projection trees, neighbour descent, initial
 * layout and negative samples) from the `random` it is given, so a seeded generator gives the same layout for
 * the same input on every run.
 */
import { UMAP } from 'umap-js';
import { SparseMatrix } from 'umap-js/dist/matrix';
import { BeitLensError } from '../errors';
import { seededUniform } from '../seededRandom';

/** The parts of umap-js 1.4.0 (pinned in package.json) that `fastGraphUmap` replaces; the test compares them. */
interface UmapGraphInternals {
  knnIndices?: number[][];
  knnDistances?: number[][];
  localConnectivity: number;
  setOpMixRatio: number;
  smoothKNNDistance(distances: number[][], k: number, localConnectivity: number): { sigmas: number[]; rhos: number[] };
  computeMembershipStrengths(knnIndices: number[][], knnDistances: number[][], sigmas: number[], rhos: number[]): { rows: number[]; cols: number[]; vals: number[] };
  fuzzySimplicialSet(X: number[][], nNeighbors: number, setOpMixRatio?: number): SparseMatrix;
  makeSearchGraph(X: number[][]): SparseMatrix;
}

/**
 * umap-js's fuzzy union of the neighbour graph, `A + Aᵀ − A∘Aᵀ` (mix ratio 1), without its string-keyed sparse
 * matrices: it builds five of them (transpose, product, sum, difference, scalings), which was 14 of the 16 s of
 * `initializeFit` at 20,000 points and grows faster than the rest. Here one pass over the edges with numeric keys
 * gives the same entries, in the same order, with the same floating-point values (each computed as umap-js
 * computes it), so the layout for a seed is the one umap-js gives.
 */
export function fuzzyUnion(umap: UMAP, count: number): SparseMatrix {
  const internals = umap as unknown as UmapGraphInternals;
  const knnIndices = internals.knnIndices ?? [];
  const knnDistances = internals.knnDistances ?? [];
  const nNeighbors = knnIndices[0]?.length ?? 0;
  const { sigmas, rhos } = internals.smoothKNNDistance(knnDistances, nNeighbors, internals.localConnectivity);
  const { rows, cols, vals } = internals.computeMembershipStrengths(knnIndices, knnDistances, sigmas, rhos);
  // The membership entries as umap-js's SparseMatrix holds them: a repeated (row, col) keeps its first place and
  // takes the last value.
  const at = new Map<number, number>();
  const entryRows: number[] = [];
  const entryCols: number[] = [];
  const entryVals: number[] = [];
  for (let i = 0; i < vals.length; i++) {
    const key = rows[i] * count + cols[i];
    const existing = at.get(key);
    if (existing !== undefined) entryVals[existing] = vals[i];
    else {
      at.set(key, entryRows.length);
      entryRows.push(rows[i]);
      entryCols.push(cols[i]);
      entryVals.push(vals[i]);
    }
  }
  const outRows: number[] = [];
  const outCols: number[] = [];
  const outVals: number[] = [];
  const mix = internals.setOpMixRatio;
  const combine = (a: number, b: number) => {
    const product = a * b;
    return (a + b - product) * mix + product * (1 - mix);
  };
  const stored = entryRows.length;
  for (let e = 0; e < stored; e++) {
    const back = at.get(entryCols[e] * count + entryRows[e]);
    outRows.push(entryRows[e]);
    outCols.push(entryCols[e]);
    outVals.push(combine(entryVals[e], back === undefined ? 0 : entryVals[back]));
  }
  // Then the transposed entries the graph lacks, in the order of the entries they mirror.
  for (let e = 0; e < stored; e++) {
    if (at.has(entryCols[e] * count + entryRows[e])) continue;
    outRows.push(entryCols[e]);
    outCols.push(entryRows[e]);
    outVals.push(combine(0, entryVals[e]));
  }
  return new SparseMatrix(outRows, outCols, outVals, [count, count]);
}

/** A UMAP whose graph comes from `fuzzyUnion`, and without the search graph that only `transform()` reads. */
function fastGraphUmap(umap: UMAP, count: number): UMAP {
  const internals = umap as unknown as UmapGraphInternals;
  internals.fuzzySimplicialSet = () => fuzzyUnion(umap, count);
  internals.makeSearchGraph = () => new SparseMatrix([], [], [], [count, count]);
  return umap;
}

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
  const umap = fastGraphUmap(new UMAP({ nComponents: 2, nNeighbors, minDist: options.minDist ?? 0.1, nEpochs: options.nEpochs, random: seededUniform(options.seed ?? 42) }), count);
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
