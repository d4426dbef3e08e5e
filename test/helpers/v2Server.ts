/**
 * An Open Inference Protocol (KServe v2 REST) server for tests, written from the protocol document and Triton's
 * binary tensor data and model configuration extension documents, sharing no code with src/core/remote:
 * node:http (or node:https) in front of a real onnxruntime session of a converted fixture graph.
 *
 * Binary tensor data (Triton, docs/protocol/extension_binary_data.md): the request or response body is the JSON
 * header followed by raw tensor bytes; the header's length is in the Inference-Header-Content-Length HTTP
 * header; each binary tensor has `parameters.binary_data_size` and no `data`; tensors are little-endian,
 * row-major; binary outputs are asked for with `parameters.binary_data: true` on an output or
 * `parameters.binary_data_output: true` on the request, and follow the JSON in the order the JSON lists them.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as ort from 'onnxruntime-node';

export interface V2ServerOptions {
  modelName: string;
  modelFile: string;
  /** Advertise `binary_tensor_data` in GET /v2 (binary requests are understood either way, as Triton does). */
  binary?: boolean;
  /** Answer every infer with this status and error message instead of running the model. */
  failInfer?: { status: number; error: string };
  /** Triton's max_batch_size, served at GET /v2/models/NAME/config; bigger batches are refused with a 400. */
  maxBatchSize?: number;
  /** Rewrites the model metadata before it is served (a wrong shape or datatype). */
  metadata?: (meta: { inputs: V2Tensor[]; outputs: V2Tensor[] }) => void;
  /** GET /v2/models/NAME/ready answers 400 (Triton's answer for a model that is not ready). */
  modelNotReady?: boolean;
  /** Bearer token required on every request: 401 without an Authorization header, 403 with another token. */
  token?: string;
  /** Wait this long before answering each infer. */
  inferDelayMs?: number;
  /** Run one infer at a time, the next waiting for the last (one model instance: a GPU, not a thread pool). */
  serial?: boolean;
  /** Cut the connection of this many infer requests, before answering them (a server dying mid-batch). */
  dropInfers?: number;
  /** After answering this many infers, cut every further connection (the server is gone). */
  dieAfterInfers?: number;
  /** Answer with an id other than the request's. */
  wrongId?: boolean;
  /** Serve https with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

export interface V2Tensor {
  name: string;
  datatype: string;
  shape: number[];
}

export interface V2Request {
  method: string;
  path: string;
  authorization?: string;
  /** For infers: whether the body was the binary form, the batch size, outputs asked for, binary outputs asked for. */
  binaryInput?: boolean;
  binaryOutput?: boolean;
  batch?: number;
  outputs?: string[];
  id?: unknown;
  /** The infer was answered (not cut or refused). */
  answered?: boolean;
}

export interface V2TestServer {
  url: string;
  requests: V2Request[];
  /** Infers answered with results. */
  answeredInfers(): V2Request[];
  /** Stop accepting and cut every connection now (the process dying). */
  kill(): void;
  close(): Promise<void>;
}

const ORT_TO_V2: Record<string, string> = { float32: 'FP32', int64: 'INT64', float16: 'FP16' };

class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The protocol's tensors are little-endian: a plain copy on such hosts (as a C++ server does), per value elsewhere. */
function floatsFromLittleEndian(bytes: Buffer): Float32Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Float32Array(new Uint8Array(bytes).buffer);
  const values = new Float32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = bytes.readFloatLE(4 * i);
  return values;
}

function littleEndianBytes(data: Float32Array): Buffer {
  if (HOST_IS_LITTLE_ENDIAN) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const blob = Buffer.alloc(data.length * 4);
  data.forEach((v, i) => blob.writeFloatLE(v, i * 4));
  return blob;
}

/** The JSON header and the bytes after it: the binary form when Inference-Header-Content-Length is there. */
function splitBody(req: IncomingMessage, raw: Buffer): { header: any; rest: Buffer; binary: boolean } {
  const lengthHeader = req.headers['inference-header-content-length'];
  const jsonLength = lengthHeader === undefined ? raw.length : Number(lengthHeader);
  if (!Number.isInteger(jsonLength) || jsonLength < 0 || jsonLength > raw.length) throw new Refused(400, `bad Inference-Header-Content-Length ${String(lengthHeader)}`);
  let header: any;
  try {
    header = JSON.parse(raw.subarray(0, jsonLength).toString('utf8'));
  } catch {
    throw new Refused(400, 'request body is not JSON');
  }
  return { header, rest: raw.subarray(jsonLength), binary: lengthHeader !== undefined };
}

export async function startV2Server(options: V2ServerOptions): Promise<V2TestServer> {
  const session = await ort.InferenceSession.create(options.modelFile, { executionProviders: ['cpu'] });
  const requests: V2Request[] = [];
  let killed = false;
  let dropsLeft = options.dropInfers ?? 0;
  let queue: Promise<unknown> = Promise.resolve();
  const describe = (m: ort.InferenceSession.ValueMetadata): V2Tensor =>
    m.isTensor ? { name: m.name, datatype: ORT_TO_V2[m.type] ?? m.type, shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) } : { name: m.name, datatype: 'BYTES', shape: [-1] };
  const metadata = { inputs: session.inputMetadata.map(describe), outputs: session.outputMetadata.map(describe) };
  options.metadata?.(metadata);

  const sendJson = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const modelPath = `/v2/models/${options.modelName}`;

  async function infer(req: IncomingMessage, raw: Buffer, record: V2Request, res: ServerResponse): Promise<void> {
    const { header, rest, binary } = splitBody(req, raw);
    record.binaryInput = binary;
    record.id = header.id;
    const feeds: Record<string, ort.Tensor> = {};
    let cursor = 0;
    for (const input of header.inputs ?? []) {
      if (!session.inputNames.includes(input.name)) throw new Refused(400, `unexpected inference input '${input.name}'`);
      if (input.datatype !== 'FP32') throw new Refused(400, `input '${input.name}' datatype ${input.datatype}, expected FP32`);
      const shape: number[] = input.shape;
      const elements = shape.reduce((a, b) => a * b, 1);
      let values: Float32Array;
      const size = input.parameters?.binary_data_size;
      if (size !== undefined) {
        if (size !== elements * 4 || cursor + size > rest.length) throw new Refused(400, `input '${input.name}' binary_data_size ${size} does not match shape [${shape}] or the body`);
        values = floatsFromLittleEndian(rest.subarray(cursor, cursor + size));
        cursor += size;
      } else {
        if (!Array.isArray(input.data) || input.data.length !== elements) throw new Refused(400, `input '${input.name}' has ${input.data?.length} values for shape [${shape}]`);
        values = Float32Array.from(input.data);
      }
      if (options.maxBatchSize !== undefined && shape[0] > options.maxBatchSize) throw new Refused(400, `inference request batch-size must be <= ${options.maxBatchSize} for '${options.modelName}'`);
      record.batch = shape[0];
      feeds[input.name] = new ort.Tensor('float32', values, shape);
    }
    if (cursor !== rest.length) throw new Refused(400, `${rest.length - cursor} bytes of binary data left over`);
    const wantAllBinary = header.parameters?.binary_data_output === true;
    const asked: { name: string; binary: boolean }[] = header.outputs
      ? header.outputs.map((o: { name: string; parameters?: { binary_data?: boolean } }) => ({ name: o.name, binary: wantAllBinary || o.parameters?.binary_data === true }))
      : session.outputNames.map((name) => ({ name, binary: wantAllBinary }));
    record.outputs = asked.map((o) => o.name);
    record.binaryOutput = asked.some((o) => o.binary);
    const unknown = asked.find((o) => !session.outputNames.includes(o.name));
    if (unknown) throw new Refused(400, `unexpected inference output '${unknown.name}'`);
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await session.run(feeds, asked.map((o) => o.name));
    } catch (err) {
      throw new Refused(400, String((err as Error).message).split('\n')[0]);
    }
    if (options.inferDelayMs) await new Promise((r) => setTimeout(r, options.inferDelayMs));
    const blobs: Buffer[] = [];
    const outputs = asked.map(({ name, binary: asBinary }) => {
      const t = results[name] as ort.Tensor;
      const data = t.data as Float32Array;
      if (!asBinary) return { name, datatype: 'FP32', shape: [...t.dims], data: Array.from(data) };
      const blob = littleEndianBytes(data);
      blobs.push(blob);
      return { name, datatype: 'FP32', shape: [...t.dims], parameters: { binary_data_size: blob.length } };
    });
    const id = options.wrongId ? 'some-other-request' : header.id;
    const answer = Buffer.from(JSON.stringify({ model_name: options.modelName, ...(id !== undefined ? { id } : {}), outputs }));
    record.answered = true;
    if (blobs.length === 0) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
      res.end(answer);
      return;
    }
    const body = Buffer.concat([answer, ...blobs]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': answer.length, 'content-length': body.length });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const record: V2Request = { method: req.method ?? '', path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
    requests.push(record);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (killed) return void req.socket.destroy();
    if (options.token !== undefined) {
      if (!req.headers.authorization) return sendJson(res, 401, { error: 'missing bearer token' });
      if (req.headers.authorization !== `Bearer ${options.token}`) return sendJson(res, 403, { error: 'token not accepted' });
    }
    if (req.method === 'GET' && path === '/v2') return sendJson(res, 200, { name: 'v2-test-server', version: '1', extensions: options.binary ? ['binary_tensor_data', 'model_configuration'] : [] });
    if (req.method === 'GET' && (path === '/v2/health/ready' || path === '/v2/health/live')) return sendJson(res, 200, {});
    if (req.method === 'GET' && path === modelPath) return sendJson(res, 200, { name: options.modelName, platform: 'onnxruntime_onnx', ...metadata });
    if (req.method === 'GET' && path === `${modelPath}/ready`) return options.modelNotReady ? sendJson(res, 400, { error: `model '${options.modelName}' is not ready` }) : sendJson(res, 200, {});
    if (req.method === 'GET' && path === `${modelPath}/config` && options.maxBatchSize !== undefined) return sendJson(res, 200, { name: options.modelName, max_batch_size: options.maxBatchSize });
    if (req.method === 'POST' && path === `${modelPath}/infer`) {
      const answeredSoFar = requests.filter((r) => r.answered).length;
      if (dropsLeft > 0 || (options.dieAfterInfers !== undefined && answeredSoFar >= options.dieAfterInfers)) {
        if (dropsLeft > 0) dropsLeft--;
        else killed = true;
        return void req.socket.destroy();
      }
      if (options.failInfer) return sendJson(res, options.failInfer.status, { error: options.failInfer.error });
      try {
        if (!options.serial) return await infer(req, Buffer.concat(chunks), record, res);
        const turn = queue.then(() => infer(req, Buffer.concat(chunks), record, res));
        queue = turn.catch(() => undefined);
        return await turn;
      } catch (err) {
        if (err instanceof Refused) return sendJson(res, err.status, { error: err.message });
        throw err;
      }
    }
    return sendJson(res, 404, { error: `no route ${req.method} ${path}` });
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err) => sendJson(res, 500, { error: String(err) }));
  };
  const server: Server = options.tls ? (createTlsServer({ key: options.tls.key, cert: options.tls.cert }, listener) as unknown as Server) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  const stop = () => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    answeredInfers: () => requests.filter((r) => r.answered),
    kill() {
      killed = true;
      void stop();
    },
    async close() {
      await stop();
      await session.release();
    },
  };
}
