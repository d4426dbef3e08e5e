import { BeitLensError } from './errors';

export interface Prediction {
  index: number;
  label: string;
  score: number;
}

/**
 * Softmax in float64 over float32 logits (as the fixtures' reference does) and the K best, found by
 * one pass with a small sorted buffer instead of sorting all 21,841 classes.
 */
export function topKPredictions(logits: Float32Array | number[], labels: readonly string[], k: number, offset = 0, count = logits.length - offset): Prediction[] {
  let max = -Infinity;
  for (let i = 0; i < count; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < count; i++) sum += Math.exp(logits[offset + i] - max);
  const kk = Math.max(0, Math.min(k, count));
  const best: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = logits[offset + i];
    if (best.length === kk && (kk === 0 || v <= logits[offset + best[kk - 1]])) continue;
    let pos = best.length;
    while (pos > 0 && logits[offset + best[pos - 1]] < v) pos--;
    best.splice(pos, 0, i);
    if (best.length > kk) best.pop();
  }
  return best.map((index) => ({ index, label: labels[index] ?? `class ${index}`, score: Math.exp(logits[offset + index] - max) / sum }));
}

/**
 * Refuses logits that are NaN or infinite: softmax over them gives NaN scores (or an arbitrary top-1 at 100%),
 * which would otherwise be reported, and cached, as a result. `file` is the model graph that produced them.
 */
export function checkFiniteLogits(logits: Float32Array, file: string, offset = 0, count = logits.length - offset): void {
  for (let i = 0; i < count; i++) {
    const v = logits[offset + i];
    if (!Number.isFinite(v)) {
      throw new BeitLensError('NON_FINITE_OUTPUT', `the model returned a non-finite logit (${v} for class ${i} of ${count}): its weights or graph are broken (convert the model again)`, file);
    }
  }
}

/** Argmax of each patch's logits ([patches, numLabels], row-major). */
export function patchArgmax(patchLogits: Float32Array, patches: number, numLabels: number, offset = 0): Int32Array {
  const out = new Int32Array(patches);
  for (let p = 0; p < patches; p++) {
    const row = offset + p * numLabels;
    let best = 0;
    for (let c = 1; c < numLabels; c++) if (patchLogits[row + c] > patchLogits[row + best]) best = c;
    out[p] = best;
  }
  return out;
}

/** One class's logit at every patch: the per-class heatmap. */
export function classPatchLogits(patchLogits: Float32Array, patches: number, numLabels: number, classIndex: number, offset = 0): Float32Array {
  const out = new Float32Array(patches);
  for (let p = 0; p < patches; p++) out[p] = patchLogits[offset + p * numLabels + classIndex];
  return out;
}
