/**
 * UMAP to 2-D with umap-js, run epoch by epoch so it reports progress and stops when its signal aborts.
 *
 * The neighbour graph comes from usearch (`euclideanNeighbourRows`), not umap-js's random-projection trees and
 * neighbour descent: 142 of the 283 s of a 100,000-point map went there.
 *
 * Determinism: the neighbour graph is built on one thread, so it is the same on every run, and umap-js draws the
 * rest of its random numbers (initial layout, negative samples) from the `random` it is given, so a seeded
 * generator gives the same layout for the same input on every run.
 */
import { UMAP } from 'umap-js';
import { SparseMatrix } from 'umap-js/dist/matrix';
import { BeitLensError } from '../errors';
import { euclideanNeighbourRows } from '../similarity/approximateIndex';
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

/** umap-js 1.4.0's optimisation state after `initializeFit` (2-D, head and tail the same embedding). */
interface UmapOptimizationState {
  head: number[];
  tail: number[];
  headEmbedding: number[][];
  epochsPerSample: number[];
  epochOfNextSample: number[];
  epochOfNextNegativeSample: number[];
  epochsPerNegativeSample: number[];
  initialAlpha: number;
  alpha: number;
  gamma: number;
  a: number;
  b: number;
  nEpochs: number;
  nVertices: number;
  currentEpoch: number;
}

/**
 * umap-js's layout epochs (`optimizeLayoutStep`) over flat typed arrays instead of an array per point: the same
 * operations in the same order on the same doubles, drawing the same random numbers, so the layout is umap-js's
 * own (the test compares them). Its per-point arrays and per-pair calls made the 200 epochs of a 100,000-point
 * map take 153 s.
 */
export class LayoutEpochs {
  private readonly head: Int32Array;
  private readonly tail: Int32Array;
  private readonly embedding: Float64Array;
  private readonly epochsPerSample: Float64Array;
  private readonly epochOfNextSample: Float64Array;
  private readonly epochOfNextNegativeSample: Float64Array;
  private readonly epochsPerNegativeSample: Float64Array;
  private readonly state: UmapOptimizationState;
  private alpha: number;
  epoch = 0;

  constructor(umap: UMAP, private readonly random: () => number) {
    const state = (umap as unknown as { optimizationState: UmapOptimizationState }).optimizationState;
    if (state.headEmbedding[0]?.length !== 2) throw new RangeError('the layout epochs are written for 2-D maps');
    this.state = state;
    this.head = Int32Array.from(state.head);
    this.tail = Int32Array.from(state.tail);
    this.embedding = new Float64Array(state.headEmbedding.length * 2);
    state.headEmbedding.forEach((p, i) => this.embedding.set(p, i * 2));
    this.epochsPerSample = Float64Array.from(state.epochsPerSample);
    this.epochOfNextSample = Float64Array.from(state.epochOfNextSample);
    this.epochOfNextNegativeSample = Float64Array.from(state.epochOfNextNegativeSample);
    this.epochsPerNegativeSample = Float64Array.from(state.epochsPerNegativeSample);
    this.alpha = state.alpha;
  }

  step(): number {
    const n = this.epoch;
    const { a, b, gamma, nVertices, initialAlpha, nEpochs } = this.state;
    const { head, tail, embedding: e, epochsPerSample, epochOfNextSample, epochOfNextNegativeSample, epochsPerNegativeSample, random } = this;
    const alpha = this.alpha;
    const clip = (x: number) => (x > 4 ? 4 : x < -4 ? -4 : x);
    for (let i = 0; i < epochsPerSample.length; i++) {
      if (epochOfNextSample[i] > n) continue;
      const j = head[i] * 2;
      const k = tail[i] * 2;
      // Moving one coordinate leaves the other's difference as it was, so both are taken once.
      let d0 = e[j] - e[k];
      let d1 = e[j + 1] - e[k + 1];
      const distSquared = Math.pow(d0, 2) + Math.pow(d1, 2);
      let gradCoeff = 0;
      if (distSquared > 0) {
        gradCoeff = -2.0 * a * b * Math.pow(distSquared, b - 1.0);
        gradCoeff /= a * Math.pow(distSquared, b) + 1.0;
      }
      let g = clip(gradCoeff * d0);
      e[j] += g * alpha;
      e[k] += -g * alpha;
      g = clip(gradCoeff * d1);
      e[j + 1] += g * alpha;
      e[k + 1] += -g * alpha;
      epochOfNextSample[i] += epochsPerSample[i];
      const nNegSamples = Math.floor((n - epochOfNextNegativeSample[i]) / epochsPerNegativeSample[i]);
      for (let p = 0; p < nNegSamples; p++) {
        const other = Math.floor(random() * nVertices) * 2;
        d0 = e[j] - e[other];
        d1 = e[j + 1] - e[other + 1];
        const dist = Math.pow(d0, 2) + Math.pow(d1, 2);
        let coeff = 0.0;
        if (dist > 0.0) {
          coeff = 2.0 * gamma * b;
          coeff /= (0.001 + dist) * (a * Math.pow(dist, b) + 1);
        } else if (j === other) continue;
        e[j] += (coeff > 0.0 ? clip(coeff * d0) : 4.0) * alpha;
        e[j + 1] += (coeff > 0.0 ? clip(coeff * d1) : 4.0) * alpha;
      }
      epochOfNextNegativeSample[i] += nNegSamples * epochsPerNegativeSample[i];
    }
    this.alpha = initialAlpha * (1.0 - n / nEpochs);
    return ++this.epoch;
  }

  /** Row-major [count, 2], as float32. */
  layout(): Float32Array {
    return Float32Array.from(this.embedding);
  }
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
  const knn = nearestNeighbours(input, count, dim, nNeighbors);
  umap.setPrecomputedKNN(knn.indices, knn.distances);
  const epochs = umap.initializeFit(rows);
  const layout = new LayoutEpochs(umap, (umap as unknown as { random: () => number }).random);
  const every = Math.max(1, Math.floor(epochs / 100));
  for (let epoch = 0; epoch < epochs; ) {
    checkAborted(options.signal);
    epoch = layout.step();
    if (epoch % every === 0 || epoch === epochs) options.onProgress?.('layout', epoch, epochs);
  }
  return layout.layout();
}

/**
 * The `k` nearest rows of every row, itself first, as umap-js's `setPrecomputedKNN` takes them. Each distance is
 * computed as umap-js's own `euclidean` computes it (`Math.pow(x - y, 2)` summed in doubles, then the square root,
 * from the same values) and each row is ordered by (distance, row), so the graph depends only on which rows the
 * index found, not on its float32 arithmetic.
 */
export function nearestNeighbours(input: Float32Array, count: number, dim: number, k: number): { indices: number[][]; distances: number[][] } {
  const found = euclideanNeighbourRows(input, count, dim, k);
  const indices: number[][] = new Array(count);
  const distances: number[][] = new Array(count);
  const candidate = new Int32Array(k + 1);
  const distance = new Float64Array(k + 1);
  for (let i = 0; i < count; i++) {
    let m = 0;
    const add = (row: number) => {
      for (let c = 0; c < m; c++) if (candidate[c] === row) return;
      let sum = 0;
      for (let d = 0, a = i * dim, b = row * dim; d < dim; d++) sum += Math.pow(input[a + d] - input[b + d], 2);
      const dist = Math.sqrt(sum);
      // Insertion into the (distance, row)-ordered list.
      let at = m++;
      while (at > 0 && (distance[at - 1] > dist || (distance[at - 1] === dist && candidate[at - 1] > row))) {
        candidate[at] = candidate[at - 1];
        distance[at] = distance[at - 1];
        at--;
      }
      candidate[at] = row;
      distance[at] = dist;
    };
    add(i);
    for (let j = 0; j < k; j++) if (found[i * k + j] >= 0) add(found[i * k + j]);
    indices[i] = new Array(k).fill(-1);
    distances[i] = new Array(k).fill(Infinity);
    for (let j = 0; j < Math.min(k, m); j++) [indices[i][j], distances[i][j]] = [candidate[j], distance[j]];
  }
  return { indices, distances };
}
