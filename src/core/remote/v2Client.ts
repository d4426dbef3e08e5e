import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Agent, request as undiciRequest } from 'undici';
import type { ExecutionProviderName, ModelSessionOptions, OutputTensor, ProviderAttempt } from '../backend/onnxRuntime';
import { BeitLensError, errorMessage } from '../errors';
import { graphInterface, type TensorInfo } from '../modelInfo';
import type { InferenceSession, InputTensor, SessionFactory } from '../sessionFactory';

/** The environment variable holding the endpoint's bearer token; never a flag or a setting, so it stays out of history. */
export const ENDPOINT_TOKEN_ENV = 'BEIT_LENS_ENDPOINT_TOKEN';

/** Triton's binary tensor data extension, as GET /v2 names it. */
const ENV_TOKEN_SOURCE = { from: `$${ENDPOINT_TOKEN_ENV}`, howToSet: `set $${ENDPOINT_TOKEN_ENV} to a bearer token the server accepts` };

const BINARY_EXTENSION = 'binary_tensor_data';
const HEADER_LENGTH = 'inference-header-content-length';

export interface RemoteEndpointOptions {
  /** Base URL(s) of Open Inference Protocol (KServe v2) servers, e.g. http://127.0.0.1:8000; several share the work. */
  endpoint: string | readonly string[];
  /** The model's name on the server(s). */
  modelName: string;
  /** Connect, answer and between-bytes timeout in seconds (default 10, as the hub's). */
  timeoutSeconds?: number;
  /** Attempts per request on connection errors, timeouts and 5xx answers (default 3); 4xx answers are never retried. */
  attempts?: number;
  /** The first retry's wait in ms, doubled for each later one (default 200). */
  backoffMs?: number;
  /** Default: $BEIT_LENS_ENDPOINT_TOKEN; '' sends none. */
  token?: string;
  /** Where the token comes from and how to set it, for authentication errors (default: the environment variable). */
  tokenSource?: { from: string; howToSet: string };
  /** PEM file of the CA certificate(s) that https endpoints are checked against, instead of the system's. */
  caFile?: string;
  /** 'auto' (default): Triton's binary tensors where the server lists binary_tensor_data; 'json': JSON tensors always. */
  tensors?: 'auto' | 'json';
}

interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

/** What one endpoint did for this factory's sessions, for a scan's summary. */
export interface EndpointStats {
  endpoint: string;
  /** Images answered (a batch retried elsewhere counts where it was answered). */
  images: number;
  requests: number;
  /** Set once the endpoint failed and its batches went to the others. */
  failure?: string;
}

const V2_TO_ORT_TYPE: Record<string, string> = { FP32: 'float32', FP16: 'float16', INT64: 'int64', INT32: 'int32', UINT8: 'uint8', BOOL: 'bool' };
const ORT_TO_V2_TYPE: Record<string, string> = Object.fromEntries(Object.entries(V2_TO_ORT_TYPE).map(([v2, ort]) => [ort, v2]));

/**
 * The endpoint could not answer (connection error, timeout or 5xx after every attempt), as opposed to refusing
 * the request (4xx): only this moves a batch to another endpoint.
 */
class EndpointUnavailable extends BeitLensError {}

/**
 * Sessions served by remote KServe v2 servers; preprocessing, labels and config stay in the local folder. With
 * several endpoints each run (or each max_batch_size chunk of it) goes to the endpoint with the fewest requests
 * outstanding.
 */
export class RemoteSessionFactory implements SessionFactory {
  private readonly bases: string[];
  private readonly timeoutMs: number;
  private dispatcher?: Agent;
  private ca?: Promise<string>;
  private openSessions = 0;
  private readonly token: string | undefined;
  private readonly stats = new Map<string, EndpointStats>();

  constructor(private readonly options: RemoteEndpointOptions) {
    const endpoints = typeof options.endpoint === 'string' ? [options.endpoint] : [...options.endpoint];
    if (endpoints.length === 0) throw new BeitLensError('CONFIG_INVALID', 'no endpoint given');
    this.bases = endpoints.map(parseEndpoint);
    const duplicate = this.bases.find((b, i) => this.bases.indexOf(b) !== i);
    if (duplicate) throw new BeitLensError('CONFIG_INVALID', `endpoint ${duplicate} is given twice`);
    // At least 1 ms: undici reads 0 as "no timeout".
    this.timeoutMs = Math.max(1, Math.round((options.timeoutSeconds ?? 10) * 1000));
    this.token = options.token ?? process.env[ENDPOINT_TOKEN_ENV];
    for (const endpoint of this.bases) this.stats.set(endpoint, { endpoint, images: 0, requests: 0 });
  }

  /** Connects every endpoint: health, the model's readiness, metadata checked against the local graph, batch limit. */
  async create(model: string, _options: ModelSessionOptions): Promise<InferenceSession> {
    const local = await graphInterface(model);
    const endpoints = await Promise.all(this.bases.map((base) => this.connect(base, model, local)));
    this.openSessions++;
    const label = this.bases.length === 1 ? `${this.bases[0]} model ${this.options.modelName}` : `${this.bases.join(', ')} model ${this.options.modelName}`;
    return new RemoteSession(this, label, endpoints);
  }

  /** How many batches are worth giving the sessions at once: one per endpoint. */
  get endpointCount(): number {
    return this.bases.length;
  }

  /** Per endpoint, since this factory was made. */
  endpointStats(): EndpointStats[] {
    return [...this.stats.values()].map((s) => ({ ...s }));
  }

  /** Called by each session's release: the connections close with the last one, so a CLI run can exit. */
  async sessionReleased(): Promise<void> {
    if (--this.openSessions <= 0) await this.close();
  }

  async close(): Promise<void> {
    const dispatcher = this.dispatcher;
    this.dispatcher = undefined;
    await dispatcher?.close();
  }

  private async connect(base: string, model: string, local: { inputs: TensorInfo[]; outputs: TensorInfo[] }): Promise<Endpoint> {
    const ready = await this.request(base, 'GET', '/v2/health/ready');
    if (ready.status === 401 || ready.status === 403) throw refusal(base, 'GET', '/v2/health/ready', ready.status, ready.body, !!this.token, this.options.tokenSource);
    if (ready.status !== 200) throw new BeitLensError('REMOTE_FAILED', `the server is not ready (GET /v2/health/ready answered ${ready.status})`, base);
    const name = encodeURIComponent(this.options.modelName);
    const meta = await this.json(base, 'GET', `/v2/models/${name}`);
    const modelReady = await this.request(base, 'GET', `/v2/models/${name}/ready`);
    if (modelReady.status !== 200) {
      throw new BeitLensError('REMOTE_FAILED', `model ${this.options.modelName} is not ready on the server (GET /v2/models/${name}/ready answered ${modelReady.status}${httpDetail(modelReady.body)})`, base);
    }
    const inputs = tensorList(meta, 'inputs', base);
    const outputs = tensorList(meta, 'outputs', base);
    checkAgainstLocal(inputs, local.inputs, 'input', true, this.options.modelName, model, base);
    checkAgainstLocal(outputs, local.outputs, 'output', false, this.options.modelName, model, base);
    // GET /v2 lists the protocol extensions; a server that does not answer it gets JSON tensors.
    const server = await this.request(base, 'GET', '/v2');
    const extensions = server.status === 200 ? (parseJson(server.body.toString('utf8')) as { extensions?: unknown } | undefined)?.extensions : undefined;
    const binary = this.options.tensors !== 'json' && Array.isArray(extensions) && extensions.includes(BINARY_EXTENSION);
    return new Endpoint(this, base, inputs, outputs, binary, await this.maxBatchSize(base, inputs));
  }

  /**
   * The largest batch the server takes: Triton's model configuration extension (GET /v2/models/NAME/config,
   * max_batch_size; 0 means the model does no batching of its own and takes the batch dimension as given), else
   * a fixed first dimension of pixel_values, else no limit.
   */
  private async maxBatchSize(base: string, inputs: TensorMetadata[]): Promise<number> {
    const config = await this.request(base, 'GET', `/v2/models/${encodeURIComponent(this.options.modelName)}/config`);
    const fromConfig = config.status === 200 ? (parseJson(config.body.toString('utf8')) as { max_batch_size?: unknown } | undefined)?.max_batch_size : undefined;
    const first = inputs.find((t) => t.name === 'pixel_values')?.shape[0];
    const limits = [typeof fromConfig === 'number' && fromConfig > 0 ? fromConfig : Infinity, first !== undefined && first > 0 ? first : Infinity];
    return Math.min(...limits);
  }

  /** POST /v2/models/NAME/infer; the request id is checked on the answer. */
  async infer(endpoint: Endpoint, inputs: Readonly<Record<string, InputTensor>>, outputs: readonly string[]): Promise<Record<string, OutputTensor>> {
    const base = endpoint.base;
    const id = `beit-lens-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const entries = Object.entries(inputs);
    const route = `/v2/models/${encodeURIComponent(this.options.modelName)}/infer`;
    let answer: { status: number; headers: { get(name: string): string | null }; body: Buffer };
    if (endpoint.binary) {
      const header = Buffer.from(
        JSON.stringify({
          id,
          inputs: entries.map(([name, t]) => ({ name, datatype: 'FP32', shape: t.dims, parameters: { binary_data_size: t.data.byteLength } })),
          outputs: outputs.map((name) => ({ name, parameters: { binary_data: true } })),
        }),
      );
      const body = Buffer.concat([header, ...entries.map(([, t]) => littleEndianBytes(t.data))]);
      answer = await this.request(base, 'POST', route, { body, type: 'application/octet-stream', headerLength: header.length });
    } else {
      const body = { id, inputs: entries.map(([name, t]) => ({ name, datatype: 'FP32', shape: t.dims, data: Array.from(t.data) })), outputs: outputs.map((name) => ({ name })) };
      answer = await this.request(base, 'POST', route, { body: Buffer.from(JSON.stringify(body)), type: 'application/json' });
    }
    if (answer.status >= 400) throw refusal(base, 'POST', route, answer.status, answer.body, !!this.token, this.options.tokenSource);
    return decodeInferAnswer(answer, id, outputs, base);
  }

  recordAnswer(endpoint: string, images: number): void {
    const s = this.stats.get(endpoint)!;
    s.images += images;
    s.requests++;
  }

  recordFailure(endpoint: string, reason: string): void {
    this.stats.get(endpoint)!.failure = reason;
  }

  private async agent(): Promise<Agent> {
    if (this.options.caFile !== undefined) this.ca ??= readCa(this.options.caFile);
    const ca = this.ca && (await this.ca);
    this.dispatcher ??= new Agent({ connectTimeout: this.timeoutMs, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs, ...(ca ? { connect: { ca } } : {}) });
    return this.dispatcher;
  }

  private async json(base: string, method: string, route: string): Promise<Record<string, unknown>> {
    const { status, body } = await this.request(base, method, route);
    if (status >= 400) throw refusal(base, method, route, status, body, !!this.token, this.options.tokenSource);
    const parsed = parseJson(body.toString('utf8'));
    if (!parsed || typeof parsed !== 'object') throw new BeitLensError('REMOTE_FAILED', `${method} ${route} answered ${status} with a body that is not a JSON object`, base);
    return parsed as Record<string, unknown>;
  }

  /** One request with retries (backoff 0.2 s, 0.4 s, ...) on connection errors, timeouts and 5xx; never on 4xx. */
  private async request(base: string, method: string, route: string, send?: { body: Buffer; type: string; headerLength?: number }): Promise<{ status: number; headers: { get(name: string): string | null }; body: Buffer }> {
    const attempts = Math.max(1, this.options.attempts ?? 3);
    const backoffMs = this.options.backoffMs ?? 200;
    let last = '';
    let timedOut = false;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 2)));
      try {
        const headers: Record<string, string> = {
          ...(send ? { 'content-type': send.type } : {}),
          ...(send?.headerLength !== undefined ? { [HEADER_LENGTH]: String(send.headerLength) } : {}),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        };
        // undici's request, not its fetch: fetch streams a body through web streams, several times slower for
        // the megabytes of a binary batch (measured over loopback: 31 against 11 ms for 4.8 MB).
        const res = await undiciRequest(base + route, { method: method as 'GET' | 'POST', dispatcher: await this.agent(), headers, ...(send ? { body: send.body } : {}) });
        const body = Buffer.from(await res.body.arrayBuffer());
        if (res.statusCode >= 500) {
          last = `${method} ${route} answered ${res.statusCode}${httpDetail(body)}`;
          timedOut = false;
          continue;
        }
        const answerHeaders = res.headers;
        return { status: res.statusCode, headers: { get: (name) => headerValue(answerHeaders[name.toLowerCase()]) }, body };
      } catch (err) {
        if (err instanceof BeitLensError) throw err;
        const cause = (err as { cause?: unknown }).cause;
        timedOut = isTimeout(err) || isTimeout(cause);
        last = timedOut
          ? `${method} ${route} timed out: no answer within ${this.timeoutMs / 1000} s (${errorMessage(cause ?? err)})`
          : `${method} ${route} failed: ${errorMessage(err)}${cause ? ` (${errorMessage(cause)})` : ''}`;
      }
    }
    throw new EndpointUnavailable(timedOut ? 'NETWORK_TIMEOUT' : 'REMOTE_FAILED', `${last} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`, base);
  }
}

/** One server as a session sees it: its model's interface, whether it takes binary tensors, its batch limit. */
class Endpoint {
  outstanding = 0;
  sent = 0;
  failure?: string;

  constructor(
    readonly factory: RemoteSessionFactory,
    readonly base: string,
    readonly inputs: TensorMetadata[],
    readonly outputs: TensorMetadata[],
    readonly binary: boolean,
    readonly maxBatch: number,
  ) {}
}

class RemoteSession implements InferenceSession {
  readonly provider: ExecutionProviderName = 'cpu';
  readonly attempts: readonly ProviderAttempt[] = [];

  constructor(
    private readonly factory: RemoteSessionFactory,
    readonly file: string,
    private readonly endpoints: Endpoint[],
  ) {}

  /** The interface all endpoints serve: every endpoint's model was checked against the same local graph. */
  get inputNames(): readonly string[] {
    return this.endpoints[0].inputs.map((t) => t.name);
  }

  get outputNames(): readonly string[] {
    return this.endpoints[0].outputs.filter((o) => this.endpoints.every((e) => e.outputs.some((t) => t.name === o.name))).map((t) => t.name);
  }

  inputTensor(name: string): { type: string; shape: ReadonlyArray<number | string> } | undefined {
    const t = this.endpoints[0].inputs.find((i) => i.name === name);
    // A fixed batch dimension is the endpoint's batch limit, which run() keeps to; BeitModel sees a dynamic one.
    return t && { type: V2_TO_ORT_TYPE[t.datatype] ?? t.datatype, shape: t.shape.map((d, i) => (i === 0 ? -1 : d)) };
  }

  /**
   * Sends the batch, in chunks no bigger than every live endpoint's max_batch_size, each to the live endpoint
   * with the fewest requests outstanding: callers that keep one batch per endpoint in flight (the scan) keep
   * every endpoint busy. A chunk whose endpoint became unavailable goes to another; a refusal (4xx) fails the
   * run. The outputs are the chunks' in order: each image answered once.
   */
  async run(inputs: Readonly<Record<string, InputTensor>>, outputs: readonly string[]): Promise<Record<string, OutputTensor>> {
    const entries = Object.entries(inputs);
    const n = entries[0]?.[1].dims[0] ?? 0;
    const live = this.endpoints.filter((e) => !e.failure);
    if (live.length === 0) throw this.allFailed();
    const chunk = Math.max(1, Math.min(n, ...live.map((e) => e.maxBatch)));
    const parts: Promise<Record<string, OutputTensor>>[] = [];
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      const slice = Object.fromEntries(entries.map(([name, t]) => [name, sliceBatch(t, start, count)]));
      parts.push(this.runChunk(slice, outputs, count));
    }
    const answers = await Promise.all(parts);
    return Object.fromEntries(outputs.map((name) => [name, concatBatch(answers.map((a) => a[name]))]));
  }

  private async runChunk(inputs: Record<string, InputTensor>, outputs: readonly string[], count: number): Promise<Record<string, OutputTensor>> {
    for (;;) {
      const live = this.endpoints.filter((e) => !e.failure && e.maxBatch >= count);
      if (live.length === 0) throw this.allFailed();
      // Ties go to the endpoint sent the fewest requests, so one batch at a time still alternates.
      const endpoint = live.reduce((a, b) => (b.outstanding < a.outstanding || (b.outstanding === a.outstanding && b.sent < a.sent) ? b : a));
      endpoint.outstanding++;
      endpoint.sent++;
      try {
        const answer = await this.factory.infer(endpoint, inputs, outputs);
        this.factory.recordAnswer(endpoint.base, count);
        return answer;
      } catch (err) {
        if (!(err instanceof EndpointUnavailable) || this.endpoints.length === 1) throw err;
        endpoint.failure ??= err.message;
        this.factory.recordFailure(endpoint.base, err.message);
      } finally {
        endpoint.outstanding--;
      }
    }
  }

  private allFailed(): BeitLensError {
    return new BeitLensError('REMOTE_FAILED', `every endpoint failed: ${this.endpoints.map((e) => e.failure).join('; ')}`);
  }

  release(): Promise<void> {
    return this.factory.sessionReleased();
  }
}

function parseEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new BeitLensError('CONFIG_INVALID', `endpoint ${JSON.stringify(endpoint)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BeitLensError('CONFIG_INVALID', `endpoint ${endpoint} must be an http or https URL`);
  return url.href.replace(/\/+$/, '');
}

async function readCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new BeitLensError('FILE_NOT_FOUND', `cannot read the --ca file: ${errorMessage(err)}`, file);
  }
  try {
    // Checked here: TLS would otherwise ignore a file without a certificate and fail every connection as untrusted.
    new X509Certificate(pem);
  } catch {
    throw new BeitLensError('CONFIG_INVALID', 'the --ca file is not a PEM certificate', file);
  }
  return pem;
}

function headerValue(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

/**
 * The refusal of a request: auth failures say what to do about the token; others show the server's
 * `{"error": ...}` message.
 */
function refusal(base: string, method: string, route: string, status: number, body: Buffer, tokenSent: boolean, source = ENV_TOKEN_SOURCE): BeitLensError {
  if (status === 401 || status === 403) {
    const hint = tokenSent ? `the bearer token (from ${source.from}) was not accepted` : `no token was sent: ${source.howToSet}`;
    return new BeitLensError('REMOTE_FAILED', `authentication failed: ${method} ${route} answered ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}${httpDetail(body)}; ${hint}`, base);
  }
  return new BeitLensError('REMOTE_FAILED', `${method} ${route} answered ${status}${httpDetail(body)}`, base);
}

function decodeInferAnswer(answer: { status: number; headers: { get(name: string): string | null }; body: Buffer }, id: string, outputs: readonly string[], base: string): Record<string, OutputTensor> {
  const headerLength = answer.headers.get(HEADER_LENGTH);
  const jsonEnd = headerLength !== null ? Number(headerLength) : answer.body.length;
  if (!Number.isInteger(jsonEnd) || jsonEnd < 0 || jsonEnd > answer.body.length) {
    throw new BeitLensError('REMOTE_FAILED', `the answer's ${HEADER_LENGTH} ${headerLength} does not fit its ${answer.body.length}-byte body`, base);
  }
  const parsed = parseJson(answer.body.subarray(0, jsonEnd).toString('utf8')) as Record<string, unknown> | undefined;
  if (!parsed || typeof parsed !== 'object') throw new BeitLensError('REMOTE_FAILED', 'the inference answer is not a JSON object', base);
  if (parsed.id !== id) throw new BeitLensError('REMOTE_FAILED', `the server answered request ${JSON.stringify(parsed.id)} to request ${id}`, base);
  const list = Array.isArray(parsed.outputs) ? (parsed.outputs as Record<string, unknown>[]) : [];
  // Binary outputs follow the JSON in the order the JSON lists them, whichever were asked for.
  let offset = jsonEnd;
  const decoded = new Map<string, OutputTensor>();
  for (const tensor of list) {
    const name = String(tensor.name);
    const shape = tensor.shape as number[];
    const size = (tensor.parameters as { binary_data_size?: unknown } | undefined)?.binary_data_size;
    const valid = tensor.datatype === 'FP32' && Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0);
    const count = valid ? shape.reduce((a, b) => a * b, 1) : -1;
    let data: Float32Array | undefined;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || offset + size > answer.body.length) {
        throw new BeitLensError('REMOTE_FAILED', `the server's output ${name} claims ${String(size)} binary bytes, beyond the answer's ${answer.body.length}`, base);
      }
      if (valid && size === count * 4) data = floatsFromLittleEndian(answer.body.subarray(offset, offset + size));
      offset += size;
    } else if (valid && Array.isArray(tensor.data) && tensor.data.length === count) {
      data = Float32Array.from(tensor.data as number[]);
    }
    if (!outputs.includes(name)) continue;
    if (!data) {
      const values = size !== undefined ? `${String(size)} bytes` : Array.isArray(tensor.data) ? `${tensor.data.length} values` : 'no data';
      throw new BeitLensError('REMOTE_FAILED', `the server's output ${name} is ${String(tensor.datatype)} [${String(shape)}] with ${values}, expected FP32 data matching its shape`, base);
    }
    decoded.set(name, { data, dims: [...shape] });
  }
  const out: Record<string, OutputTensor> = {};
  for (const name of outputs) {
    const tensor = decoded.get(name);
    if (!tensor) throw new BeitLensError('REMOTE_FAILED', `the server's answer has no output ${name}`, base);
    out[name] = tensor;
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The protocol's binary tensors are little-endian, row-major. */
function littleEndianBytes(data: Float32Array): Buffer {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return LITTLE_ENDIAN ? bytes : Buffer.from(bytes).swap32();
}

function floatsFromLittleEndian(bytes: Buffer): Float32Array {
  // A copy: the answer's bytes need not be 4-byte aligned.
  const copy = Buffer.from(bytes);
  if (!LITTLE_ENDIAN) copy.swap32();
  return new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4);
}

function sliceBatch(t: InputTensor, start: number, count: number): InputTensor {
  const n = t.dims[0];
  if (start === 0 && count === n) return t;
  const per = t.data.length / n;
  return { data: t.data.subarray(start * per, (start + count) * per), dims: [count, ...t.dims.slice(1)] };
}

function concatBatch(parts: OutputTensor[]): OutputTensor {
  if (parts.length === 1) return parts[0];
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return { data, dims: [parts.reduce((a, p) => a + p.dims[0], 0), ...parts[0].dims.slice(1)] };
}

function tensorList(meta: Record<string, unknown>, key: 'inputs' | 'outputs', endpoint: string): TensorMetadata[] {
  const list = meta[key];
  const ok = Array.isArray(list) && list.every((t) => t && typeof t.name === 'string' && typeof t.datatype === 'string' && Array.isArray(t.shape) && t.shape.every(Number.isInteger));
  if (!ok) throw new BeitLensError('REMOTE_FAILED', `the server's model metadata has no valid ${key} list (name, datatype, shape for each tensor)`, endpoint);
  return list as TensorMetadata[];
}

/**
 * The server's model must take every input of the local graph, and give its outputs, with the same datatypes
 * and shapes (-1 on the server, or a symbolic dimension in the graph, matches any size). Outputs the server
 * lacks are left to the caller, which knows which it needs.
 */
function checkAgainstLocal(remote: TensorMetadata[], local: TensorInfo[], kind: 'input' | 'output', required: boolean, modelName: string, graphFile: string, base: string): void {
  for (const want of local) {
    const got = remote.find((t) => t.name === want.name);
    const wantText = `${ORT_TO_V2_TYPE[want.type] ?? want.type} [${want.shape.map((d) => (typeof d === 'string' ? -1 : d)).join(',')}]`;
    if (!got) {
      if (required) throw new BeitLensError('MODEL_INVALID', `the server's model ${modelName} has no ${kind} ${want.name} (the local ${path.basename(graphFile)} has ${wantText})`, base);
      continue;
    }
    const dimsFit = got.shape.length === want.shape.length && got.shape.every((d, i) => d === -1 || typeof want.shape[i] === 'string' || d === want.shape[i]);
    if (got.datatype !== (ORT_TO_V2_TYPE[want.type] ?? want.type) || !dimsFit) {
      throw new BeitLensError('MODEL_INVALID', `the server's model ${modelName} ${kind} ${want.name} is ${got.datatype} [${got.shape.join(',')}], the local ${path.basename(graphFile)} has ${wantText}`, base);
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** ": " and the protocol's `{"error": "..."}` message where the server sent one, else the start of its body. */
function httpDetail(body: Buffer): string {
  const text = body.toString('utf8');
  const parsed = parseJson(text);
  const message = parsed && typeof parsed === 'object' && typeof (parsed as { error?: unknown }).error === 'string' ? (parsed as { error: string }).error : text.slice(0, 300);
  return message ? `: ${message}` : '';
}
