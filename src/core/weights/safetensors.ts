import { readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { BeitLensError, errorMessage } from '../errors';
import { halfToFloatTable } from '../halfFloat';
import type { NamedTensor, StateDict } from './stateDict';

/**
 * Reader and writer for the safetensors format: an 8-byte little-endian header length, a JSON header
 * mapping tensor names to {dtype, shape, data_offsets}, then the raw little-endian tensor bytes.
 * Weights files come from the internet, so every header field is checked before it is trusted.
 * The dtype table and byte decoding here are shared with the PyTorch checkpoint reader.
 */

/** The safetensors reference implementation refuses larger headers; so do we, before decoding any of it. */
const MAX_HEADER_BYTES = 100_000_000;
/** Far above any BEiT tensor; refusing larger shapes early keeps size arithmetic exact and allocations bounded. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31;

/** Bytes per element of each type we read; floats become float32 and integers (and bools) int64. */
export const ITEM_SIZES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 } as const;
export type ElementType = keyof typeof ITEM_SIZES;

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export async function readSafetensors(file: string): Promise<StateDict> {
  return parseSafetensors(await readWeightsFile(file), file);
}

/**
 * Parses a whole safetensors file. Where alignment allows, float32 and int64 tensors are views into `buf`
 * rather than copies, so the caller must not reuse `buf` afterwards.
 */
export function parseSafetensors(buf: Uint8Array, file?: string): StateDict {
  const fail = (message: string) => new BeitLensError('WEIGHTS_INVALID', message, file);
  if (buf.byteLength < 8) throw fail(`file is only ${buf.byteLength} bytes, too short for a safetensors header`);

  const headerLength = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (headerLength > BigInt(buf.byteLength - 8)) {
    throw fail(`header length ${headerLength} exceeds the ${buf.byteLength - 8} bytes after the length field`);
  }
  const dataStart = 8 + Number(headerLength);
  const header = parseHeaderJson(buf.subarray(8, dataStart), fail);
  const data = buf.subarray(dataStart);

  const layouts: TensorLayout[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      const metadata = metadataSchema.safeParse(value);
      if (!metadata.success) throw fail(`__metadata__ ${firstIssue(metadata.error)}`);
      continue;
    }
    layouts.push(checkTensorEntry(name, value, data.byteLength, fail));
  }
  checkByteCoverage(layouts, data.byteLength, fail);

  const stateDict: StateDict = new Map();
  for (const { name, dtype, shape, begin, end } of layouts) {
    stateDict.set(name, namedTensor(decodeElements(dtype, data.subarray(begin, end), true), shape));
  }
  return stateDict;
}

export function serializeSafetensors(stateDict: StateDict, metadata?: Record<string, string>): Uint8Array {
  // Widest elements first: with the data section starting 8-aligned, every tensor then stays aligned to its own size.
  const entries = [...stateDict].sort(([, a], [, b]) => b.data.BYTES_PER_ELEMENT - a.data.BYTES_PER_ELEMENT);
  // No prototype, so that a tensor named "__proto__" becomes a key like any other.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata) header.__metadata__ = metadata;
  let dataLength = 0;
  for (const [name, tensor] of entries) {
    checkWritable(name, tensor);
    const begin = dataLength;
    dataLength += tensor.data.byteLength;
    header[name] = { dtype: tensor.dtype === 'float32' ? 'F32' : 'I64', shape: tensor.shape, data_offsets: [begin, dataLength] };
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  // The format allows trailing spaces in the header; padding to 8 bytes aligns the data section.
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLength + dataLength);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength);
  let offset = 8 + headerLength;
  for (const [, tensor] of entries) {
    writeLittleEndian(tensor.data, view, offset);
    offset += tensor.data.byteLength;
  }
  return out;
}

export async function writeSafetensors(file: string, stateDict: StateDict, metadata?: Record<string, string>): Promise<void> {
  await writeFile(file, serializeSafetensors(stateDict, metadata));
}

/** Reads a whole weights file, turning filesystem failures into one-line BeitLensErrors. */
export async function readWeightsFile(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BeitLensError('FILE_NOT_FOUND', 'file not found', file);
    if (code === 'ERR_FS_FILE_TOO_LARGE') throw new BeitLensError('FILE_TOO_LARGE', 'weights file is larger than the 2 GiB Node.js can read at once', file);
    throw new BeitLensError('FILE_UNREADABLE', conciseMessage(err), file);
  }
}

/**
 * Decodes `bytes` (exactly a whole number of elements) into float32 or int64. Float32 and int64 data in the
 * host's byte order is viewed in place when aligned; otherwise it is copied first, because typed-array
 * views at misaligned offsets throw.
 */
export function decodeElements(dtype: ElementType, bytes: Uint8Array, littleEndian: boolean): Float32Array | BigInt64Array {
  const count = bytes.byteLength / ITEM_SIZES[dtype];
  if (littleEndian === HOST_LITTLE_ENDIAN && (dtype === 'F32' || dtype === 'I64')) {
    // `new Uint8Array(bytes)` rather than `bytes.slice()`: on a Node Buffer, slice() returns a view, not a copy.
    const aligned = bytes.byteOffset % ITEM_SIZES[dtype] === 0 ? bytes : new Uint8Array(bytes);
    return dtype === 'F32'
      ? new Float32Array(aligned.buffer, aligned.byteOffset, count)
      : new BigInt64Array(aligned.buffer, aligned.byteOffset, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const floats = (read: (i: number) => number) => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = read(i);
    return out;
  };
  const ints = (read: (i: number) => bigint) => {
    const out = new BigInt64Array(count);
    for (let i = 0; i < count; i++) out[i] = read(i);
    return out;
  };
  switch (dtype) {
    case 'F64':
      return floats((i) => view.getFloat64(i * 8, littleEndian));
    case 'F32':
      return floats((i) => view.getFloat32(i * 4, littleEndian));
    case 'F16': {
      const table = halfToFloatTable();
      return floats((i) => table[view.getUint16(i * 2, littleEndian)]);
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32, so shifting the bits is an exact conversion (NaN payloads included).
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, littleEndian) << 16;
      return new Float32Array(bits.buffer);
    }
    case 'I64':
      return ints((i) => view.getBigInt64(i * 8, littleEndian));
    case 'I32':
      return ints((i) => BigInt(view.getInt32(i * 4, littleEndian)));
    case 'I16':
      return ints((i) => BigInt(view.getInt16(i * 2, littleEndian)));
    case 'I8':
      return ints((i) => BigInt(view.getInt8(i)));
    case 'U8':
    case 'BOOL':
      return ints((i) => BigInt(view.getUint8(i)));
  }
}

export function namedTensor(data: Float32Array | BigInt64Array, shape: number[]): NamedTensor {
  return { dtype: data instanceof Float32Array ? 'float32' : 'int64', shape, data };
}

/** Element count of `shape`, or undefined when a dimension is invalid or the product passes MAX_TENSOR_ELEMENTS. */
export function elementCount(shape: readonly number[]): number | undefined {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) return undefined;
    count *= dim;
    // Checked per step so the running product stays an exact integer.
    if (count > MAX_TENSOR_ELEMENTS) return undefined;
  }
  return count;
}

/** Makes untrusted text (tensor names, pickle globals) safe to embed in a one-line, bounded error message. */
export function quoteUntrusted(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
}

/** An error's message squeezed onto one bounded line, for wrapping library failures in a BeitLensError. */
export function conciseMessage(err: unknown): string {
  return errorMessage(err).replace(/\s+/g, ' ').trim().slice(0, 300);
}

interface TensorLayout {
  name: string;
  dtype: ElementType;
  shape: number[];
  begin: number;
  end: number;
}

const metadataSchema = z.record(z.string(), z.string());
const tensorEntrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});

function parseHeaderJson(bytes: Uint8Array, fail: (message: string) => BeitLensError): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw fail(`header is not valid UTF-8 JSON (${conciseMessage(err)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('header is not a JSON object');
  return header as Record<string, unknown>;
}

function checkTensorEntry(
  name: string,
  value: unknown,
  dataLength: number,
  fail: (message: string) => BeitLensError,
): TensorLayout {
  const label = `tensor ${quoteUntrusted(name)}`;
  const entry = tensorEntrySchema.safeParse(value);
  if (!entry.success) throw fail(`${label} ${firstIssue(entry.error)}`);
  const { dtype, shape, data_offsets: [begin, end] } = entry.data;
  if (!Object.hasOwn(ITEM_SIZES, dtype)) throw fail(`${label} has unsupported dtype ${quoteUntrusted(dtype)}`);
  const elementType = dtype as ElementType;
  const count = elementCount(shape);
  if (count === undefined) throw fail(`${label} has shape [${shape.join(',')}], more than ${MAX_TENSOR_ELEMENTS} elements`);
  if (begin > end || end > dataLength) {
    throw fail(`${label} has data_offsets [${begin},${end}] outside the ${dataLength}-byte data section`);
  }
  const expectedBytes = count * ITEM_SIZES[elementType];
  if (end - begin !== expectedBytes) {
    throw fail(`${label} spans ${end - begin} bytes but ${dtype} [${shape.join(',')}] needs ${expectedBytes}`);
  }
  return { name, dtype: elementType, shape, begin, end };
}

/**
 * Like the reference implementation, require the tensors to tile the data section exactly: overlapping
 * tensors would alias each other, and unreferenced bytes are how polyglot files hide a second payload.
 */
function checkByteCoverage(layouts: TensorLayout[], dataLength: number, fail: (message: string) => BeitLensError): void {
  const sorted = [...layouts].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: TensorLayout | undefined;
  for (const layout of sorted) {
    if (layout.begin < covered && previous) {
      throw fail(`tensors ${quoteUntrusted(previous.name)} and ${quoteUntrusted(layout.name)} overlap in the data section`);
    }
    if (layout.begin > covered) throw fail(`data section bytes ${covered}..${layout.begin} belong to no tensor`);
    covered = layout.end;
    previous = layout;
  }
  if (covered !== dataLength) throw fail(`data section bytes ${covered}..${dataLength} belong to no tensor`);
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue.path.length > 0 ? `field ${issue.path.map(String).join('.')}` : 'value';
  return `has an invalid ${where}: ${issue.message}`;
}

function checkWritable(name: string, tensor: NamedTensor): void {
  const expectedType = tensor.dtype === 'float32' ? Float32Array : BigInt64Array;
  if (!(tensor.data instanceof expectedType) || tensor.data.length !== elementCount(tensor.shape)) {
    throw new BeitLensError(
      'INTERNAL',
      `cannot write tensor ${quoteUntrusted(name)}: ${tensor.dtype} [${tensor.shape.join(',')}] does not match its ${tensor.data.length}-element data`,
    );
  }
}

function writeLittleEndian(data: Float32Array | BigInt64Array, target: DataView, offset: number): void {
  if (HOST_LITTLE_ENDIAN) {
    new Uint8Array(target.buffer, offset, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } else if (data instanceof Float32Array) {
    data.forEach((value, i) => target.setFloat32(offset + i * 4, value, true));
  } else {
    data.forEach((value, i) => target.setBigInt64(offset + i * 8, value, true));
  }
}
