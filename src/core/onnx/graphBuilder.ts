import { onnx } from 'onnx-proto';

export type AttributeValue = number | string | number[] | { floats: number[] } | { int: number } | { float: number };

export type InitializerData = Float32Array | BigInt64Array | Int8Array | Uint8Array | Uint16Array | Int32Array;

export interface ValueShape {
  elemType: 'float32' | 'float16';
  dims: (number | string)[];
}

const ELEM_TYPE = { float32: onnx.TensorProto.DataType.FLOAT, float16: onnx.TensorProto.DataType.FLOAT16 };

/** Integer-valued numbers become INT attributes; wrap in `{ float }` or `{ floats }` to force floats. */
function attributeProto(name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: Buffer.from(value, 'utf8') };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  if ('int' in value) return { name, type: T.INT, i: value.int };
  return { name, type: T.FLOAT, f: value.float };
}

function dataTypeOf(data: InitializerData, float16: boolean): number {
  const D = onnx.TensorProto.DataType;
  if (data instanceof Float32Array) return D.FLOAT;
  if (data instanceof BigInt64Array) return D.INT64;
  if (data instanceof Int8Array) return D.INT8;
  if (data instanceof Uint8Array) return D.UINT8;
  if (data instanceof Int32Array) return D.INT32;
  return float16 ? D.FLOAT16 : D.UINT16;
}

/**
 * A thin, append-only way to write ONNX graphs from TypeScript. Names are generated so the BEiT
 * graph code reads like the model it builds instead of like protobuf bookkeeping.
 */
export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();
  private readonly constants = new Map<string, string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    let candidate = hint;
    while (this.usedNames.has(candidate)) candidate = `${hint}_${++this.counter}`;
    this.usedNames.add(candidate);
    return candidate;
  }

  input(name: string, shape: ValueShape): string {
    this.usedNames.add(name);
    this.inputs.push(valueInfo(name, shape));
    return name;
  }

  output(name: string, source: string, shape: ValueShape): void {
    if (source !== name) this.node('Identity', [source], { name });
    this.outputs.push(valueInfo(name, shape));
  }

  /** `float16: true` marks a Uint16Array as IEEE half floats rather than uint16 integers. */
  initializer(hint: string, data: InitializerData, dims: number[], options: { float16?: boolean } = {}): string {
    const name = this.fresh(hint);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({
      name,
      dims,
      dataType: dataTypeOf(data, options.float16 ?? false),
      // protobufjs keeps a reference; copy so a caller reusing its buffer cannot change the model.
      rawData: new Uint8Array(bytes),
    });
    return name;
  }

  /** Small shared constants (axes, shapes, scalars) are emitted once and reused by name. */
  constInt64(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.initializer(`const_i64_${values.join('_').replace(/-/g, 'm')}`, BigInt64Array.from(values.map(BigInt)), [values.length]);
      this.constants.set(key, name);
    }
    return name;
  }

  constFloat(value: number): string {
    const key = `f32:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.initializer('const_f32', Float32Array.of(value), []);
      this.constants.set(key, name);
    }
    return name;
  }

  node(
    opType: string,
    inputs: string[],
    options: { name?: string; attributes?: Record<string, AttributeValue>; domain?: string; outputs?: number } = {},
  ): string {
    const outs = this.nodeMulti(opType, inputs, { ...options, outputs: options.outputs ?? 1 });
    return outs[0];
  }

  nodeMulti(
    opType: string,
    inputs: string[],
    options: { name?: string; attributes?: Record<string, AttributeValue>; domain?: string; outputs: number },
  ): string[] {
    const base = options.name ?? this.fresh(opType.toLowerCase());
    if (options.name) this.usedNames.add(options.name);
    const outputs = Array.from({ length: options.outputs }, (_, i) => (i === 0 ? base : this.fresh(`${base}_out${i}`)));
    this.nodes.push({
      name: `${base}_node`,
      opType,
      domain: options.domain ?? '',
      input: inputs,
      output: outputs,
      attribute: Object.entries(options.attributes ?? {}).map(([k, v]) => attributeProto(k, v)),
    });
    return outputs;
  }

  encode(options: { opset: number; msOpset?: number; metadata?: Record<string, string>; docString?: string }): Uint8Array {
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: options.opset }];
    if (options.msOpset) opsetImport.push({ domain: 'com.microsoft', version: options.msOpset });
    const model: onnx.IModelProto = {
      irVersion: 8,
      producerName: 'beit-lens',
      producerVersion: '0.1.0',
      docString: options.docString,
      opsetImport,
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, shape: ValueShape): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[shape.elemType],
        shape: { dim: shape.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
