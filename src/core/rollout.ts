/**
 * Attention rollout (Abnar & Zuidema 2020) with the head fusion and low-attention discard of
 * jacobgil/vit-explain, but with ordinary row normalisation of (A + I) / 2: vit-explain divides
 * column j by the sum of row j (a broadcasting slip), which the fixture records only as its
 * `map_14x14`; `diagnostic_only_row_normalised_variant_14x14` is the rollout as the paper defines it.
 */
export type HeadFusion = 'mean' | 'max' | 'min';

export interface RolloutOptions {
  headFusion: HeadFusion;
  /** Fraction of the fused attention entries (lowest first) set to zero in each layer, 0 <= r < 1. */
  discardRatio: number;
  /**
   * Which rows of the rollout the map reads: `cls` the first leading token's row (vit-explain's form); `patches` the
   * mean of the patch-token rows, which is what a mean-pooling classifier reads. Absent: `cls`.
   */
  from?: RolloutSource;
}

export type RolloutSource = 'cls' | 'patches';

export const DEFAULT_ROLLOUT: RolloutOptions = { headFusion: 'mean', discardRatio: 0.9 };

/**
 * The shape of one image's attention tensor and where its patches start: `leadingTokens` (the family's token layout:
 * a CLS token, register tokens, none) come first, then the patches row-major. An Explanation is one.
 */
export interface AttentionLayout {
  layers: number;
  heads: number;
  tokens: number;
  leadingTokens: number;
}

function checkLayout(attentions: Float32Array, { layers, heads, tokens, leadingTokens }: AttentionLayout): void {
  if (!(Number.isInteger(leadingTokens) && leadingTokens >= 0 && leadingTokens < tokens)) throw new RangeError(`${leadingTokens} leading tokens do not fit in ${tokens} tokens`);
  if (attentions.length !== layers * heads * tokens * tokens) throw new RangeError('attention tensor size does not match its dimensions');
}

/**
 * @param attentions softmax probabilities [layers, heads, tokens, tokens] for one image
 * @returns the rollout over the patch tokens, divided by its maximum (grid*grid values, row-major), read from the
 *   first leading token's row (the CLS token); with no leading token, the mean of every token's row
 */
export function attentionRollout(attentions: Float32Array, layout: AttentionLayout, options: RolloutOptions = DEFAULT_ROLLOUT): Float32Array {
  if (!(options.discardRatio >= 0 && options.discardRatio < 1)) throw new RangeError(`discard ratio must be in [0, 1), got ${options.discardRatio}`);
  checkLayout(attentions, layout);
  const { layers, heads, leadingTokens: lead } = layout;
  const n = layout.tokens;
  const nn = n * n;
  let rollout: Float64Array = identity(n);
  const fused = new Float64Array(nn);
  const a = new Float64Array(nn);
  const order = new Uint32Array(nn);
  const discard = Math.floor(nn * options.discardRatio);

  for (let layer = 0; layer < layers; layer++) {
    fuseHeads(attentions, layer, heads, nn, options.headFusion, fused);
    if (discard > 0) {
      for (let i = 0; i < nn; i++) order[i] = i;
      order.sort((x, y) => fused[x] - fused[y]);
      // vit-explain never zeroes the CLS->CLS entry, even when it is among the lowest.
      for (let i = 0; i < discard; i++) if (order[i] !== 0 || lead === 0) fused[order[i]] = 0;
    }
    for (let i = 0; i < n; i++) {
      let rowSum = 0;
      for (let j = 0; j < n; j++) {
        const v = (fused[i * n + j] + (i === j ? 1 : 0)) / 2;
        a[i * n + j] = v;
        rowSum += v;
      }
      for (let j = 0; j < n; j++) a[i * n + j] /= rowSum;
    }
    rollout = matmul(a, rollout, n);
  }

  const patches = n - lead;
  const map = new Float32Array(patches);
  if (options.from === 'patches') {
    for (let i = lead; i < n; i++) for (let p = 0; p < patches; p++) map[p] += rollout[i * n + lead + p] / patches;
  } else if (lead > 0) {
    for (let p = 0; p < patches; p++) map[p] = rollout[lead + p];
  } else {
    for (let i = 0; i < n; i++) for (let p = 0; p < patches; p++) map[p] += rollout[i * n + p] / n;
  }
  let max = 0;
  for (let p = 0; p < patches; p++) max = Math.max(max, map[p]);
  for (let p = 0; p < patches; p++) map[p] = max > 0 ? map[p] / max : 0;
  return map;
}

function fuseHeads(attentions: Float32Array, layer: number, heads: number, nn: number, fusion: HeadFusion, out: Float64Array): void {
  const base = layer * heads * nn;
  for (let p = 0; p < nn; p++) {
    let acc = attentions[base + p];
    for (let h = 1; h < heads; h++) {
      const v = attentions[base + h * nn + p];
      acc = fusion === 'mean' ? acc + v : fusion === 'max' ? Math.max(acc, v) : Math.min(acc, v);
    }
    out[p] = fusion === 'mean' ? acc / heads : acc;
  }
}

function identity(n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + i] = 1;
  return m;
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      const bRow = k * n;
      const oRow = i * n;
      for (let j = 0; j < n; j++) out[oRow + j] += aik * b[bRow + j];
    }
  }
  return out;
}

/** Attention from one patch to every patch, for a layer and a head (or the mean over heads). */
export function attentionFromPatch(attentions: Float32Array, layout: AttentionLayout, patch: number, layer: number, head: number | 'mean'): Float32Array {
  checkLayout(attentions, layout);
  const { heads, tokens, leadingTokens: lead } = layout;
  const patches = tokens - lead;
  if (!(Number.isInteger(patch) && patch >= 0 && patch < patches)) throw new RangeError(`patch ${patch} is out of range (0..${patches - 1})`);
  const nn = tokens * tokens;
  const out = new Float32Array(patches);
  const hs = head === 'mean' ? [...Array(heads).keys()] : [head];
  for (const h of hs) {
    const row = (layer * heads + h) * nn + (lead + patch) * tokens + lead;
    for (let p = 0; p < patches; p++) out[p] += attentions[row + p] / hs.length;
  }
  return out;
}
