/**
 * Pure bookkeeping for deletion/insertion faithfulness curves (Petsiuk et al. 2018, RISE): which
 * patches are changed at each step and the area under the resulting class-probability curve.
 * Running the model on the perturbed batches is the caller's job, so this module stays testable
 * without a session.
 */
import { seededPermutation } from './seededRandom';

export const DEFAULT_FAITHFULNESS_STEPS = 20;

/**
 * Patch indices, most relevant first. Ties keep the lower index first so that a flat map gives a
 * reproducible order rather than whatever the sort happens to produce.
 */
export function patchOrderByRelevance(map: ArrayLike<number>): number[] {
  for (let i = 0; i < map.length; i++) {
    if (!Number.isFinite(map[i])) throw new RangeError(`relevance map value ${i} is not a finite number`);
  }
  return Array.from({ length: map.length }, (_, i) => i).sort((a, b) => map[b] - map[a] || a - b);
}

/**
 * A seeded shuffle of the patch indices (Fisher-Yates) for the random-order baseline curve. It is
 * seeded so the same image gets the same baseline AUC in every run.
 */
export function randomPatchOrder(patches: number, seed: number): number[] {
  if (!Number.isInteger(patches) || patches < 1) throw new RangeError(`patch count must be a positive integer, got ${patches}`);
  return seededPermutation(patches, seed);
}

/**
 * How many patches are changed after each of `steps` steps, starting from 0 (the untouched image)
 * and ending at all of them: steps + 1 counts, spread as evenly as integer counts allow.
 */
export function stepPatchCounts(patches: number, steps: number = DEFAULT_FAITHFULNESS_STEPS): number[] {
  if (!Number.isInteger(patches) || patches < 1) throw new RangeError(`patch count must be a positive integer, got ${patches}`);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`faithfulness steps must be a positive integer, got ${steps}`);
  return Array.from({ length: steps + 1 }, (_, k) => Math.round((k * patches) / steps));
}

/**
 * Trapezoidal area under a curve sampled at evenly spaced fractions 0, 1/steps, ..., 1 of the
 * patches changed, so the result is in [0, 1] for probabilities in [0, 1].
 */
export function curveArea(probabilities: ArrayLike<number>): number {
  if (probabilities.length < 2) throw new RangeError(`a faithfulness curve needs at least 2 points, got ${probabilities.length}`);
  let sum = 0;
  for (let k = 0; k < probabilities.length; k++) {
    const p = probabilities[k];
    if (!Number.isFinite(p)) throw new RangeError(`faithfulness curve point ${k} is not a finite number`);
    sum += k === 0 || k === probabilities.length - 1 ? p / 2 : p;
  }
  return sum / (probabilities.length - 1);
}

/**
 * Copies the listed patches of `source` into `target` (both one preprocessed image, channels-first
 * [channels, grid*patch, grid*patch]). This one step serves deletion (source = a mean-colour
 * image), insertion (target = a blurred image, source = the original) and single-patch occlusion.
 */
export function copyPatches(target: Float32Array, source: Float32Array, patchIndices: Iterable<number>, channels: number, grid: number, patchSize: number): void {
  const side = grid * patchSize;
  const expected = channels * side * side;
  if (target.length !== expected || source.length !== expected) {
    throw new RangeError(`image tensors must hold ${channels}x${side}x${side} = ${expected} values, got target ${target.length}, source ${source.length}`);
  }
  for (const patch of patchIndices) {
    if (!Number.isInteger(patch) || patch < 0 || patch >= grid * grid) throw new RangeError(`patch index ${patch} is outside 0..${grid * grid - 1}`);
    const top = Math.floor(patch / grid) * patchSize;
    const left = (patch % grid) * patchSize;
    for (let c = 0; c < channels; c++) {
      for (let y = top; y < top + patchSize; y++) {
        // An index loop, not set(subarray): a deletion curve copies ~10^6 rows of 16 floats, and a view per row costs more than the copy.
        const start = c * side * side + y * side + left;
        for (let i = start; i < start + patchSize; i++) target[i] = source[i];
      }
    }
  }
}
