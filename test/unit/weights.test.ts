import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { BeitLensError } from '../../src/core/errors';
import { parsePytorchCheckpoint, readPytorchCheckpoint } from '../../src/core/weights/pytorchCheckpoint';
import { parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from '../../src/core/weights/safetensors';
import { getFloat, loadStateDict, type NamedTensor, type StateDict } from '../../src/core/weights/stateDict';
import { FuzzCounter, fuzzParameters, fuzzTimeout } from '../helpers/fuzz';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'beit-tiny');
const SAFETENSORS_FIXTURE = path.join(FIXTURES, 'model.safetensors');
const PYTORCH_FIXTURE = path.join(FIXTURES, 'pytorch_model.bin');
const INDEX_SUFFIX = '.attention.attention.relative_position_bias.relative_position_index';

function bytesOf(data: Float32Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function assertBitIdentical(actual: NamedTensor, expected: NamedTensor, name: string): void {
  assert.equal(actual.dtype, expected.dtype, name);
  assert.deepEqual(actual.shape, expected.shape, name);
  assert.ok(Buffer.from(bytesOf(actual.data)).equals(Buffer.from(bytesOf(expected.data))), `${name} differs`);
}

/** Runs `action` and checks it fails with a WEIGHTS_INVALID BeitLensError whose message matches `message`. */
async function assertWeightsInvalid(action: () => unknown, message: RegExp): Promise<void> {
  await assert.rejects(
    async () => action(),
    (err: unknown) => {
      assert.ok(err instanceof BeitLensError, `expected a BeitLensError, got ${String(err)}`);
      assert.equal(err.code, 'WEIGHTS_INVALID');
      assert.match(err.message, message);
      assert.ok(!err.message.includes('\n'), 'messages are one line');
      return true;
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Hand-assembled safetensors and pickles, so hostile inputs can be described field by field.
// ---------------------------------------------------------------------------------------------

function safetensorsBytes(header: unknown, data: Uint8Array, options: { headerLength?: bigint; rawHeader?: Uint8Array } = {}): Uint8Array {
  const json = options.rawHeader ?? new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, options.headerLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

const textBytes = (text: string) => [...Buffer.from(text, 'utf8')];
const u32 = (value: number) => [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];

/** Protocol-2 pickle opcodes (plus STACK_GLOBAL from protocol 4), as byte arrays to concatenate. */
const op = {
  proto: [0x80, 2],
  stop: [0x2e],
  mark: [0x28],
  tuple: [0x74],
  emptyTuple: [0x29],
  emptyDict: [0x7d],
  emptyList: [0x5d],
  list: [0x6c],
  append: [0x61],
  setitem: [0x73],
  setitems: [0x75],
  reduce: [0x52],
  build: [0x62],
  binpersid: [0x51],
  newfalse: [0x89],
  stackGlobal: [0x93],
  global: (module: string, name: string) => [0x63, ...textBytes(`${module}\n${name}\n`)],
  str: (text: string) => [0x58, ...u32(Buffer.byteLength(text)), ...textBytes(text)],
  int: (value: number) => [0x4a, ...u32(value)],
  ints: (values: number[]) => [0x28, ...values.flatMap((v) => op.int(v)), 0x74],
  /** BINBYTES with a signed 32-bit length. */
  binbytes: (length: number) => [0x42, ...u32(length)],
};

interface TensorSpec {
  name: string;
  storageType?: string;
  key: string;
  numel: number;
  offset?: number;
  size: number[];
  stride: number[];
  asParameter?: boolean;
}

/** The opcodes torch.save emits for one tensor (see the fixture's data.pkl). */
function rebuildTensorOps(t: TensorSpec): number[] {
  const emptyOrderedDict = [...op.global('collections', 'OrderedDict'), ...op.emptyTuple, ...op.reduce];
  const storageType = op.global('torch', t.storageType ?? 'FloatStorage');
  const storage = [...op.mark, ...op.str('storage'), ...storageType, ...op.str(t.key), ...op.str('cpu'), ...op.int(t.numel), ...op.tuple, ...op.binpersid];
  const args = [...storage, ...op.int(t.offset ?? 0), ...op.ints(t.size), ...op.ints(t.stride), ...op.newfalse, ...emptyOrderedDict];
  const tensor = [...op.global('torch._utils', '_rebuild_tensor_v2'), ...op.mark, ...args, ...op.tuple, ...op.reduce];
  if (!t.asParameter) return tensor;
  const parameterArgs = [...op.mark, ...tensor, ...op.newfalse, ...emptyOrderedDict, ...op.tuple];
  return [...op.global('torch._utils', '_rebuild_parameter'), ...parameterArgs, ...op.reduce];
}

function stateDictPickle(tensors: TensorSpec[]): Uint8Array {
  const items = tensors.flatMap((t) => [...op.str(t.name), ...rebuildTensorOps(t)]);
  const orderedDict = [...op.global('collections', 'OrderedDict'), ...op.emptyTuple, ...op.reduce];
  return Uint8Array.from([...op.proto, ...orderedDict, ...op.mark, ...items, ...op.setitems, ...op.stop]);
}

function torchZip(pickle: Uint8Array | number[], storages: Record<string, Uint8Array>, byteorder = 'little'): Uint8Array {
  const files: Zippable = { 'archive/data.pkl': Uint8Array.from(pickle), 'archive/byteorder': new TextEncoder().encode(byteorder) };
  for (const [key, bytes] of Object.entries(storages)) files[`archive/data/${key}`] = bytes;
  files['archive/version'] = new TextEncoder().encode('3\n');
  return zipSync(files, { level: 0 });
}

/** Byte offset of the central directory record for `name`; field offsets below are per the zip specification. */
function centralDirectoryRecord(zip: Uint8Array, name: string): number {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let at = 0; at + 46 <= zip.length; at++) {
    if (view.getUint32(at, true) !== 0x02014b50) continue;
    const nameLength = view.getUint16(at + 28, true);
    if (Buffer.from(zip.subarray(at + 46, at + 46 + nameLength)).toString() === name) return at;
  }
  throw new Error(`no central directory record for ${name}`);
}

function patchCentralDirectory(zip: Uint8Array, name: string, fields: { compressedSize?: number; size?: number; localHeaderOffset?: number }): void {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const record = centralDirectoryRecord(zip, name);
  if (fields.compressedSize !== undefined) view.setUint32(record + 20, fields.compressedSize, true);
  if (fields.size !== undefined) view.setUint32(record + 24, fields.size, true);
  if (fields.localHeaderOffset !== undefined) view.setUint32(record + 42, fields.localHeaderOffset, true);
}

const SIX_FLOATS = new Float32Array([0, 1, 2, 3, 4, 5]);

/** A tiny checkpoint whose single tensor views the six-float storage "0" as described. */
function oneTensorCheckpoint(spec: Partial<TensorSpec>): Uint8Array {
  const tensor: TensorSpec = { name: 'w', key: '0', numel: 6, size: [2, 3], stride: [3, 1], ...spec };
  return torchZip(stateDictPickle([tensor]), { '0': bytesOf(SIX_FLOATS) });
}

// ---------------------------------------------------------------------------------------------

describe('fixture checkpoints', () => {
  it('reads pytorch_model.bin bit-identical to model.safetensors, plus the int64 index buffers', async () => {
    const fromSafetensors = await readSafetensors(SAFETENSORS_FIXTURE);
    const fromPytorch = await readPytorchCheckpoint(PYTORCH_FIXTURE);

    const indexKeys = [...fromPytorch.keys()].filter((k) => k.endsWith(INDEX_SUFFIX));
    assert.deepEqual(indexKeys, [0, 1].map((layer) => `beit.encoder.layer.${layer}${INDEX_SUFFIX}`));
    assert.deepEqual([...fromPytorch.keys()].filter((k) => !k.endsWith(INDEX_SUFFIX)).sort(), [...fromSafetensors.keys()].sort());
    for (const [name, tensor] of fromSafetensors) {
      assert.equal(tensor.dtype, 'float32', name);
      assertBitIdentical(fromPytorch.get(name)!, tensor, name);
    }

    const table = 'beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table';
    assert.deepEqual(fromPytorch.get(table)!.shape, [732, 4]);
    assert.deepEqual(fromSafetensors.get('beit.embeddings.patch_embeddings.projection.weight')!.shape, [32, 3, 16, 16]);
    assert.deepEqual(fromSafetensors.get('classifier.weight')!.shape, [10, 32]);
    let parameters = 0;
    for (const tensor of fromSafetensors.values()) parameters += tensor.data.length;
    assert.equal(parameters, 56362);

    for (const name of indexKeys) {
      const index = fromPytorch.get(name)!;
      assert.equal(index.dtype, 'int64');
      assert.deepEqual(index.shape, [197, 197]);
      const data = index.data as BigInt64Array;
      for (let i = 0; i < 197; i++) {
        for (let j = 0; j < 197; j++) {
          const [yi, xi, yj, xj] = [Math.floor((i - 1) / 14), (i - 1) % 14, Math.floor((j - 1) / 14), (j - 1) % 14];
          const expected = i === 0 ? (j === 0 ? 731 : 729) : j === 0 ? 730 : (yi - yj + 13) * 27 + (xi - xj + 13);
          assert.equal(data[i * 197 + j], BigInt(expected), `${name}[${i}][${j}]`);
        }
      }
    }
  });

  it('loadStateDict prefers model.safetensors, falls back to pytorch_model.bin, and names the folder otherwise', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'beit-weights-'));
    try {
      await writeFile(path.join(dir, 'pytorch_model.bin'), await readFile(PYTORCH_FIXTURE));
      const fromBin = await loadStateDict(dir);
      assert.equal(fromBin.source, path.join(dir, 'pytorch_model.bin'));
      assert.equal(fromBin.stateDict.size, 45);

      await writeFile(path.join(dir, 'model.safetensors'), await readFile(SAFETENSORS_FIXTURE));
      const preferred = await loadStateDict(dir);
      assert.equal(preferred.source, path.join(dir, 'model.safetensors'));
      assert.equal(preferred.stateDict.size, 43);

      const empty = await mkdtemp(path.join(os.tmpdir(), 'beit-weights-empty-'));
      await assert.rejects(loadStateDict(empty), (err: unknown) => err instanceof BeitLensError && err.code === 'FILE_NOT_FOUND' && err.message.includes(empty));
      await rm(empty, { recursive: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('getFloat checks presence, dtype and shape', async () => {
    const sd = await readPytorchCheckpoint(PYTORCH_FIXTURE);
    assert.equal(getFloat(sd, 'classifier.bias', [10]).length, 10);
    const check = (action: () => unknown, message: string) =>
      assert.throws(action, (err: unknown) => err instanceof BeitLensError && err.code === 'WEIGHTS_INVALID' && err.message === message);
    check(() => getFloat(sd, 'nope', undefined, 'ckpt.bin'), 'ckpt.bin: missing tensor nope');
    check(() => getFloat(sd, 'classifier.weight', [32, 10]), 'tensor classifier.weight has shape [10,32], expected [32,10]');
    check(() => getFloat(sd, `beit.encoder.layer.0${INDEX_SUFFIX}`), `tensor beit.encoder.layer.0${INDEX_SUFFIX} has dtype int64, expected float32`);
  });
});

describe('safetensors', () => {
  it('round-trips writeSafetensors / readSafetensors bit for bit', async () => {
    const sd: StateDict = new Map<string, NamedTensor>([
      ['weight', { dtype: 'float32', shape: [2, 3], data: new Float32Array([1.5, -0, NaN, Infinity, 1e-45, -3.25]) }],
      ['scalar', { dtype: 'float32', shape: [], data: new Float32Array([7]) }],
      ['empty', { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) }],
      ['index', { dtype: 'int64', shape: [3], data: new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]) }],
    ]);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'beit-safetensors-'));
    try {
      const file = path.join(dir, 'model.safetensors');
      await writeSafetensors(file, sd, { format: 'pt' });
      const bytes = await readFile(file);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      assert.equal(headerLength % 8, 0, 'data section starts 8-aligned');
      assert.deepEqual(JSON.parse(bytes.subarray(8, 8 + headerLength).toString()).__metadata__, { format: 'pt' });

      const back = await readSafetensors(file);
      assert.deepEqual([...back.keys()].sort(), [...sd.keys()].sort());
      for (const [name, tensor] of sd) assertBitIdentical(back.get(name)!, tensor, name);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to write a tensor whose data does not match its shape', () => {
    const sd: StateDict = new Map([['bad', { dtype: 'float32', shape: [4], data: new Float32Array(3) }]]);
    assert.throws(() => serializeSafetensors(sd), (err: unknown) => err instanceof BeitLensError && err.code === 'INTERNAL');
  });

  it('converts F16, BF16, F64 and integer types, including at unaligned offsets', () => {
    const data = Buffer.alloc(1 + 12 + 4 + 8 + 16 + 4 + 4);
    let at = 1; // with the data section 8-aligned, a leading U8 tensor leaves every later tensor misaligned
    data.writeUInt8(200, 0);
    for (const half of [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00]) at = data.writeUInt16LE(half, at);
    for (const bf of [0x3f80, 0xc040]) at = data.writeUInt16LE(bf, at);
    at = data.writeDoubleLE(0.1, at);
    for (const v of [-(2n ** 63n), 2n ** 63n - 1n]) at = data.writeBigInt64LE(v, at);
    at = data.writeInt32LE(-5, at);
    at = data.writeFloatLE(-1.5, at);
    const header = {
      u8: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
      f16: { dtype: 'F16', shape: [6], data_offsets: [1, 13] },
      bf16: { dtype: 'BF16', shape: [2], data_offsets: [13, 17] },
      f64: { dtype: 'F64', shape: [], data_offsets: [17, 25] },
      i64: { dtype: 'I64', shape: [2], data_offsets: [25, 41] },
      i32: { dtype: 'I32', shape: [1], data_offsets: [41, 45] },
      f32: { dtype: 'F32', shape: [1], data_offsets: [45, 49] },
    };
    const json = JSON.stringify(header);
    const padded = json.padEnd(Math.ceil(json.length / 8) * 8);
    // Through a Buffer, as readSafetensors passes it: Buffer.slice() is a view, so misaligned data must be copied some other way.
    const sd = parseSafetensors(Buffer.from(safetensorsBytes(padded, data)));
    assert.deepEqual([...(sd.get('u8')!.data as BigInt64Array)], [200n]);
    assert.deepEqual([...(sd.get('f16')!.data as Float32Array)], [1, -2, 65504, 2 ** -24, Infinity, NaN]);
    assert.deepEqual([...(sd.get('bf16')!.data as Float32Array)], [1, -3]);
    assert.deepEqual([...(sd.get('f64')!.data as Float32Array)], [Math.fround(0.1)]);
    assert.deepEqual([...(sd.get('i64')!.data as BigInt64Array)], [-(2n ** 63n), 2n ** 63n - 1n]);
    assert.deepEqual([...(sd.get('i32')!.data as BigInt64Array)], [-5n]);
    assert.deepEqual([...(sd.get('f32')!.data as Float32Array)], [-1.5]);
    assert.equal(sd.get('f64')!.dtype, 'float32');
    assert.equal(sd.get('i32')!.dtype, 'int64');
  });

  const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const hostile: Array<[string, Uint8Array, RegExp]> = [
    ['a file shorter than the length field', new Uint8Array(5), /only 5 bytes/],
    ['a header length beyond the file', safetensorsBytes({}, new Uint8Array(0), { headerLength: 1000n }), /header length 1000 exceeds the 2 bytes after the length field/],
    ['a huge header length', safetensorsBytes({}, new Uint8Array(0), { headerLength: 2n ** 63n }), /header length 9223372036854775808 exceeds the 100000000-byte limit/],
    ['invalid JSON', safetensorsBytes('{"w": ', new Uint8Array(0)), /header is not valid UTF-8 JSON/],
    ['invalid UTF-8', safetensorsBytes(null, new Uint8Array(0), { rawHeader: Uint8Array.from([0x7b, 0xff, 0x7d]) }), /header is not valid UTF-8 JSON/],
    ['an array header', safetensorsBytes([1, 2], new Uint8Array(0)), /header is not a JSON object/],
    ['a null header', safetensorsBytes('null', new Uint8Array(0)), /header is not a JSON object/],
    ['a string header', safetensorsBytes('"w"', new Uint8Array(0)), /header is not a JSON object/],
    ['overlapping tensors', safetensorsBytes({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, new Uint8Array(12)), /tensors "a" and "b" overlap/],
    ['offsets past the data', safetensorsBytes({ a: f32([4], 0, 16) }, new Uint8Array(8)), /tensor "a" has data_offsets \[0,16\] outside the 8-byte data section/],
    ['reversed offsets', safetensorsBytes({ a: f32([0], 8, 4) }, new Uint8Array(8)), /data_offsets \[8,4\] outside/],
    ['a dtype/shape size mismatch', safetensorsBytes({ a: f32([3], 0, 8) }, new Uint8Array(8)), /tensor "a" spans 8 bytes but F32 \[3\] needs 12/],
    ['an unknown dtype', safetensorsBytes({ a: { dtype: 'Q7', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /tensor "a" has unsupported dtype "Q7"/],
    ['an overflowing shape', safetensorsBytes({ a: f32([2 ** 20, 2 ** 20, 2 ** 20], 0, 8) }, new Uint8Array(8)), /more than 2147483648 elements/],
    ['a negative dimension', safetensorsBytes({ a: f32([-2], 0, 8) }, new Uint8Array(8)), /tensor "a" has an invalid field shape\.0/],
    ['missing data_offsets', safetensorsBytes({ a: { dtype: 'F32', shape: [2] } }, new Uint8Array(8)), /tensor "a" has an invalid field data_offsets/],
    ['bytes no tensor owns', safetensorsBytes({ a: f32([1], 4, 8) }, new Uint8Array(8)), /data section bytes 0\.\.4 belong to no tensor/],
    ['trailing bytes', safetensorsBytes({ a: f32([1], 0, 4) }, new Uint8Array(8)), /data section bytes 4\.\.8 belong to no tensor/],
    ['non-string metadata', safetensorsBytes({ __metadata__: { format: 1 } }, new Uint8Array(0)), /__metadata__ has an invalid field format/],
    ['a name that would break the message', safetensorsBytes({ 'a\nb': { dtype: 'X', shape: [], data_offsets: [0, 0] } }, new Uint8Array(0)), /tensor "a\\nb" has unsupported dtype/],
  ];
  for (const [what, bytes, message] of hostile) {
    it(`rejects ${what}`, () => assertWeightsInvalid(() => parseSafetensors(bytes, 'evil.safetensors'), message));
  }

  it('names the file in errors', () =>
    assertWeightsInvalid(() => parseSafetensors(safetensorsBytes([], new Uint8Array(0)), '/models/evil.safetensors'), /^\/models\/evil\.safetensors: header is not a JSON object$/));
});

describe('pytorch checkpoints', () => {
  it('reads storages of several types, strided views, offsets and parameters', () => {
    const halfs = Uint8Array.from([0x00, 0x3c, 0x00, 0xc0]); // 1, -2 as float16
    const longs = bytesOf(new BigInt64Array([5n, -7n]));
    const pickle = stateDictPickle([
      { name: 'w', key: '0', numel: 6, size: [2, 3], stride: [3, 1] },
      { name: 'w.T', key: '0', numel: 6, size: [3, 2], stride: [1, 3] },
      { name: 'tail', key: '0', numel: 6, offset: 4, size: [2], stride: [1] },
      { name: 'every_other', key: '0', numel: 6, offset: 1, size: [3], stride: [2] },
      { name: 'param', key: '1', numel: 2, size: [2], stride: [1], storageType: 'HalfStorage', asParameter: true },
      { name: 'index', key: '2', numel: 2, size: [1, 2], stride: [7, 1], storageType: 'LongStorage' },
    ]);
    const sd = parsePytorchCheckpoint(torchZip(pickle, { '0': bytesOf(SIX_FLOATS), '1': halfs, '2': longs }));
    assert.deepEqual([...sd.get('w')!.data], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...sd.get('w.T')!.data], [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(sd.get('w.T')!.shape, [3, 2]);
    assert.deepEqual([...sd.get('tail')!.data], [4, 5]);
    assert.deepEqual([...sd.get('every_other')!.data], [1, 3, 5]);
    assert.deepEqual(sd.get('param'), { dtype: 'float32', shape: [2], data: new Float32Array([1, -2]) });
    assert.deepEqual(sd.get('index'), { dtype: 'int64', shape: [1, 2], data: new BigInt64Array([5n, -7n]) });

    sd.get('w')!.data[0] = 99;
    assert.equal(sd.get('w.T')!.data[0], 0, 'tensors sharing a storage do not alias');
  });

  it('honours a big-endian byteorder entry', () => {
    const bigEndian = Buffer.alloc(24);
    SIX_FLOATS.forEach((v, i) => bigEndian.writeFloatBE(v, i * 4));
    const tensor: TensorSpec = { name: 'w', key: '0', numel: 6, size: [6], stride: [1] };
    const sd = parsePytorchCheckpoint(torchZip(stateDictPickle([tensor]), { '0': bigEndian }, 'big'));
    assert.deepEqual([...sd.get('w')!.data], [0, 1, 2, 3, 4, 5]);
  });

  for (const [module, name] of [['os', 'system'], ['posix', 'system'], ['builtins', 'eval'], ['__builtin__', 'getattr'], ['subprocess', 'Popen'], ['torch', 'load']]) {
    it(`refuses the global ${module}.${name} without running anything`, async () => {
      const marker = path.join(os.tmpdir(), `beit-lens-pwned-${process.pid}-${name}`);
      const pickle = [...op.proto, ...op.global(module, name), ...op.mark, ...op.str(`touch ${marker}`), ...op.tuple, ...op.reduce, ...op.stop];
      await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(pickle, {})), new RegExp(`^pickle references forbidden global ${module}\\.${name}$`));
      assert.equal(existsSync(marker), false);
    });
  }

  it('refuses forbidden globals reached through STACK_GLOBAL, quoting odd names', async () => {
    const pickle = [...op.proto, ...op.str('os'), ...op.str('system'), ...op.stackGlobal, ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(pickle, {})), /forbidden global os\.system$/);
    const odd = [...op.proto, ...op.str('os\nx'), ...op.emptyList, ...op.stackGlobal, ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(odd, {})), /forbidden global "os\\nx"\.<a list or tuple>$/);
  });

  it('refuses REDUCE on callables outside the allow-list', async () => {
    const callStorageClass = [...op.proto, ...op.global('torch', 'FloatStorage'), ...op.emptyTuple, ...op.reduce, ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(callStorageClass, {})), /pickle calls torch\.FloatStorage/);
    const callList = [...op.proto, ...op.emptyList, ...op.emptyTuple, ...op.reduce, ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(callList, {})), /data\.pkl is not a valid state dict pickle/);
  });

  it('keeps BUILD from tampering with a validated tensor', async () => {
    const tensor = rebuildTensorOps({ name: 'w', key: '0', numel: 6, size: [2, 3], stride: [3, 1] });
    const pickle = [...op.proto, ...op.emptyDict, ...op.str('w'), ...tensor, ...op.emptyDict, ...op.str('offset'), ...op.int(5), ...op.setitem, ...op.build, ...op.setitem, ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(pickle, { '0': bytesOf(SIX_FLOATS) })), /not a valid state dict pickle/);
  });

  it('handles 100k-deep nesting without overflowing the stack', async () => {
    const depth = 100_000;
    const marks = [...op.proto, ...new Array(depth).fill(op.mark[0]), ...new Array(depth).fill(op.list[0]), ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(marks, {})), /data\.pkl holds a list or tuple, not a state dict/);
    const appends = [...op.proto, ...op.emptyDict, ...op.str('w'), ...new Array(depth).fill(op.emptyList[0]), ...new Array(depth - 1).fill(op.append[0]), ...op.setitem, ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(appends, {})), /state dict entry "w" is a list or tuple, not a tensor/);
  });

  it('stops at a negative BINBYTES length instead of looping forever', async () => {
    const pickle = [...op.proto, ...op.binbytes(-5), ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(pickle, {})), /invalid length -5/);
  });

  it('refuses a storage missing from the archive', () =>
    assertWeightsInvalid(() => parsePytorchCheckpoint(oneTensorCheckpoint({ key: '7' })), /storage "7" is missing from the archive \(no "archive\/data\/7"\)/));

  it('refuses a storage whose entry size disagrees with its element count', () =>
    assertWeightsInvalid(() => parsePytorchCheckpoint(oneTensorCheckpoint({ numel: 10 })), /storage "0" has 24 bytes, but 10 F32 elements need 40/));

  it('refuses a tensor larger than its storage', async () => {
    await assertWeightsInvalid(() => parsePytorchCheckpoint(oneTensorCheckpoint({ size: [4, 4], stride: [4, 1] })), /tensor \(offset 0, size \[4,4\], stride \[4,1\]\) reaches past the end of its 6-element storage/);
    await assertWeightsInvalid(() => parsePytorchCheckpoint(oneTensorCheckpoint({ offset: 5, size: [2], stride: [1] })), /reaches past the end/);
    await assertWeightsInvalid(() => parsePytorchCheckpoint(oneTensorCheckpoint({ size: [2, 3], stride: [2] })), /2 sizes but 1 strides/);
  });

  it('refuses views that multiply a storage into far more elements', () =>
    assertWeightsInvalid(() => parsePytorchCheckpoint(oneTensorCheckpoint({ size: [1000, 1000], stride: [0, 0] })), /view their storages more than 4 times over/));

  it('refuses truncated or non-zip files', async () => {
    const valid = oneTensorCheckpoint({});
    assert.equal(parsePytorchCheckpoint(valid).size, 1);
    for (const length of [0, 3, 30, Math.floor(valid.length / 2), valid.length - 1]) {
      await assertWeightsInvalid(() => parsePytorchCheckpoint(valid.subarray(0, length)), /zip archive/);
    }
    const fixture = await readFile(PYTORCH_FIXTURE);
    await assertWeightsInvalid(() => parsePytorchCheckpoint(fixture.subarray(0, fixture.length - 100)), /unreadable zip archive/);
    await assertWeightsInvalid(() => parsePytorchCheckpoint(Uint8Array.from([0x80, 2, 0x7d, 0x2e])), /only the torch\.save zip format/);
  });

  it('checks declared entry sizes before inflating anything', async () => {
    const zip = zipSync({ 'archive/data.pkl': stateDictPickle([]) }, { level: 9 });
    patchCentralDirectory(zip, 'archive/data.pkl', { size: 0xfffffff0 });
    await assertWeightsInvalid(() => parsePytorchCheckpoint(zip), /"archive\/data\.pkl" is 4294967280 bytes, over the 67108864-byte limit/);
  });

  it('refuses compressed storages, whose declared size could be a zip bomb', () => {
    const pickle = stateDictPickle([{ name: 'w', key: '0', numel: 6, size: [6], stride: [1] }]);
    const zip = zipSync({ 'archive/data.pkl': pickle, 'archive/data/0': [bytesOf(SIX_FLOATS), { level: 6 }] }, { level: 0 });
    return assertWeightsInvalid(() => parsePytorchCheckpoint(zip), /storage "0" is compressed/);
  });

  it('refuses directory entries that share the same storage bytes', () => {
    const numel = 1000;
    const tensors = ['0', '1', '2'].map((key) => ({ name: `w${key}`, key, numel, size: [numel], stride: [1] }));
    const tiny = new Uint8Array(1);
    const zip = torchZip(stateDictPickle(tensors), { '0': bytesOf(new Float32Array(numel)), '1': tiny, '2': tiny });
    // Point entries 1 and 2 at entry 0's data: three 4000-byte storages from a file of about 4.5 kB.
    const entry0 = new DataView(zip.buffer).getUint32(centralDirectoryRecord(zip, 'archive/data/0') + 42, true);
    for (const name of ['archive/data/1', 'archive/data/2']) {
      patchCentralDirectory(zip, name, { compressedSize: numel * 4, size: numel * 4, localHeaderOffset: entry0 });
    }
    return assertWeightsInvalid(() => parsePytorchCheckpoint(zip), /tensor storages claim 12000 bytes, more than the whole \d+-byte file/);
  });

  it('refuses an empty or non-tensor state dict', async () => {
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(stateDictPickle([]), {})), /state dict holds no tensors/);
    const epoch = [...op.proto, ...op.emptyDict, ...op.str('epoch'), ...op.int(3), ...op.setitem, ...op.stop];
    await assertWeightsInvalid(() => parsePytorchCheckpoint(torchZip(epoch, {})), /state dict entry "epoch" is 3, not a tensor/);
  });
});

describe('mutated inputs fail cleanly', () => {
  interface Mutation {
    writes: Array<{ at: number; value: number }>;
    truncateAt: number | undefined;
  }

  const anyByte = fc.integer({ min: 0, max: 255 });
  /** Characters that keep a JSON header mostly parseable, so mutations reach the field validation. */
  const jsonByte = fc.constantFrom(...[...'0123456789-+.eE,:[]{}" '].map((c) => c.charCodeAt(0)));

  /** Up to six byte overwrites at positions drawn from `position`, and sometimes a truncation to at most `length` bytes. */
  function mutations(position: fc.Arbitrary<number>, value: fc.Arbitrary<number>, length: number): fc.Arbitrary<Mutation> {
    return fc.record({
      // Unbiased positions: fast-check otherwise favours small values, which would mostly hit the first bytes.
      writes: fc.array(fc.record({ at: fc.noBias(position), value }), { minLength: 1, maxLength: 6 }),
      truncateAt: fc.option(fc.noBias(fc.integer({ min: 0, max: length })), { nil: undefined, freq: 3 }),
    });
  }

  function mutate(bytes: Uint8Array, { writes, truncateAt }: Mutation): Uint8Array {
    const out = new Uint8Array(bytes); // a copy, even for a Buffer, whose slice() is a view
    for (const { at, value } of writes) out[at] = value;
    return truncateAt === undefined ? out : out.subarray(0, truncateAt);
  }

  function expectOnlyWeightsInvalid(action: () => unknown): void {
    try {
      action();
    } catch (err) {
      if (!(err instanceof BeitLensError) || err.code !== 'WEIGHTS_INVALID') throw err;
    }
  }

  it('safetensors header mutations only ever raise WEIGHTS_INVALID', { timeout: fuzzTimeout(300, 60_000) }, async (t) => {
    const fuzz = new FuzzCounter('safetensors header', 'byte mutations and truncation -> parseSafetensors');
    const original = await readFile(SAFETENSORS_FIXTURE);
    const headerEnd = 8 + Number(original.readBigUInt64LE(0));
    fc.assert(
      fc.property(mutations(fc.integer({ min: 0, max: headerEnd - 1 }), jsonByte, original.length), (m) => {
        fuzz.tick();
        expectOnlyWeightsInvalid(() => parseSafetensors(mutate(original, m)));
      }),
      fuzzParameters(300),
    );
    fuzz.report(t);
  });

  it('pickle mutations only ever raise WEIGHTS_INVALID', { timeout: fuzzTimeout(300, 60_000) }, async (t) => {
    const fuzz = new FuzzCounter('pickle', 'byte mutations of data.pkl -> parsePytorchCheckpoint');
    const entries = unzipSync(await readFile(PYTORCH_FIXTURE));
    const pickle = entries['pytorch_model/data.pkl'];
    fc.assert(
      fc.property(mutations(fc.integer({ min: 0, max: pickle.length - 1 }), anyByte, pickle.length), (m) => {
        fuzz.tick();
        const zip = zipSync({ ...entries, 'pytorch_model/data.pkl': mutate(pickle, m) }, { level: 0 });
        expectOnlyWeightsInvalid(() => parsePytorchCheckpoint(zip));
      }),
      fuzzParameters(300),
    );
    fuzz.report(t);
  });

  it('zip mutations only ever raise WEIGHTS_INVALID', { timeout: fuzzTimeout(300, 60_000) }, async (t) => {
    const fuzz = new FuzzCounter('pytorch zip', 'byte mutations of the archive structures -> parsePytorchCheckpoint');
    const original = await readFile(PYTORCH_FIXTURE);
    // Aim at the zip structures: local headers and data.pkl at the front, the central directory at the back.
    const structural = fc.oneof(fc.integer({ min: 0, max: 5999 }), fc.integer({ min: original.length - 4000, max: original.length - 1 }));
    fc.assert(
      fc.property(mutations(structural, anyByte, original.length), (m) => {
        fuzz.tick();
        expectOnlyWeightsInvalid(() => parsePytorchCheckpoint(mutate(original, m)));
      }),
      fuzzParameters(300),
    );
    fuzz.report(t);
  });
});
