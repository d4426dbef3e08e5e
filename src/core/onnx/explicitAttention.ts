import { onnx } from 'onnx-proto';
import { decodeModel } from './decodeModel';
import { freshNames } from './graphNames';

/**
 * Rewrites com.microsoft MultiHeadAttention nodes into standard ONNX ops (MatMul, Add, Softmax,
 * MatMul), for providers whose fused attention kernel cannot be trusted.
 *
 * Why: onnxruntime-node 1.30's WebGPU MultiHeadAttention returned results off by 1e-2 to 4e-2 (unit-scale
 * inputs, sequence length 64 or 197) on Mesa's lavapipe, a conformant Vulkan implementation, where its
 * MatMul and Softmax kernels match PyTorch to 1e-6. The kernel it picks depends on the adapter's features
 * (a flash-attention path where subgroups exist; upstream issues report wrong results on both paths at
 * times), and on an H100 it was right; which adapters are affected is unknown. The standard ops also
 * measured faster than the fused node there at batch 64, so WebGPU sessions always get them.
 *
 * Only the self-attention form this project emits is rewritten: query, key and value as separate
 * [batch, sequence, hidden] inputs, an optional packed bias, an optional attention bias, no padding mask,
 * no past state, only the first output used. A node in another form is left alone.
 */
export function expandMultiHeadAttention(model: onnx.IModelProto): number {
  const graph = model.graph;
  if (!graph?.node) return 0;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const fresh = freshNames(graph);
  const newInitializers: onnx.ITensorProto[] = [];
  const int64 = (hint: string, values: number[]): string => {
    const name = fresh(hint);
    newInitializers.push({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], int64Data: values });
    return name;
  };
  let shapes: { split: string; merge: string } | undefined;

  const rewritten: onnx.INodeProto[] = [];
  let count = 0;
  for (const node of graph.node) {
    const plan = node.domain === 'com.microsoft' && node.opType === 'MultiHeadAttention' ? planFor(node, initializers) : undefined;
    if (!plan) {
      rewritten.push(node);
      continue;
    }
    count++;
    const base = node.name || `mha${count}`;
    const emit = (opType: string, inputs: string[], attribute: onnx.IAttributeProto[] = []): string => {
      const output = fresh(`${base}/${opType}`);
      rewritten.push({ name: fresh(`${base}/${opType}_node`), opType, input: inputs, output: [output], attribute });
      return output;
    };
    shapes ??= { split: int64('mha_heads_shape', [0, 0, plan.heads, -1]), merge: int64('mha_merge_shape', [0, 0, -1]) };
    let [q, k, v] = plan.qkv;
    if (plan.bias) {
      const parts = [fresh(`${base}/bias_q`), fresh(`${base}/bias_k`), fresh(`${base}/bias_v`)];
      rewritten.push({ name: fresh(`${base}/Split_node`), opType: 'Split', input: [plan.bias], output: parts, attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] });
      [q, k, v] = [emit('Add', [q, parts[0]]), emit('Add', [k, parts[1]]), emit('Add', [v, parts[2]])];
    }
    const heads = (t: string, perm: number[]) => emit('Transpose', [emit('Reshape', [t, shapes!.split])], [ints('perm', perm)]);
    let scores = emit('MatMul', [heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1])]);
    if (plan.scale !== 1) {
      // CastLike gives the constant the scores' type, float32 or float16, without knowing the graph's.
      const scale = fresh(`${base}/scale`);
      newInitializers.push({ name: scale, dataType: onnx.TensorProto.DataType.FLOAT, dims: [], floatData: [plan.scale] });
      scores = emit('Mul', [scores, emit('CastLike', [scale, scores])]);
    }
    if (plan.attentionBias) scores = emit('Add', [scores, plan.attentionBias]);
    const probs = emit('Softmax', [scores], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }]);
    const context = emit('Transpose', [emit('MatMul', [probs, heads(v, [0, 2, 1, 3])])], [ints('perm', [0, 2, 1, 3])]);
    rewritten.push({ name: fresh(`${base}/Reshape_out_node`), opType: 'Reshape', input: [context, shapes.merge], output: [node.output![0]] });
  }
  if (count > 0) {
    graph.node = rewritten;
    graph.initializer = [...(graph.initializer ?? []), ...newInitializers];
  }
  return count;
}

/** Encoded model bytes with MultiHeadAttention expanded, or undefined when there was none to expand. */
export function withExplicitAttention(bytes: Uint8Array): Uint8Array | undefined {
  const model = decodeModel(bytes);
  return expandMultiHeadAttention(model) > 0 ? onnx.ModelProto.encode(model).finish() : undefined;
}

interface AttentionPlan {
  qkv: [string, string, string];
  bias?: string;
  attentionBias?: string;
  heads: number;
  scale: number;
}

function planFor(node: onnx.INodeProto, initializers: Map<string, onnx.ITensorProto>): AttentionPlan | undefined {
  const input = node.input ?? [];
  const [q, k, v, bias, padding, attentionBias, ...rest] = input;
  if (!q || !k || !v || padding || rest.some(Boolean)) return undefined;
  if ((node.output ?? []).slice(1).some(Boolean)) return undefined;
  const attr = new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
  const heads = Number(attr.get('num_heads')?.i ?? 0);
  if (!(heads > 0) || Number(attr.get('unidirectional')?.i ?? 0) !== 0) return undefined;
  for (const name of attr.keys()) if (!['num_heads', 'scale', 'unidirectional', 'mask_filter_value'].includes(name)) return undefined;
  // The default scale is 1/sqrt(head size); the head size is known here only from a packed bias initializer ([3 * hidden]).
  const biasTensor = bias ? initializers.get(bias) : undefined;
  const declared = attr.get('scale')?.f;
  const hidden = biasTensor?.dims?.length === 1 ? Number(biasTensor.dims[0]) / 3 : undefined;
  const scale = declared ? declared : hidden ? 1 / Math.sqrt(hidden / heads) : undefined;
  if (scale === undefined) return undefined;
  return { qkv: [q, k, v], bias: bias || undefined, attentionBias: attentionBias || undefined, heads, scale };
}

function ints(name: string, values: number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}
