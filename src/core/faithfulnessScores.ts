/**
 * Deletion and insertion AUCs of a relevance map (Petsiuk et al. 2018) and a random-order deletion baseline, run on
 * the classification graph in batches. The bookkeeping (orders, step counts, areas) is faithfulness.ts's.
 */
import { copyPatches, curveArea, DEFAULT_FAITHFULNESS_STEPS, patchOrderByRelevance, randomPatchOrder, stepPatchCounts } from './faithfulness';
import { checkClassIndex, LogitsRunner, meanColourImage, PatchGeometry, perturbedProbabilities } from './occlusion';

/** Insertion starts from the image blurred by a Gaussian of this sigma (pixels), cut at 3 sigma. */
export const INSERTION_BLUR_SIGMA = 5;
export const RANDOM_ORDER_SEED = 1;

export interface FaithfulnessOptions {
  steps?: number;
  batchSize?: number;
  /** gaussianBlur(pixelValues), for a caller scoring several maps of one image. */
  blurred?: Float32Array;
}

export interface FaithfulnessScores {
  deletionAuc: number;
  insertionAuc: number;
  randomDeletionAuc: number;
  deletionCurve: number[];
  insertionCurve: number[];
  randomDeletionCurve: number[];
}

/** Separable Gaussian blur of a channels-first image, borders edge-replicated, computed in float64. */
export function gaussianBlur(pixelValues: Float32Array, channels: number, side: number, sigma = INSERTION_BLUR_SIGMA): Float32Array {
  const radius = Math.ceil(3 * sigma);
  const width = 2 * radius + 1;
  const taps = new Float64Array(width);
  for (let t = 0; t < width; t++) taps[t] = Math.exp(-((t - radius) ** 2) / (2 * sigma * sigma));
  const total = taps.reduce((a, b) => a + b, 0);
  for (let t = 0; t < width; t++) taps[t] /= total;
  // One edge-padded line at a time, so the tap loop needs no bounds checks.
  const padded = new Float64Array(side + 2 * radius);
  const convolve = (read: (i: number) => number, write: (i: number, v: number) => void) => {
    for (let i = 0; i < side; i++) padded[radius + i] = read(i);
    padded.fill(padded[radius], 0, radius);
    padded.fill(padded[radius + side - 1], radius + side);
    for (let i = 0; i < side; i++) {
      let s = 0;
      for (let t = 0; t < width; t++) s += taps[t] * padded[i + t];
      write(i, s);
    }
  };
  const rows = new Float64Array(pixelValues.length);
  const out = new Float32Array(pixelValues.length);
  for (let c = 0; c < channels; c++) {
    const base = c * side * side;
    for (let y = 0; y < side; y++) {
      const row = base + y * side;
      convolve((x) => pixelValues[row + x], (x, v) => (rows[row + x] = v));
    }
    for (let x = 0; x < side; x++) convolve((y) => rows[base + y * side + x], (y, v) => (out[base + y * side + x] = v));
  }
  return out;
}

/**
 * Deletion (most relevant patches first set to the mean colour), insertion (the original's patches pasted onto the
 * blurred image in the same order) and random-order deletion curves of `relevance` for one class, each over
 * `steps` + 1 patch counts, with their trapezoidal areas. Low deletion and high insertion AUCs mean a faithful map.
 */
export async function faithfulnessScores(run: LogitsRunner, pixelValues: Float32Array, geometry: PatchGeometry, classIndex: number, relevance: ArrayLike<number>, options: FaithfulnessOptions = {}): Promise<FaithfulnessScores> {
  const { channels, grid, patchSize, numLabels } = geometry;
  checkClassIndex(classIndex, numLabels);
  const patches = grid * grid;
  if (relevance.length !== patches) throw new RangeError(`a relevance map must hold ${patches} values, got ${relevance.length}`);
  const counts = stepPatchCounts(patches, options.steps ?? DEFAULT_FAITHFULNESS_STEPS);
  const order = patchOrderByRelevance(relevance);
  const shuffled = randomPatchOrder(patches, RANDOM_ORDER_SEED);
  const mean = meanColourImage(pixelValues, channels);
  const blurred = options.blurred ?? gaussianBlur(pixelValues, channels, grid * patchSize);
  const points = counts.length;
  // All three curves in one stream of batches: deletion, insertion, random deletion. Each curve keeps its current
  // image and adds only the patches of the next step, which perturbedProbabilities' in-order fill allows.
  const sources = [mean, pixelValues, mean];
  const orders = [order, order, shuffled];
  const current = [pixelValues.slice(), blurred.slice(), pixelValues.slice()];
  const applied = [0, 0, 0];
  const probabilities = await perturbedProbabilities(run, 3 * points, pixelValues.length, (k, target) => {
    const c = Math.floor(k / points);
    const changed = counts[k % points];
    copyPatches(current[c], sources[c], orders[c].slice(applied[c], changed), channels, grid, patchSize);
    applied[c] = changed;
    target.set(current[c]);
  }, numLabels, classIndex, Math.max(1, options.batchSize ?? 16));
  const curve = (i: number) => Array.from(probabilities.subarray(i * points, (i + 1) * points));
  const [deletionCurve, insertionCurve, randomDeletionCurve] = [curve(0), curve(1), curve(2)];
  return { deletionAuc: curveArea(deletionCurve), insertionAuc: curveArea(insertionCurve), randomDeletionAuc: curveArea(randomDeletionCurve), deletionCurve, insertionCurve, randomDeletionCurve };
}
