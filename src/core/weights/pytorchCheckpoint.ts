import { unzipSync, type UnzipFileFilter, type UnzipFileInfo, type Unzipped } from 'fflate';
import { Parser } from 'pickleparser';
import { BeitLensError } from '../errors';
import {
  conciseMessage,
  decodeElements,
  elementCount,
  ITEM_SIZES,
  type ElementType,
  MAX_TENSOR_ELEMENTS,
  namedTensor,
  quoteUntrusted,
  readWeightsFile,
} from './safetensors';
import type { StateDict } from './stateDict';

/**
 * Reader for `torch.save` checkpoints (the zip format of PyTorch >= 1.6, as used by Hugging Face's
 * pytorch_model.bin): `<prefix>/data.pkl` is a pickle describing the state dict, and each tensor storage
 * is a raw file `<prefix>/data/<key>`.
 *
 * Unpickling normally runs arbitrary code, so the pickle is interpreted, never executed: only the handful of
 * globals a state dict needs resolve, each to a function of ours that validates its arguments, and
 * anything else is refused. Tensors are first recorded as (storage, offset, size, stride) and checked
 * against the zip directory; storage bytes are read only after the whole pickle has been accepted.
 */

/** A state dict pickle is about 250 bytes per tensor; this leaves room for 100k+ tensors and bounds parser memory. */
const MAX_PICKLE_BYTES = 64 * 1024 * 1024;
/** Checked while walking the zip directory, whose declared entry count can be up to 2^32. */
const MAX_ZIP_ENTRIES = 100_000;
/** Bounds what tensor views may make us materialise in all; several times beit-large's ~305M parameters. */
const MAX_TOTAL_ELEMENTS = 2 ** 30;
/**
 * Views may overlap or repeat elements (stride 0), so a few kilobytes of pickle could otherwise demand
 * gigabytes. Honest state dicts view each storage about once (twice for tied weights).
 */
const MAX_VIEW_AMPLIFICATION = 4;
const MAX_TENSOR_DIMS = 64;

const STORAGE_TYPES: Record<string, ElementType> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const PICKLE_ENTRY = /^[^/]+\/data\.pkl$/;
const BYTEORDER_ENTRY = /^[^/]+\/byteorder$/;

type Fail = (message: string) => BeitLensError;

interface Archive {
  prefix: string;
  entries: Map<string, UnzipFileInfo>;
  pickle: Uint8Array;
  littleEndian: boolean;
}

/** The zip entry holding a storage and how to read it; frozen so that pickle BUILD opcodes cannot alter it. */
class StorageRef {
  constructor(
    readonly entryName: string,
    readonly dtype: ElementType,
    readonly length: number,
  ) {
    Object.freeze(this);
  }
}

/** A validated view into a storage, materialised only once the whole pickle has been accepted. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly length: number,
  ) {
    Object.freeze(this);
  }
}

export async function readPytorchCheckpoint(file: string): Promise<StateDict> {
  return parsePytorchCheckpoint(await readWeightsFile(file), file);
}

export function parsePytorchCheckpoint(buf: Uint8Array, file?: string): StateDict {
  const fail: Fail = (message) => new BeitLensError('WEIGHTS_INVALID', message, file);
  const archive = readArchiveIndex(buf, fail);
  const tensors = unpickleStateDict(archive, fail);
  return materialise(buf, archive, tensors, fail);
}

/** First pass over the zip: record the directory and inflate only the pickle and the byte-order marker. */
function readArchiveIndex(buf: Uint8Array, fail: Fail): Archive {
  const isZip = buf.byteLength >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && buf[2] === 0x03 && buf[3] === 0x04;
  if (!isZip) throw fail('not a zip archive; only the torch.save zip format (PyTorch 1.6 and later) is supported');

  const entries = new Map<string, UnzipFileInfo>();
  const files = unzipGuarded(buf, fail, (info) => {
    if (entries.size >= MAX_ZIP_ENTRIES) throw fail(`archive has more than ${MAX_ZIP_ENTRIES} entries`);
    if (entries.has(info.name)) throw fail(`archive lists ${quoteUntrusted(info.name)} twice`);
    entries.set(info.name, info);
    if (!PICKLE_ENTRY.test(info.name) && !BYTEORDER_ENTRY.test(info.name)) return false;
    if (info.originalSize > MAX_PICKLE_BYTES) {
      throw fail(`${quoteUntrusted(info.name)} is ${info.originalSize} bytes, over the ${MAX_PICKLE_BYTES}-byte limit`);
    }
    return true;
  });

  const pickleNames = [...entries.keys()].filter((name) => PICKLE_ENTRY.test(name));
  if (pickleNames.length !== 1) {
    throw fail(pickleNames.length === 0 ? 'archive has no <name>/data.pkl, so it is not a torch.save checkpoint' : 'archive has more than one data.pkl');
  }
  const prefix = pickleNames[0].slice(0, -'/data.pkl'.length);
  const pickle = entryBytes(files, pickleNames[0], entries, fail);

  // Archives written before PyTorch recorded the byte order are little-endian.
  let littleEndian = true;
  const byteorderName = `${prefix}/byteorder`;
  if (entries.has(byteorderName)) {
    const byteorder = new TextDecoder().decode(entryBytes(files, byteorderName, entries, fail));
    if (byteorder !== 'little' && byteorder !== 'big') throw fail(`unknown byte order ${quoteUntrusted(byteorder)}`);
    littleEndian = byteorder === 'little';
  }
  return { prefix, entries, pickle, littleEndian };
}

function unpickleStateDict(archive: Archive, fail: Fail): Map<string, TensorRef> {
  let totalElements = 0;
  const viewedStorages = new Set<string>();
  let storageElements = 0;

  const rebuildTensor = (storage: unknown, storageOffset: unknown, size: unknown, stride: unknown): TensorRef => {
    if (!(storage instanceof StorageRef)) throw fail(`_rebuild_tensor_v2 got ${describe(storage)} instead of a storage`);
    const offset = toIndex(storageOffset, 'tensor storage offset', Number.MAX_SAFE_INTEGER, fail);
    const shape = toIndexList(size, 'tensor size', fail);
    const strides = toIndexList(stride, 'tensor stride', fail);
    if (shape.length !== strides.length) throw fail(`tensor has ${shape.length} sizes but ${strides.length} strides`);
    const length = elementCount(shape);
    if (length === undefined) throw fail(`tensor size [${shape.join(',')}] has more than ${MAX_TENSOR_ELEMENTS} elements`);
    if (length > 0) {
      const lastElement = shape.reduce((last, dim, d) => last + (dim - 1) * strides[d], offset);
      // An unsafe integer here means some term overflowed, which also puts it beyond any storage.
      if (!Number.isSafeInteger(lastElement) || lastElement >= storage.length) {
        const geometry = `offset ${offset}, size [${shape.join(',')}], stride [${strides.join(',')}]`;
        throw fail(`tensor (${geometry}) reaches past the end of its ${storage.length}-element storage`);
      }
    }
    if (!viewedStorages.has(storage.entryName)) {
      viewedStorages.add(storage.entryName);
      storageElements += storage.length;
    }
    totalElements += length;
    if (totalElements > MAX_TOTAL_ELEMENTS) throw fail(`checkpoint tensors hold more than ${MAX_TOTAL_ELEMENTS} elements in total`);
    if (totalElements > MAX_VIEW_AMPLIFICATION * storageElements) {
      throw fail(`tensors view their storages more than ${MAX_VIEW_AMPLIFICATION} times over (${totalElements} elements from ${storageElements})`);
    }
    return new TensorRef(storage, offset, shape, strides, length);
  };

  const unwrapParameter = (data: unknown): TensorRef => {
    if (!(data instanceof TensorRef)) throw fail(`_rebuild_parameter got ${describe(data)} instead of a tensor`);
    return data;
  };

  const globals = new Map<string, (...args: never[]) => unknown>([
    [
      'collections.OrderedDict',
      (...items: unknown[]) => {
        if (items.length > 0) throw fail('OrderedDict built from arguments is not part of a state dict');
        return new Map();
      },
    ],
    ['torch._utils._rebuild_tensor_v2', rebuildTensor],
    ['torch._utils._rebuild_parameter', unwrapParameter],
    ['torch._utils._rebuild_parameter_with_state', unwrapParameter],
  ]);
  // Storage classes only serve as type tags inside persistent ids, so calling one is an error.
  const storageTypes = new Map<unknown, ElementType>();
  for (const [className, dtype] of Object.entries(STORAGE_TYPES)) {
    const tag = () => {
      throw fail(`pickle calls torch.${className}, which a state dict never does`);
    };
    storageTypes.set(tag, dtype);
    globals.set(`torch.${className}`, tag);
  }
  // Frozen because BUILD opcodes can assign attributes to anything on the pickle stack, these functions included.
  globals.forEach(Object.freeze);

  const resolveStorage = (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      throw fail('pickle has a persistent id that is not a torch storage reference');
    }
    const [, storageType, key, , numel] = pid as unknown[];
    const dtype = storageTypes.get(storageType);
    if (dtype === undefined) throw fail(`storage reference has ${describe(storageType)} as its type, not a torch storage class`);
    if (typeof key !== 'string') throw fail(`storage reference has ${describe(key)} as its key`);
    const length = toIndex(numel, 'storage size', MAX_TENSOR_ELEMENTS, fail);
    const entryName = `${archive.prefix}/data/${key}`;
    const entry = archive.entries.get(entryName);
    if (!entry) throw fail(`storage ${quoteUntrusted(key)} is missing from the archive (no ${quoteUntrusted(entryName)})`);
    // Refusing compression keeps what we allocate bounded by the file size: a deflated entry can claim gigabytes.
    if (entry.compression !== 0) throw fail(`storage ${quoteUntrusted(key)} is compressed, but torch.save always stores tensor data uncompressed`);
    const expectedBytes = length * ITEM_SIZES[dtype];
    if (entry.originalSize !== expectedBytes) {
      throw fail(`storage ${quoteUntrusted(key)} has ${entry.originalSize} bytes, but ${length} ${dtype} elements need ${expectedBytes}`);
    }
    return new StorageRef(entryName, dtype, length);
  };

  const parser = new Parser({
    nameResolver: {
      resolve: (module: unknown, name: unknown) => {
        const resolved = typeof module === 'string' && typeof name === 'string' ? globals.get(`${module}.${name}`) : undefined;
        if (!resolved) throw fail(`pickle references forbidden global ${describeGlobal(module, name)}`);
        return resolved;
      },
    },
    persistentResolver: { resolve: resolveStorage },
    // Maps rather than plain objects, so that pickled keys such as "__proto__" stay ordinary keys.
    unpicklingTypeOfDictionary: 'Map',
  });

  let root: unknown;
  try {
    root = parser.read(new BoundedPickleReader(archive.pickle));
  } catch (err) {
    if (err instanceof BeitLensError) throw err;
    if (err instanceof RangeError) throw fail(`data.pkl is too large or too deeply nested to unpickle (${conciseMessage(err)})`);
    throw fail(`data.pkl is not a valid state dict pickle (${conciseMessage(err)})`);
  }

  if (!(root instanceof Map)) throw fail(`data.pkl holds ${describe(root)}, not a state dict`);
  const tensors = new Map<string, TensorRef>();
  for (const [key, value] of root) {
    if (typeof key !== 'string') throw fail(`state dict has ${describe(key)} as a key instead of a tensor name`);
    if (!(value instanceof TensorRef)) throw fail(`state dict entry ${quoteUntrusted(key)} is ${describe(value)}, not a tensor`);
    tensors.set(key, value);
  }
  if (tensors.size === 0) throw fail('state dict holds no tensors');
  return tensors;
}

/** Second pass over the zip: extract the storages the accepted tensors use, then copy out each tensor. */
function materialise(buf: Uint8Array, archive: Archive, tensors: Map<string, TensorRef>, fail: Fail): StateDict {
  const viewsPerEntry = new Map<string, number>();
  for (const tensor of tensors.values()) {
    viewsPerEntry.set(tensor.storage.entryName, (viewsPerEntry.get(tensor.storage.entryName) ?? 0) + 1);
  }
  // Uncompressed entries occupy disjoint bytes of the file, unless a crafted directory points several entries at the same data.
  let storageBytes = 0;
  for (const name of viewsPerEntry.keys()) storageBytes += archive.entries.get(name)?.originalSize ?? 0;
  if (storageBytes > buf.byteLength) throw fail(`tensor storages claim ${storageBytes} bytes, more than the whole ${buf.byteLength}-byte file`);

  const files = unzipGuarded(buf, fail, (info) => viewsPerEntry.has(info.name));
  const decoded = new Map<string, Float32Array | BigInt64Array>();
  const stateDict: StateDict = new Map();
  try {
    for (const [name, tensor] of tensors) {
      const { entryName, dtype } = tensor.storage;
      // One zip entry may be referenced under two storage types; each reading is decoded separately.
      const decodedKey = `${dtype}:${entryName}`;
      let storage = decoded.get(decodedKey);
      if (!storage) {
        storage = decodeElements(dtype, entryBytes(files, entryName, archive.entries, fail), archive.littleEndian);
        decoded.set(decodedKey, storage);
      }
      stateDict.set(name, namedTensor(extractView(storage, tensor, viewsPerEntry.get(entryName) === 1), [...tensor.shape]));
    }
  } catch (err) {
    if (err instanceof RangeError) throw fail(`checkpoint tensors do not fit in memory (${conciseMessage(err)})`);
    throw err;
  }
  return stateDict;
}

/**
 * The tensor's elements in row-major order. A storage used by this tensor alone and covered exactly is
 * returned as is; otherwise data is copied, so that tensors sharing a storage never alias each other.
 */
function extractView(storage: Float32Array | BigInt64Array, tensor: TensorRef, soleView: boolean): Float32Array | BigInt64Array {
  if (!isContiguous(tensor.shape, tensor.strides)) {
    return storage instanceof Float32Array
      ? gatherStrided(storage, new Float32Array(tensor.length), tensor)
      : gatherStrided(storage, new BigInt64Array(tensor.length), tensor);
  }
  if (soleView && tensor.offset === 0 && tensor.length === storage.length) return storage;
  return storage.slice(tensor.offset, tensor.offset + tensor.length);
}

function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    // A stride is irrelevant along a dimension of size 1, as in torch's own contiguity test.
    if (shape[d] !== 1 && strides[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

function gatherStrided<T extends Float32Array | BigInt64Array>(source: T, target: T, tensor: TensorRef): T {
  const { shape, strides } = tensor;
  const index = new Array<number>(shape.length).fill(0);
  let position = tensor.offset;
  for (let i = 0; i < target.length; i++) {
    target[i] = source[position];
    // Advance the multi-dimensional index like an odometer, last dimension fastest.
    for (let d = shape.length - 1; d >= 0; d--) {
      position += strides[d];
      if (++index[d] < shape[d]) break;
      position -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
  return target;
}

/** fflate's unzip with its format errors, and the sizes our filter refuses, reported as BeitLensErrors. */
function unzipGuarded(buf: Uint8Array, fail: Fail, filter: UnzipFileFilter): Unzipped {
  try {
    return unzipSync(buf, { filter });
  } catch (err) {
    if (err instanceof BeitLensError) throw err;
    throw fail(`unreadable zip archive (${conciseMessage(err)})`);
  }
}

/** fflate trusts the directory's sizes, silently returning short data for truncated archives, so check them. */
function entryBytes(files: Unzipped, name: string, entries: Map<string, UnzipFileInfo>, fail: Fail): Uint8Array {
  const bytes = Object.hasOwn(files, name) ? files[name] : undefined;
  if (!bytes || bytes.byteLength !== entries.get(name)?.originalSize) {
    throw fail(`${quoteUntrusted(name)} is truncated or corrupt in the archive`);
  }
  return bytes;
}

function toIndex(value: unknown, what: string, max: number, fail: Fail): number {
  if (typeof value === 'bigint' && value >= 0n && value <= BigInt(max)) return Number(value);
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max) return value;
  throw fail(`${what} is ${describe(value)}, not an integer in 0..${max}`);
}

/** Copies the list so that later pickle opcodes, which may still reach it through the memo, cannot change it. */
function toIndexList(value: unknown, what: string, fail: Fail): number[] {
  if (!Array.isArray(value) || value.length > MAX_TENSOR_DIMS) throw fail(`${what} is ${describe(value)}, not a tuple of at most ${MAX_TENSOR_DIMS} integers`);
  return value.map((item: unknown) => toIndex(item, what, Number.MAX_SAFE_INTEGER, fail));
}

/** Names a pickle value's kind without stringifying it: values may be huge, cyclic or deeply nested. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value instanceof TensorRef) return 'a tensor';
  if (value instanceof StorageRef) return 'a storage';
  if (value instanceof Map) return 'a dict';
  if (Array.isArray(value)) return 'a list or tuple';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'number' || typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? String(value) : 'a number';
  if (typeof value === 'string') return `the string ${quoteUntrusted(value)}`;
  if (typeof value === 'function') return 'a global';
  return `a ${typeof value}`;
}

function describeGlobal(module: unknown, name: unknown): string {
  const part = (value: unknown) =>
    typeof value === 'string' ? (/^[\w.]{1,200}$/.test(value) ? value : quoteUntrusted(value)) : `<${describe(value)}>`;
  return `${part(module)}.${part(name)}`;
}

/**
 * The byte reader handed to pickleparser. Its own reader accepts negative lengths, which move the read
 * position backwards (a crafted BINBYTES then loops forever), and only warns about lengths beyond 2^53.
 */
class BoundedPickleReader {
  private static readonly utf8 = new TextDecoder('utf-8');
  private static readonly ascii = new TextDecoder('ascii');
  private position = 0;
  private readonly view: DataView;

  constructor(private readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  hasNext(): boolean {
    return this.position < this.data.byteLength;
  }

  skip(count: number): void {
    if (!Number.isSafeInteger(count) || count < 0) throw new Error(`invalid length ${count} at byte ${this.position}`);
    if (count > this.data.byteLength - this.position) throw new Error(`pickle ends unexpectedly at byte ${this.position}`);
    this.position += count;
  }

  byte(): number {
    return this.view.getUint8(this.advance(1));
  }

  bytes(length: number): Uint8Array {
    const start = this.advance(length);
    return this.data.subarray(start, this.position);
  }

  uint16(): number {
    return this.view.getUint16(this.advance(2), true);
  }

  int32(): number {
    return this.view.getInt32(this.advance(4), true);
  }

  uint32(): number {
    return this.view.getUint32(this.advance(4), true);
  }

  uint64(): number {
    const value = this.view.getBigUint64(this.advance(8), true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`length ${value} is too large`);
    return Number(value);
  }

  float64(): number {
    // BINFLOAT is the one big-endian field in a pickle.
    return this.view.getFloat64(this.advance(8), false);
  }

  string(size: number, encoding: 'ascii' | 'utf-8'): string {
    return (encoding === 'utf-8' ? BoundedPickleReader.utf8 : BoundedPickleReader.ascii).decode(this.bytes(size));
  }

  line(): string {
    const end = this.data.indexOf(0x0a, this.position);
    if (end < 0) throw new Error(`unterminated line at byte ${this.position}`);
    const text = this.string(end - this.position, 'ascii');
    this.skip(1);
    return text;
  }

  /** Moves past `count` bytes and returns where they start. */
  private advance(count: number): number {
    const start = this.position;
    this.skip(count);
    return start;
  }
}
