/**
 * Deletion and insertion AUCs of a relevance map (Petsiuk et al. 2018) and a random-order deletion baseline, run on
 * the classification graph in batches. The bookkeeping (orders, step counts, areas) is faithfulness.ts's.
 */
import { copyPatches, curveArea, DEFAULT_FAITHFULNESS_STEPS, patchOrderByRelevance, randomPatchOrder, stepPatchCounts } from './faithfulness';
import { checkClassIndex, LogitsRunner, meanColourImage, PatchGeometry, perturbedProbabilities } from './occlusion';

/** Insertion starts from the image blurred by a Gaussian of this sigma (pixels), cut at 3 sigma. */
export const INSERTION_BLUR_SIGMA = 5;
export const RANDOM_ORDER_SEED = 1;

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
  const taps = Array.from({ length: 2 * radius + 1 }, (_, t) => Math.exp(-((t - radius) ** 2) / (2 * sigma * sigma)));
  const total = taps.reduce((a, b) => a + b, 0);
  for (let t = 0; t < taps.length; t++) taps[t] /= total;
  const clamp = (i: number) => Math.min(side - 1, Math.max(0, i));
  const rows = new Float64Array(pixelValues.length);
  const out = new Float32Array(pixelValues.length);
  for (let c = 0; c < channels; c++) {
    const base = c * side * side;
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
      let s = 0;
      for (let t = -radius; t <= radius; t++) s += taps[t + radius] * pixelValues[base + y * side + clamp(x + t)];
      rows[base + y * side + x] = s;
    }
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
      let s = 0;
      for (let t = -radius; t <= radius; t++) s += taps[t + radius] * rows[base + clamp(y + t) * side + x];
      out[base + y * side + x] = s;
    }
  }
  return out;
}

/**
 * Deletion (most relevant patches first set to the mean colour), insertion (the original's patches pasted onto the
 * blurred image in the same order) and random-order deletion curves of `relevance` for one class, each over
 * `steps` + 1 patch counts, with their trapezoidal areas. Low deletion and high insertion AUCs mean a faithful map.
 */
export async function faithfulnessScores(run: LogitsRunner, pixelValues: Float32Array, geometry: PatchGeometry, classIndex: number, relevance: ArrayLike<number>, options: { steps?: number; batchSize?: number } = {}): Promise<FaithfulnessScores> {
  const { channels, grid, patchSize, numLabels } = geometry;
  checkClassIndex(classIndex, numLabels);
  const patches = grid * grid;
  if (relevance.length !== patches) throw new RangeError(`a relevance map must hold ${patches} values, got ${relevance.length}`);
  const counts = stepPatchCounts(patches, options.steps ?? DEFAULT_FAITHFULNESS_STEPS);
  const order = patchOrderByRelevance(relevance);
  const shuffled = randomPatchOrder(patches, RANDOM_ORDER_SEED);
  const mean = meanColourImage(pixelValues, channels);
  const blurred = gaussianBlur(pixelValues, channels, grid * patchSize);
  const points = counts.length;
  // All three curves in one stream of batches: deletion, insertion, random deletion.
  const probabilities = await perturbedProbabilities(run, 3 * points, pixelValues.length, (k, target) => {
    const curve = Math.floor(k / points);
    const changed = counts[k % points];
    target.set(curve === 1 ? blurred : pixelValues);
    if (curve === 0) copyPatches(target, mean, order.slice(0, changed), channels, grid, patchSize);
    else if (curve === 1) copyPatches(target, pixelValues, order.slice(0, changed), channels, grid, patchSize);
    else copyPatches(target, mean, shuffled.slice(0, changed), channels, grid, patchSize);
  }, numLabels, classIndex, Math.max(1, options.batchSize ?? 16));
  const curve = (i: number) => Array.from(probabilities.subarray(i * points, (i + 1) * points));
  const [deletionCurve, insertionCurve, randomDeletionCurve] = [curve(0), curve(1), curve(2)];
  return { deletionAuc: curveArea(deletionCurve), insertionAuc: curveArea(insertionCurve), randomDeletionAuc: curveArea(randomDeletionCurve), deletionCurve, insertionCurve, randomDeletionCurve };
}
