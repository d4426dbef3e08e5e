import type { BeitConfig } from '../modelConfig';
import { GraphBuilder } from './graphBuilder';
import { gatherRelativePositionBias, relativePositionIndex, relativePositionTableRows } from '../models/beit/relativePosition';

/** Looks up an HF tensor by name, checking its shape; throws a BeitLensError naming the tensor. */
export type WeightLookup = (name: string, shape: number[]) => Float32Array;

export type GraphOutputs = 'full' | 'logits';
/**
 * `optimized`: our graph — folded constants and onnxruntime's fused com.microsoft operators where
 * they are exact. `plain`: what a PyTorch export of the same weights looks like (standard ops,
 * runtime gather of the relative position table), kept as the benchmark peer.
 */
export type GraphStyle = 'optimized' | 'plain';
export type WeightType = 'fp32' | 'fp16' | 'int8';

export interface BeitGraphOptions {
  outputs: GraphOutputs;
  style: GraphStyle;
  /** fp16 is not built here: convert.ts runs the fp32 graph through onnx/float16.ts. */
  weightType: Exclude<WeightType, 'fp16'>;
  /** Adds `hidden_states` (and `pooled_output` to a plain graph) so tests can check every stage against the reference. */
  debugOutputs?: boolean;
}

export const OPSET = 17;
/**
 * The image embedding, the vector the classifier reads: `beit.pooler.layernorm(mean of the final patch tokens)`,
 * HF `BeitModel(...).pooler_output`, for mean pooling; the CLS token after the final LayerNorm for CLS pooling
 * (BEiT with use_mean_pooling false, ViT). Every optimized graph declares it; onnxruntime computes only the requested
 * outputs' paths and this one is on the logits' path anyway, so a run that asks for logits alone does not pay for it.
 * The plain graph (a PyTorch export's peer) has logits only, as such an export would.
 */
export const EMBEDDING_OUTPUT = 'pooled_output';
const CLASSIFIER_HINT = 'classifier';
/** The logits classifier's weight initializer ([hidden, labels]), in every style: `linear` names it `${hint}_wT`. */
export const CLASSIFIER_WEIGHT = `${CLASSIFIER_HINT}_wT`;
export const MS_OPSET = 1;

/**
 * The pre-norm encoder of every family (models/registry.ts): config.architecture says which parts a family has
 * (position embeddings, relative position biases, layer scale, key bias, pooling) and where its weights live.
 */
export function buildBeitGraph(config: BeitConfig, weight: WeightLookup, options: BeitGraphOptions): Uint8Array {
  const arch = config.architecture;
  const prefix = arch.prefix;
  const LAYER = (i: number) => `${prefix}.encoder.layer.${i}`;
  const g = new GraphBuilder(`${arch.family}_${options.outputs}_${options.style}`);
  const H = config.hiddenSize;
  const heads = config.numHeads;
  const hd = config.headDim;
  const T = config.numTokens;
  const P = config.patchSize;
  const L = config.numLabels;
  const fused = options.style === 'optimized';
  const int8 = options.weightType === 'int8';

  /** y = x @ W^T + b, with W in PyTorch's [out, in] layout. `int8Mode` says how an int8 graph computes it. */
  const linear = (x: string, w: Float32Array, b: Float32Array | undefined, outDim: number, inDim: number, hint: string, int8Mode: Int8Mode = 'corrected'): string => {
    const wT = transpose2d(w, outDim, inDim);
    if (int8 && int8Mode !== 'fp32') return int8Linear(x, wT, b, outDim, inDim, hint, int8Mode);
    const mm = g.node('MatMul', [x, g.initializer(`${hint}_wT`, wT, [inDim, outDim])]);
    return b ? g.node('Add', [mm, g.initializer(`${hint}_b`, b, [outDim])], {}) : mm;
  };

  let tokenMeanRows: { float: string; ones: string } | undefined;
  /**
   * int8 linear over the token sequence x [batch, T, in]: per-column symmetric int8 weights, activations
   * quantized per tensor to uint8 at run time (DynamicQuantizeLinear), integer matmul.
   *
   * Plain int8 (`plain`) rounds every token the same systematic way, and BEiT's mean pooling keeps exactly
   * that part: the logits see the token mean of each layer's error, (mean x) (W - Wq) from the weights and
   * (mean x - mean xq) Wq from the activations. On the random BEiT-base that put the top-1 label of 2-5% of
   * images off fp32. `corrected` adds both terms back per image, computed from the token means (two
   * matrix-vector products, ~1/200 of the matmul): what remains is each token's deviation from the mean
   * times the rounding error, which mean pooling averages away, except where a nonlinearity sits between
   * the projection and the pooling with a curvature that varies per token.
   *
   * That exception is the MLP's first projection, whose per-token weight error GELU turns into a pooled one
   * (the mean correction removed only ~25% of it): `residual` multiplies every token by the weights' own
   * int8 rounding residual instead (a second integer matmul, ~16-bit weights in effect) and keeps the
   * activation correction.
   */
  const int8Linear = (x: string, wT: Float32Array, b: Float32Array | undefined, outDim: number, inDim: number, hint: string, mode: Exclude<Int8Mode, 'fp32'>): string => {
    const ms = { domain: 'com.microsoft' };
    const q = quantizePerColumn(wT, inDim, outDim);
    const wq = g.initializer(`${hint}_w_int8`, q.values, [inDim, outDim]);
    const ws = g.initializer(`${hint}_w_scale`, q.scales, [outDim]);
    const bias = b ? [g.initializer(`${hint}_b`, b, [outDim])] : [];
    if (mode === 'plain') return g.node('DynamicQuantizeMatMul', [x, wq, ws, '', ...bias], ms);

    const r = quantizeResidual(wT, q, inDim, outDim);
    const rq = g.initializer(`${hint}_w_residual_int8`, r.values, [inDim, outDim]);
    const rs = g.initializer(`${hint}_w_residual_scale`, r.scales, [outDim]);
    const [xq, xScale, xZero] = g.nodeMulti('DynamicQuantizeLinear', [x], { outputs: 3 });
    const matmul = (w: string, scale: string, extra: string[]) => g.node('MatMulIntegerToFloat', [xq, w, xScale, scale, xZero, '', ...extra], ms);
    let y = matmul(wq, ws, bias);
    if (mode === 'residual') y = g.node('Add', [y, matmul(rq, rs, [])]);

    // Token means as [1, T] x [batch, T, in] products (ReduceMean over the token axis is ~20x slower here).
    tokenMeanRows ??= { float: g.initializer('token_mean_row', new Float32Array(T).fill(1 / T), [1, T]), ones: g.initializer('token_ones_u8', new Uint8Array(T).fill(1), [1, T]) };
    const mean = g.node('MatMul', [tokenMeanRows.float, x]);
    const meanQuantized = g.node('MatMulIntegerToFloat', [tokenMeanRows.ones, xq, g.constFloat(1 / T), xScale, '', xZero], ms);
    let correction = g.node('DynamicQuantizeMatMul', [g.node('Sub', [mean, meanQuantized]), wq, ws], ms);
    if (mode === 'corrected') correction = g.node('Add', [correction, g.node('DynamicQuantizeMatMul', [mean, rq, rs], ms)]);
    return g.node('Add', [y, correction]);
  };

  const layerNorm = (x: string, prefix: string): string =>
    g.node('LayerNormalization', [x, g.initializer(`${prefix}.weight`, weight(`${prefix}.weight`, [H]), [H]), g.initializer(`${prefix}.bias`, weight(`${prefix}.bias`, [H]), [H])], {
      attributes: { axis: -1, epsilon: { float: config.layerNormEps } },
    });

  const pixelValues = g.input('pixel_values', { elemType: 'float32', dims: ['batch', 3, config.imageSize, config.imageSize] });

  // Embeddings: [CLS; patch projections], plus absolute position embeddings where the family has them.
  const conv = g.node('Conv', [
    pixelValues,
    g.initializer('patch_w', weight(`${prefix}.embeddings.patch_embeddings.projection.weight`, [H, 3, P, P]), [H, 3, P, P]),
    g.initializer('patch_b', weight(`${prefix}.embeddings.patch_embeddings.projection.bias`, [H]), [H]),
  ], { attributes: { kernel_shape: [P, P], strides: [P, P] } });
  const patches = g.node('Transpose', [g.node('Reshape', [conv, g.constInt64([0, H, -1])])], { attributes: { perm: [0, 2, 1] } });
  const batch = g.node('Shape', [pixelValues], { attributes: { start: 0, end: 1 } });
  const cls = g.node('Expand', [
    g.initializer('cls_token', weight(`${prefix}.embeddings.cls_token`, [1, 1, H]), [1, 1, H]),
    g.node('Concat', [batch, g.constInt64([1, H])], { attributes: { axis: 0 } }),
  ]);
  let x = g.node('Concat', [cls, patches], { attributes: { axis: 1 } });
  if (arch.absolutePositionEmbeddings) {
    const name = `${prefix}.embeddings.position_embeddings`;
    x = g.node('Add', [x, g.initializer(name, weight(name, [1, T, H]), [1, T, H])]);
  }
  const hiddenStates = [x];

  const tableRows = relativePositionTableRows(config.gridSize);
  const hasRelativeBias = arch.perLayerRelativeBias || arch.sharedRelativeBias;
  const indexName = fused || !hasRelativeBias ? '' : g.initializer('relative_position_index', BigInt64Array.from(relativePositionIndex(config.gridSize), BigInt), [T * T]);
  const sharedTableName = `${prefix}.encoder.relative_position_bias.relative_position_bias_table`;
  const sharedTable = arch.sharedRelativeBias ? weight(sharedTableName, [tableRows, heads]) : undefined;
  /** The tables whose gathered biases add up to this layer's (HF adds the shared one to a per-layer one when both exist). */
  const layerTables = (a: string): { name: string; table: Float32Array }[] => [
    ...(arch.perLayerRelativeBias ? [{ name: `${a}.relative_position_bias_table`, table: weight(`${a}.relative_position_bias.relative_position_bias_table`, [tableRows, heads]) }] : []),
    ...(sharedTable ? [{ name: 'shared_relative_position_bias_table', table: sharedTable }] : []),
  ];
  // One initializer per table, so the shared table is stored once however many layers gather from it.
  const tableInitializers = new Map<Float32Array, string>();
  const tableInitializer = (t: { name: string; table: Float32Array }): string => {
    let name = tableInitializers.get(t.table);
    if (!name) tableInitializers.set(t.table, (name = g.initializer(t.name, t.table, [tableRows, heads])));
    return name;
  };
  /** The fused graphs' constant [heads, T, T] bias: the tables gathered at conversion time and summed. */
  const gatheredBias = (tables: { table: Float32Array }[]): Float32Array => {
    const sum = gatherRelativePositionBias(tables[0].table, heads, config.gridSize);
    for (const t of tables.slice(1)) {
      const more = gatherRelativePositionBias(t.table, heads, config.gridSize);
      for (let j = 0; j < sum.length; j++) sum[j] += more[j];
    }
    return sum;
  };
  const attentionProbs: string[] = [];
  const scale = 1 / Math.sqrt(hd);

  for (let i = 0; i < config.numLayers; i++) {
    const p = LAYER(i);
    const a = `${p}.attention.attention`;
    const wq = weight(`${a}.query.weight`, [H, H]);
    const bq = weight(`${a}.query.bias`, [H]);
    const wk = weight(`${a}.key.weight`, [H, H]);
    const bk = arch.keyBias ? weight(`${a}.key.bias`, [H]) : undefined;
    const wv = weight(`${a}.value.weight`, [H, H]);
    const bv = weight(`${a}.value.bias`, [H]);
    const tables = layerTables(a);
    const lambda1 = arch.layerScale ? weight(`${p}.lambda_1`, [H]) : undefined;
    const lambda2 = arch.layerScale ? weight(`${p}.lambda_2`, [H]) : undefined;
    const wo = weight(`${p}.attention.output.dense.weight`, [H, H]);
    const bo = weight(`${p}.attention.output.dense.bias`, [H]);
    const w1 = weight(`${p}.intermediate.dense.weight`, [config.intermediateSize, H]);
    const b1 = weight(`${p}.intermediate.dense.bias`, [config.intermediateSize]);
    const w2 = weight(`${p}.output.dense.weight`, [H, config.intermediateSize]);
    const b2 = weight(`${p}.output.dense.bias`, [H]);

    const h = layerNorm(x, `${p}.layernorm_before`);
    let context: string;
    if (fused && options.outputs === 'logits') {
      // One QKV projection; the score scale is folded into the query rows and the relative
      // position bias is gathered at conversion time and fed to the fused attention as a bias.
      const wqkv = concatRows([scaleRows(wq, scale), wk, wv]);
      const bqkv = concatVectors([scaleVector(bq, scale), bk ?? new Float32Array(H), bv]);
      const qkv = linear(h, wqkv, undefined, 3 * H, H, `${p}.qkv`);
      const [q, k, v] = g.nodeMulti('Split', [qkv, g.constInt64([H, H, H])], { attributes: { axis: 2 }, outputs: 3 });
      const bias = tables.length ? [g.initializer(`${a}.attention_bias`, gatheredBias(tables), [1, heads, T, T])] : [];
      context = g.node('MultiHeadAttention', [q, k, v, g.initializer(`${p}.qkv_bias`, bqkv, [3 * H]), ...(bias.length ? ['', ...bias] : [])], {
        domain: 'com.microsoft',
        attributes: { num_heads: heads, scale: { float: 1 } },
      });
    } else {
      const headsOf = (t: string, perm: number[]) => g.node('Transpose', [g.node('Reshape', [t, g.constInt64([0, 0, heads, hd])])], { attributes: { perm } });
      let q: string;
      let k: string;
      let v: string;
      if (fused) {
        const wqkv = concatRows([scaleRows(wq, scale), wk, wv]);
        const bqkv = concatVectors([scaleVector(bq, scale), bk ?? new Float32Array(H), bv]);
        const qkv = linear(h, wqkv, bqkv, 3 * H, H, `${p}.qkv`);
        [q, k, v] = g.nodeMulti('Split', [qkv, g.constInt64([H, H, H])], { attributes: { axis: 2 }, outputs: 3 });
      } else {
        q = linear(h, wq, bq, H, H, `${a}.query`);
        k = linear(h, wk, bk, H, H, `${a}.key`);
        v = linear(h, wv, bv, H, H, `${a}.value`);
      }
      let scores = g.node('MatMul', [headsOf(q, [0, 2, 1, 3]), headsOf(k, [0, 2, 3, 1])]);
      if (!fused) scores = g.node('Div', [scores, g.constFloat(Math.sqrt(hd))]);
      if (fused && tables.length) {
        scores = g.node('Add', [scores, g.initializer(`${a}.attention_bias`, gatheredBias(tables), [heads, T, T])]);
      } else {
        for (const t of tables) {
          const gathered = g.node('Gather', [tableInitializer(t), indexName]);
          scores = g.node('Add', [scores, g.node('Transpose', [g.node('Reshape', [gathered, g.constInt64([T, T, heads])])], { attributes: { perm: [2, 0, 1] } })]);
        }
      }
      const probs = g.node('Softmax', [scores], { attributes: { axis: -1 } });
      attentionProbs.push(probs);
      const ctx = g.node('MatMul', [probs, headsOf(v, [0, 2, 1, 3])]);
      context = g.node('Reshape', [g.node('Transpose', [ctx], { attributes: { perm: [0, 2, 1, 3] } }), g.constInt64([0, 0, H])]);
    }

    let mlpIn: string;
    if (fused) {
      // Layer scale folded into the output projection: lambda * (c W^T + b) = c (lambda W)^T + lambda b.
      const attnOut = lambda1 ? linear(context, scaleRows(wo, lambda1), mulVectors(bo, lambda1), H, H, `${p}.attention.output.dense`) : linear(context, wo, bo, H, H, `${p}.attention.output.dense`);
      // Add + LayerNormalization rather than com.microsoft SkipLayerNormalization: onnxruntime's CPU kernel for
      // the fused op (with the residual sum as an output) measured ~10x slower than the two ops it replaces,
      // 14% of the whole model at batch 1.
      x = g.node('Add', [x, attnOut]);
      mlpIn = layerNorm(x, `${p}.layernorm_after`);
    } else {
      const attnOut = linear(context, wo, bo, H, H, `${p}.attention.output.dense`);
      x = g.node('Add', [x, lambda1 ? g.node('Mul', [attnOut, g.initializer(`${p}.lambda_1`, lambda1, [H])]) : attnOut]);
      mlpIn = layerNorm(x, `${p}.layernorm_after`);
    }

    let activated: string;
    if (fused && !int8) {
      const mm = g.node('MatMul', [mlpIn, g.initializer(`${p}.intermediate.dense_wT`, transpose2d(w1, config.intermediateSize, H), [H, config.intermediateSize])]);
      activated = g.node('BiasGelu', [mm, g.initializer(`${p}.intermediate.dense_b`, b1, [config.intermediateSize])], { domain: 'com.microsoft' });
    } else {
      const pre = linear(mlpIn, w1, b1, config.intermediateSize, H, `${p}.intermediate.dense`, 'residual');
      activated = fused ? g.node('Gelu', [pre], { domain: 'com.microsoft' }) : exactGelu(g, pre);
    }

    if (fused) {
      const mlpOut = lambda2
        ? linear(activated, scaleRows(w2, lambda2), mulVectors(b2, lambda2), H, config.intermediateSize, `${p}.output.dense`)
        : linear(activated, w2, b2, H, config.intermediateSize, `${p}.output.dense`);
      x = g.node('Add', [x, mlpOut]);
    } else {
      const mlpOut = linear(activated, w2, b2, H, config.intermediateSize, `${p}.output.dense`);
      x = g.node('Add', [x, lambda2 ? g.node('Mul', [mlpOut, g.initializer(`${p}.lambda_2`, lambda2, [H])]) : mlpOut]);
    }
    hiddenStates.push(x);
  }

  // Mean pooling: mean of the patch tokens (CLS excluded), then the pooler LayerNorm. CLS pooling: the final
  // LayerNorm over every token, then the CLS token. The per-patch logits read the patch tokens through the same norm.
  const lead = arch.leadingTokens;
  const patchesOf = (t: string) => g.node('Slice', [t, g.constInt64([lead]), g.constInt64([T]), g.constInt64([1])]);
  let pooled: string;
  let normedPatches: () => string;
  if (arch.pooling === 'mean') {
    const patchTokens = patchesOf(x);
    const norm = `${prefix}.pooler.layernorm`;
    pooled = layerNorm(g.node('ReduceMean', [patchTokens], { attributes: { axes: [1], keepdims: 0 } }), norm);
    normedPatches = () => layerNorm(patchTokens, norm);
  } else {
    const normed = layerNorm(x, `${prefix}.layernorm`);
    pooled = g.node('Squeeze', [g.node('Slice', [normed, g.constInt64([0]), g.constInt64([1]), g.constInt64([1])]), g.constInt64([1])]);
    normedPatches = () => patchesOf(normed);
  }
  const wc = weight('classifier.weight', [L, H]);
  const bc = weight('classifier.bias', [L]);
  // int8 keeps the classifier in fp32: ~0.1% of the model's work, but its rounding lands on the logits
  // unaveraged (alone it put ~2% of top-1 labels off fp32). The per-patch logits are an explanation
  // overlay over 196 tokens (20% of the model's work in fp32), so they stay plain int8.
  const classifier = (t: string, hint: string, int8Mode: Int8Mode) => linear(t, wc, bc, L, H, hint, int8Mode);
  g.output('logits', classifier(pooled, CLASSIFIER_HINT, 'fp32'), { elemType: 'float32', dims: ['batch', L] });

  if (options.outputs === 'full') {
    const stacked = g.node('Concat', attentionProbs.map((probs) => g.node('Unsqueeze', [probs, g.constInt64([1])])), { attributes: { axis: 1 } });
    g.output('attentions', stacked, { elemType: 'float32', dims: ['batch', config.numLayers, heads, T, T] });
    g.output('patch_logits', classifier(normedPatches(), 'patch_classifier', 'plain'), { elemType: 'float32', dims: ['batch', T - lead, L] });
  }

  if (fused || options.debugOutputs) g.output(EMBEDDING_OUTPUT, pooled, { elemType: 'float32', dims: ['batch', H] });

  if (options.debugOutputs) {
    const stackedHidden = g.node('Concat', hiddenStates.map((h) => g.node('Unsqueeze', [h, g.constInt64([1])])), { attributes: { axis: 1 } });
    g.output('hidden_states', stackedHidden, { elemType: 'float32', dims: ['batch', config.numLayers + 1, T, H] });
  }

  return g.encode({
    opset: OPSET,
    msOpset: fused || int8 ? MS_OPSET : undefined,
    docString: `${arch.family} image classifier converted by beit-lens`,
    metadata: {
      'beit_lens.outputs': options.outputs,
      'beit_lens.style': options.style,
      'beit_lens.weight_type': options.weightType,
      'beit_lens.num_labels': String(L),
    },
  });
}

function exactGelu(g: GraphBuilder, x: string): string {
  // 0.5 * x * (1 + erf(x / sqrt(2))): the form PyTorch exports for nn.GELU() without approximation.
  const erf = g.node('Erf', [g.node('Div', [x, g.constFloat(Math.SQRT2)])]);
  return g.node('Mul', [g.node('Mul', [x, g.node('Add', [erf, g.constFloat(1)])]), g.constFloat(0.5)]);
}

function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

/** Scales row r of a [rows, cols] matrix by factor (or factor[r]). */
function scaleRows(w: Float32Array, factor: number | Float32Array): Float32Array {
  const rows = typeof factor === 'number' ? 1 : factor.length;
  const cols = w.length / rows;
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] * (typeof factor === 'number' ? factor : factor[Math.floor(i / cols)]);
  return out;
}

function scaleVector(v: Float32Array, factor: number): Float32Array {
  return v.map((x) => x * factor);
}

function mulVectors(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((x, i) => x * b[i]);
}

function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

const concatVectors = concatRows;

/**
 * How an int8 graph computes one linear (see int8Linear): `corrected` int8 plus per-image corrections of
 * the token-mean rounding error, `residual` also a second int8 matmul with the weights' rounding residual,
 * `plain` int8 alone, `fp32` not quantized.
 */
type Int8Mode = 'corrected' | 'residual' | 'plain' | 'fp32';

/**
 * Symmetric per-output-column int8 weights: each column of the [in, out] matrix gets its own scale, so
 * no output shares another's range.
 */
export function quantizePerColumn(wT: Float32Array, inDim: number, outDim: number): { values: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(outDim);
  for (let r = 0; r < inDim; r++) {
    for (let c = 0; c < outDim; c++) scales[c] = Math.max(scales[c], Math.abs(wT[r * outDim + c]));
  }
  for (let c = 0; c < outDim; c++) scales[c] = scales[c] > 0 ? scales[c] / 127 : 1;
  const values = new Int8Array(wT.length);
  for (let r = 0; r < inDim; r++) {
    for (let c = 0; c < outDim; c++) values[r * outDim + c] = Math.max(-127, Math.min(127, Math.round(wT[r * outDim + c] / scales[c])));
  }
  return { values, scales };
}

/**
 * What int8 rounding left of each weight (at most half a step of its column), itself in int8 at 1/254 of
 * the column's step: together the two are ~16-bit weights.
 */
function quantizeResidual(wT: Float32Array, q: { values: Int8Array; scales: Float32Array }, inDim: number, outDim: number): { values: Int8Array; scales: Float32Array } {
  const scales = q.scales.map((s) => s / 254);
  const values = new Int8Array(wT.length);
  for (let r = 0; r < inDim; r++) {
    for (let c = 0; c < outDim; c++) {
      const i = r * outDim + c;
      values[i] = Math.max(-127, Math.min(127, Math.round((wT[i] - q.values[i] * q.scales[c]) / scales[c])));
    }
  }
  return { values, scales };
}
