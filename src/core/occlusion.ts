/**
 * Occlusion maps (Zeiler & Fergus 2014): how much the class probability falls when one patch (or a window of patches
 * centred on it) is set to the image's mean colour. Only logits are needed, so any classification session serves:
 * fp16, int8, or a remote endpoint.
 */
import { copyPatches } from './faithfulness';

/** Runs the classification graph on n preprocessed images [n, channels, side, side]; returns [n, numLabels] logits. */
export type LogitsRunner = (pixelValues: Float32Array, n: number) => Promise<Float32Array>;

export interface PatchGeometry {
  channels: number;
  grid: number;
  patchSize: number;
  numLabels: number;
}

export interface OcclusionOptions {
  /** Side of the occluded block in patches, odd; 1 = the patch alone. */
  window?: number;
  /** Images per run of the session. */
  batchSize?: number;
}

export interface OcclusionResult {
  classIndex: number;
  window: number;
  /** The class probability of the untouched image. */
  baseProbability: number;
  /** grid*grid values: max(0, probability drop), divided by the largest drop (all 0 when no patch lowers it). */
  map: Float32Array;
}

/** The image with every pixel set to its channel's mean: what occluded and deleted patches become. */
export function meanColourImage(pixelValues: Float32Array, channels: number): Float32Array {
  const plane = pixelValues.length / channels;
  const out = new Float32Array(pixelValues.length);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let i = c * plane; i < (c + 1) * plane; i++) sum += pixelValues[i];
    out.fill(sum / plane, c * plane, (c + 1) * plane);
  }
  return out;
}

/** Softmax probability of one class in float64 (a small drop survives the subtraction). */
export function classProbability(logits: Float32Array, offset: number, numLabels: number, classIndex: number): number {
  let max = -Infinity;
  for (let j = 0; j < numLabels; j++) max = Math.max(max, logits[offset + j]);
  let sum = 0;
  for (let j = 0; j < numLabels; j++) sum += Math.exp(logits[offset + j] - max);
  return Math.exp(logits[offset + classIndex] - max) / sum;
}

/**
 * Class probabilities of `count` perturbed images, each built by `fill(k, target)`, run `batchSize` at a time. `fill`
 * writes the whole image (the buffer holds an earlier one) and is called for k = 0, 1, ..., count - 1 in order, so a
 * caller may build each image from the one before.
 */
export async function perturbedProbabilities(run: LogitsRunner, count: number, imageLength: number, fill: (k: number, target: Float32Array) => void, numLabels: number, classIndex: number, batchSize: number): Promise<Float64Array> {
  const out = new Float64Array(count);
  // One buffer for every batch: the session has finished with it once its run resolves.
  const buffer = new Float32Array(Math.min(batchSize, count) * imageLength);
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const batch = buffer.subarray(0, n * imageLength);
    for (let k = 0; k < n; k++) fill(start + k, batch.subarray(k * imageLength, (k + 1) * imageLength));
    const logits = await run(batch, n);
    for (let k = 0; k < n; k++) out[start + k] = classProbability(logits, k * numLabels, numLabels, classIndex);
  }
  return out;
}

export function checkClassIndex(classIndex: number, numLabels: number): void {
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= numLabels) throw new RangeError(`class index ${classIndex} is outside 0..${numLabels - 1}`);
}

/** The patches of a window x window block centred on `patch`, clipped at the image border. */
export function windowPatches(patch: number, grid: number, window: number): number[] {
  const row = Math.floor(patch / grid);
  const col = patch % grid;
  const r = (window - 1) / 2;
  const out: number[] = [];
  for (let y = Math.max(0, row - r); y <= Math.min(grid - 1, row + r); y++) for (let x = Math.max(0, col - r); x <= Math.min(grid - 1, col + r); x++) out.push(y * grid + x);
  return out;
}

export async function occlusionMap(run: LogitsRunner, pixelValues: Float32Array, geometry: PatchGeometry, classIndex: number, options: OcclusionOptions = {}): Promise<OcclusionResult> {
  const { channels, grid, patchSize, numLabels } = geometry;
  checkClassIndex(classIndex, numLabels);
  const window = options.window ?? 1;
  if (!Number.isInteger(window) || window < 1 || window % 2 === 0) throw new RangeError(`occlusion window must be an odd positive number of patches, got ${window}`);
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const patches = grid * grid;
  const mean = meanColourImage(pixelValues, channels);
  // Image 0 is the untouched one, so the base probability rides in the first batch.
  const probabilities = await perturbedProbabilities(run, patches + 1, pixelValues.length, (k, target) => {
    target.set(pixelValues);
    if (k > 0) copyPatches(target, mean, windowPatches(k - 1, grid, window), channels, grid, patchSize);
  }, numLabels, classIndex, batchSize);
  const base = probabilities[0];
  const map = new Float32Array(patches);
  let max = 0;
  for (let p = 0; p < patches; p++) max = Math.max(max, base - probabilities[p + 1]);
  for (let p = 0; p < patches; p++) map[p] = max > 0 ? Math.max(0, base - probabilities[p + 1]) / max : 0;
  return { classIndex, window, baseProbability: base, map };
}
