import { onnx } from 'onnx-proto';

/**
 * The one way encoded ONNX is decoded here. protobufjs reads a Node Buffer with its BufferReader, which makes every
 * empty string or bytes field with `new Buffer(0)`: Node's DEP0005 deprecation warning, printed on the user's
 * terminal whenever a graph is rewritten for WebGPU. The same bytes viewed as a plain Uint8Array take the generic
 * Reader (empty fields are `new Uint8Array(0)`); the fields read are the same, and nothing here relies on Buffer
 * methods of raw_data.
 */
export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  const plain = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
  return onnx.ModelProto.decode(plain);
}
