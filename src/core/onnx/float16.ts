import { onnx } from 'onnx-proto';
import { BeitLensError } from '../errors';
import { toFloat16 } from '../halfFloat';
import { decodeModel } from './decodeModel';
import { freshNames } from './graphNames';

/**
 * fp16 compute: rewrites a float32 ONNX graph so every float tensor inside it is float16, while its
 * interface stays float32 (a Cast after each float input, a Cast before each float output). What the
 * pass does, in order:
 *
 * - FLOAT initializers (and FLOAT tensors in Constant / ConstantOfShape attributes) become FLOAT16,
 *   rounded to nearest even; a finite value outside the fp16 range is refused, naming the tensor.
 *   Integer tensors (shapes, axes, indices) are left untouched.
 * - Cast nodes that cast to FLOAT cast to FLOAT16; a Cast of a FLOAT16 initializer to FLOAT16 (the
 *   weight-only fp16 form, `Cast(fp16 weight, to=FLOAT)`) is removed.
 * - value_info entries that said FLOAT say FLOAT16.
 * - The ops in `keepFloat32Ops` (default: ReduceMean, the mean pooling over the patch tokens) run in
 *   fp32 between Casts: an fp16 sum over hundreds of tokens can lose precision or overflow on
 *   providers that accumulate in the tensor's own type. The Casts cost one pass over [batch, tokens, hidden].
 * - Every op must be one this pass knows to be valid with float16 inputs (FP16_OPS); an unknown op is
 *   an error rather than a silently wrong graph. Outputs whose type is fixed to float32 whatever the
 *   input type (LayerNormalization's Mean/InvStdDev) must be unused.
 *
 * LayerNormalization, SkipLayerNormalization and Softmax keep fp32 statistics inside onnxruntime's
 * kernels for fp16 inputs (stash_type / U = float), so they need no fp32 island.
 */

const D = onnx.TensorProto.DataType;
export const FLOAT16_COMPUTE_METADATA = 'beit_lens.compute_type';

interface OpRule {
  /** Inputs that carry float data (the type-T ones): they are cast to fp32 when the op is kept in fp32. */
  floatInputs?: number[];
  /** Outputs whose element type is float32 whatever T is: they must be unused. */
  float32Outputs?: number[];
}

/** Ops checked to accept float16 for every float input, in onnxruntime (CPU, CUDA, WebGPU) and the ONNX spec. */
const FP16_OPS: Record<string, OpRule> = {
  Add: { floatInputs: [0, 1] },
  Sub: { floatInputs: [0, 1] },
  Mul: { floatInputs: [0, 1] },
  Div: { floatInputs: [0, 1] },
  MatMul: { floatInputs: [0, 1] },
  Gemm: { floatInputs: [0, 1, 2] },
  Conv: { floatInputs: [0, 1, 2] },
  Softmax: { floatInputs: [0] },
  Erf: { floatInputs: [0] },
  Sqrt: { floatInputs: [0] },
  Tanh: { floatInputs: [0] },
  Sigmoid: { floatInputs: [0] },
  Relu: { floatInputs: [0] },
  ReduceMean: { floatInputs: [0] },
  ReduceSum: { floatInputs: [0] },
  LayerNormalization: { floatInputs: [0, 1, 2], float32Outputs: [1, 2] },
  Transpose: { floatInputs: [0] },
  Reshape: { floatInputs: [0] },
  Flatten: { floatInputs: [0] },
  Squeeze: { floatInputs: [0] },
  Unsqueeze: { floatInputs: [0] },
  Concat: {},
  Split: { floatInputs: [0] },
  Slice: { floatInputs: [0] },
  Gather: { floatInputs: [0] },
  Expand: { floatInputs: [0] },
  Identity: { floatInputs: [0] },
  Shape: {},
  Cast: {},
  Constant: {},
  ConstantOfShape: {},
  'com.microsoft:MultiHeadAttention': {},
  'com.microsoft:SkipLayerNormalization': { float32Outputs: [1, 2] },
  'com.microsoft:BiasGelu': { floatInputs: [0, 1] },
  'com.microsoft:Gelu': { floatInputs: [0] },
};

export interface Float16Options {
  /** Op types computed in fp32 between Casts (default `['ReduceMean']`). */
  keepFloat32Ops?: readonly string[];
  /** Standard-domain nodes also computed in fp32, chosen by any of their inputs (e.g. a weight initializer's name). */
  keepFloat32Inputs?: readonly string[];
}

export interface Float16Report {
  /** FLOAT initializers (and Constant tensors) converted. */
  tensors: number;
  /** Float values converted. */
  values: number;
  /** Non-zero values that became zero in fp16 (smaller than 2^-25). */
  flushedToZero: number;
  /** Non-zero values stored as fp16 subnormals (fewer significant bits). */
  subnormal: number;
  /** Weight-only fp16 Casts removed. */
  castsRemoved: number;
  /** Ops kept in fp32 (with Casts around them). */
  float32Ops: number;
}

/** Converts encoded fp32 ONNX model bytes to an fp16-compute model (see the module comment). */
export function convertToFloat16Compute(bytes: Uint8Array, options: Float16Options = {}): { bytes: Uint8Array; report: Float16Report } {
  const model = decodeModel(bytes);
  const report = convertModelToFloat16(model, options);
  return { bytes: onnx.ModelProto.encode(model).finish(), report };
}

/** Rewrites a decoded ModelProto in place. */
export function convertModelToFloat16(model: onnx.IModelProto, options: Float16Options = {}): Float16Report {
  const graph = model.graph;
  if (!graph) throw new BeitLensError('INTERNAL', 'fp16 conversion: the model has no graph');
  const keepOps = new Set(options.keepFloat32Ops ?? ['ReduceMean']);
  const keepInputs = new Set(options.keepFloat32Inputs ?? []);
  const keep = { has: (n: onnx.INodeProto) => keepOps.has(n.opType ?? '') || (n.input ?? []).some((i) => keepInputs.has(i)) };
  const report: Float16Report = { tensors: 0, values: 0, flushedToZero: 0, subnormal: 0, castsRemoved: 0, float32Ops: 0 };
  const nodes = graph.node ?? [];
  const initializers = graph.initializer ?? [];
  const fresh = freshNames(graph);

  // 1. Every op must be known to work in fp16, and its fp32-only outputs unused.
  const consumed = new Set<string>(nodes.flatMap((n) => n.input ?? []));
  for (const o of graph.output ?? []) consumed.add(o.name ?? '');
  for (const n of nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}:${n.opType}` : n.opType ?? '';
    const rule = FP16_OPS[key];
    if (!rule) throw new BeitLensError('INTERNAL', `fp16 conversion: op ${key} (node ${n.name}) is not known to be valid in float16`);
    for (const i of rule.float32Outputs ?? []) {
      const out = n.output?.[i];
      if (out && consumed.has(out)) throw new BeitLensError('INTERNAL', `fp16 conversion: output ${i} of ${key} (node ${n.name}) is float32 whatever the input type, but it is used`);
    }
    if (keep.has(n) && !rule.floatInputs) throw new BeitLensError('INTERNAL', `fp16 conversion: cannot keep ${key} in fp32 (its float inputs are not known)`);
  }

  // 2. Initializers and constant tensors.
  const fp16Initializers = new Set<string>();
  for (const t of initializers) {
    if (t.dataType === D.FLOAT) convertTensor(t, report);
    if (t.dataType === D.FLOAT16) fp16Initializers.add(t.name ?? '');
  }
  for (const n of nodes) {
    for (const a of n.attribute ?? []) {
      if (a.t && a.t.dataType === D.FLOAT) convertTensor(a.t, report, `${n.opType} ${n.name}`);
      if (n.opType === 'Constant' && a.name === 'value_float') {
        // A float scalar attribute: make it an fp16 tensor.
        const t: onnx.ITensorProto = { dataType: D.FLOAT, dims: [], rawData: new Uint8Array(Float32Array.of(a.f ?? 0).buffer) };
        convertTensor(t, report, `Constant ${n.name}`);
        a.name = 'value';
        a.type = onnx.AttributeProto.AttributeType.TENSOR;
        a.t = t;
        delete a.f;
      }
      if (n.opType === 'Constant' && a.name === 'value_floats') {
        throw new BeitLensError('INTERNAL', `fp16 conversion: Constant ${n.name} with value_floats is not supported`);
      }
    }
  }

  // 3. Casts: to FLOAT becomes to FLOAT16; a Cast of an fp16 initializer to fp16 is a no-op, removed.
  const rename = new Map<string, string>();
  const kept: onnx.INodeProto[] = [];
  for (const n of nodes) {
    if (n.opType === 'Cast' && (!n.domain || n.domain === 'ai.onnx')) {
      const to = n.attribute?.find((a) => a.name === 'to');
      if (to && Number(to.i) === D.FLOAT) to.i = D.FLOAT16;
      const input = n.input?.[0] ?? '';
      const output = n.output?.[0] ?? '';
      if (to && Number(to.i) === D.FLOAT16 && fp16Initializers.has(input) && !(graph.output ?? []).some((o) => o.name === output)) {
        rename.set(output, input);
        report.castsRemoved++;
        continue;
      }
    }
    kept.push(n);
  }
  for (const n of kept) n.input = (n.input ?? []).map((i) => rename.get(i) ?? i);

  // 4. fp32 islands.
  const float32Values = new Set<string>();
  const withIslands: onnx.INodeProto[] = [];
  for (const n of kept) {
    if (!keep.has(n) || (n.domain && n.domain !== 'ai.onnx')) {
      withIslands.push(n);
      continue;
    }
    report.float32Ops++;
    const floatInputs = FP16_OPS[n.opType ?? '']?.floatInputs ?? [];
    n.input = (n.input ?? []).map((input, i) => {
      if (!input || !floatInputs.includes(i)) return input;
      const cast = fresh(`${input}_fp32`);
      float32Values.add(cast);
      withIslands.push(castNode(input, cast, D.FLOAT, fresh(`${cast}_cast`)));
      return cast;
    });
    withIslands.push(n);
    const after: onnx.INodeProto[] = [];
    n.output = (n.output ?? []).map((output) => {
      if (!output) return output;
      const inner = fresh(`${output}_fp32`);
      float32Values.add(inner);
      after.push(castNode(inner, output, D.FLOAT16, fresh(`${output}_cast`)));
      return inner;
    });
    withIslands.push(...after);
  }

  // 5. The interface stays float32: Cast after each float input, before each float output.
  const initializerNames = new Set(initializers.map((t) => t.name ?? ''));
  const head: onnx.INodeProto[] = [];
  for (const input of graph.input ?? []) {
    if (!input.name || initializerNames.has(input.name) || input.type?.tensorType?.elemType !== D.FLOAT) continue;
    const half = fresh(`${input.name}_fp16`);
    for (const n of withIslands) n.input = (n.input ?? []).map((i) => (i === input.name ? half : i));
    head.push(castNode(input.name, half, D.FLOAT16, fresh(`${half}_cast`)));
  }
  const tail: onnx.INodeProto[] = [];
  for (const output of graph.output ?? []) {
    if (!output.name || output.type?.tensorType?.elemType !== D.FLOAT) continue;
    const half = fresh(`${output.name}_fp16`);
    for (const n of withIslands) {
      n.input = (n.input ?? []).map((i) => (i === output.name ? half : i));
      n.output = (n.output ?? []).map((o) => (o === output.name ? half : o));
    }
    tail.push(castNode(half, output.name, D.FLOAT, fresh(`${half}_cast`)));
  }
  graph.node = [...head, ...withIslands, ...tail];

  // 6. Intermediate type annotations.
  for (const v of graph.valueInfo ?? []) {
    const tt = v.type?.tensorType;
    if (tt && tt.elemType === D.FLOAT && !float32Values.has(v.name ?? '')) tt.elemType = D.FLOAT16;
  }

  // 7. Say so in the metadata.
  const props = (model.metadataProps ??= []);
  const setProp = (key: string, value: string) => {
    const p = props.find((e) => e.key === key);
    if (p) p.value = value;
    else props.push({ key, value });
  };
  if (props.some((p) => p.key === 'beit_lens.weight_type')) setProp('beit_lens.weight_type', 'fp16');
  setProp(FLOAT16_COMPUTE_METADATA, 'fp16');
  return report;
}

function castNode(input: string, output: string, to: number, name: string): onnx.INodeProto {
  return { name, opType: 'Cast', domain: '', input: [input], output: [output], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to }] };
}

const FP16_MAX = 65504;
const FP16_MIN_NONZERO = 2 ** -24;
const FP16_MIN_NORMAL = 2 ** -14;

function convertTensor(t: onnx.ITensorProto, report: Float16Report, where = `initializer ${t.name}`): void {
  let values: Float32Array;
  if (t.rawData && t.rawData.byteLength > 0) {
    const raw = t.rawData.byteOffset % 4 === 0 ? t.rawData : new Uint8Array(t.rawData);
    values = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  } else {
    values = Float32Array.from(t.floatData ?? []);
  }
  for (let i = 0; i < values.length; i++) {
    const v = Math.abs(values[i]);
    if (v > FP16_MAX && v !== Infinity) {
      throw new BeitLensError('WEIGHTS_INVALID', `fp16 conversion: ${where} holds ${values[i]}, outside the float16 range (±${FP16_MAX})`);
    }
    // Values below half the smallest subnormal round to zero (exactly half rounds to even, i.e. zero).
    if (v !== 0 && v <= FP16_MIN_NONZERO / 2) report.flushedToZero++;
    else if (v !== 0 && v < FP16_MIN_NORMAL) report.subnormal++;
  }
  const half = toFloat16(values);
  t.dataType = D.FLOAT16;
  t.rawData = new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
  t.floatData = [];
  report.tensors++;
  report.values += values.length;
}

export type ComputePrecision = 'fp32' | 'fp16';

/**
 * The one-line note for an fp16-compute model on the CPU execution provider (undefined when there is
 * nothing to say). Running it there is allowed, only pointless: doctor and BeitModel.load say so.
 */
export function cpuFloat16Note(precision: ComputePrecision, provider: string): string | undefined {
  if (precision !== 'fp16' || provider !== 'cpu') return undefined;
  // Measured (random BEiT-base, onnxruntime-node 1.30, 2 cores): the CPU provider casts fp16 around its fp32
  // kernels, so the fp16 graph runs at the fp32 graph's speed (421 vs 426 ms) with fp16 rounding added.
  return 'note: this model computes in fp16, which only GPU providers speed up; on the CPU it is no faster than fp32 and less precise: use a fp32 or int8 conversion there (beit-lens convert --dtype fp32|int8)';
}
