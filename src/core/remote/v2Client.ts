import { Agent, fetch as undiciFetch } from 'undici';
import type { ExecutionProviderName, ModelSessionOptions, OutputTensor, ProviderAttempt } from '../backend/onnxRuntime';
import { BeitLensError, errorMessage } from '../errors';
import type { InferenceSession, InputTensor, SessionFactory } from '../sessionFactory';

/** The environment variable holding the endpoint's bearer token; never a flag or a setting, so it stays out of history. */
export const ENDPOINT_TOKEN_ENV = 'BEIT_LENS_ENDPOINT_TOKEN';

export interface RemoteEndpointOptions {
  /** Base URL of an Open Inference Protocol (KServe v2) server, e.g. http://127.0.0.1:8000. */
  endpoint: string;
  /** The model's name on the server. */
  modelName: string;
  /** Connect, answer and between-bytes timeout in seconds (default 10, as the hub's). */
  timeoutSeconds?: number;
  /** Attempts per request on connection errors and 5xx answers (default 3); 4xx answers are never retried. */
  attempts?: number;
  /** Default: $BEIT_LENS_ENDPOINT_TOKEN. */
  token?: string;
}

interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

const V2_TO_ORT_TYPE: Record<string, string> = { FP32: 'float32', FP16: 'float16', INT64: 'int64', INT32: 'int32', UINT8: 'uint8', BOOL: 'bool' };

/** Sessions served by a remote KServe v2 server (JSON tensors); preprocessing, labels and config stay in the local folder. */
export class RemoteSessionFactory implements SessionFactory {
  private readonly base: string;
  private readonly timeoutMs: number;
  private dispatcher?: Agent;
  private openSessions = 0;
  private readonly token: string | undefined;

  constructor(private readonly options: RemoteEndpointOptions) {
    let url: URL;
    try {
      url = new URL(options.endpoint);
    } catch {
      throw new BeitLensError('CONFIG_INVALID', `endpoint ${JSON.stringify(options.endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BeitLensError('CONFIG_INVALID', `endpoint ${options.endpoint} must be an http or https URL`);
    this.base = url.href.replace(/\/+$/, '');
    // At least 1 ms: undici reads 0 as "no timeout".
    this.timeoutMs = Math.max(1, Math.round((options.timeoutSeconds ?? 10) * 1000));
    this.token = options.token ?? process.env[ENDPOINT_TOKEN_ENV];
  }

  async create(_model: string, _options: ModelSessionOptions): Promise<InferenceSession> {
    const ready = await this.request('GET', '/v2/health/ready');
    if (ready.status !== 200) throw new BeitLensError('MODEL_INVALID', `the server is not ready (GET /v2/health/ready answered ${ready.status})`, this.base);
    const name = encodeURIComponent(this.options.modelName);
    const meta = await this.json('GET', `/v2/models/${name}`);
    const inputs = tensorList(meta, 'inputs', this.base);
    const outputs = tensorList(meta, 'outputs', this.base);
    this.openSessions++;
    return new RemoteSession(this, `${this.base} model ${this.options.modelName}`, inputs, outputs);
  }

  /** POST /v2/models/NAME/infer with JSON tensors; the request id is checked on the answer. */
  async infer(inputs: Readonly<Record<string, InputTensor>>, outputs: readonly string[]): Promise<Record<string, OutputTensor>> {
    const id = `beit-lens-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const body = {
      id,
      inputs: Object.entries(inputs).map(([name, t]) => ({ name, datatype: 'FP32', shape: t.dims, data: Array.from(t.data) })),
      outputs: outputs.map((name) => ({ name })),
    };
    const answer = await this.json('POST', `/v2/models/${encodeURIComponent(this.options.modelName)}/infer`, body);
    if (answer.id !== id) throw new BeitLensError('INTERNAL', `the server answered request ${JSON.stringify(answer.id)} to request ${id}`, this.base);
    const list = Array.isArray(answer.outputs) ? (answer.outputs as Record<string, unknown>[]) : [];
    const out: Record<string, OutputTensor> = {};
    for (const name of outputs) {
      const tensor = list.find((o) => o.name === name);
      if (!tensor) throw new BeitLensError('MODEL_INVALID', `the server's answer has no output ${name}`, this.base);
      const shape = tensor.shape as number[];
      const data = tensor.data as number[];
      if (tensor.datatype !== 'FP32' || !Array.isArray(shape) || !Array.isArray(data) || data.length !== shape.reduce((a, b) => a * b, 1)) {
        throw new BeitLensError('MODEL_INVALID', `the server's output ${name} is ${String(tensor.datatype)} [${String(shape)}] with ${Array.isArray(data) ? data.length : 'no'} values, expected FP32 data matching its shape`, this.base);
      }
      out[name] = { data: Float32Array.from(data), dims: [...shape] };
    }
    return out;
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

  private agent(): Agent {
    this.dispatcher ??= new Agent({ connectTimeout: this.timeoutMs, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
    return this.dispatcher;
  }

  private async json(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const { status, text } = await this.request(method, path, body);
    const parsed = parseJson(text);
    if (status >= 400) throw new BeitLensError('REMOTE_FAILED', `${method} ${path} answered ${status}: ${serverErrorOf(text)}`, this.base);
    if (!parsed || typeof parsed !== 'object') throw new BeitLensError('INTERNAL', `${method} ${path} answered ${status} with a body that is not a JSON object`, this.base);
    return parsed as Record<string, unknown>;
  }

  /** One request with retries (backoff 0.2 s, 0.4 s, ...) on connection errors and 5xx; never on 4xx. */
  private async request(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const attempts = Math.max(1, this.options.attempts ?? 3);
    let last = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 2)));
      try {
        const res = await undiciFetch(this.base + path, {
          method,
          dispatcher: this.agent(),
          headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        if (res.status >= 500) {
          last = `${method} ${path} answered ${res.status}: ${serverErrorOf(text)}`;
          continue;
        }
        return { status: res.status, text };
      } catch (err) {
        last = `${method} ${path} failed: ${errorMessage(err)}${(err as { cause?: unknown }).cause ? ` (${errorMessage((err as { cause: unknown }).cause)})` : ''}`;
      }
    }
    throw new BeitLensError('REMOTE_FAILED', `${last} (after ${attempts} attempts)`, this.base);
  }
}

class RemoteSession implements InferenceSession {
  readonly provider: ExecutionProviderName = 'cpu';
  readonly attempts: readonly ProviderAttempt[] = [];

  constructor(
    private readonly factory: RemoteSessionFactory,
    readonly file: string,
    private readonly inputs: TensorMetadata[],
    private readonly outputs: TensorMetadata[],
  ) {}

  get inputNames(): readonly string[] {
    return this.inputs.map((t) => t.name);
  }

  get outputNames(): readonly string[] {
    return this.outputs.map((t) => t.name);
  }

  inputTensor(name: string): { type: string; shape: ReadonlyArray<number | string> } | undefined {
    const t = this.inputs.find((i) => i.name === name);
    return t && { type: V2_TO_ORT_TYPE[t.datatype] ?? t.datatype, shape: t.shape };
  }

  run(inputs: Readonly<Record<string, InputTensor>>, outputs: readonly string[]): Promise<Record<string, OutputTensor>> {
    return this.factory.infer(inputs, outputs);
  }

  release(): Promise<void> {
    return this.factory.sessionReleased();
  }
}

function tensorList(meta: Record<string, unknown>, key: 'inputs' | 'outputs', endpoint: string): TensorMetadata[] {
  const list = meta[key];
  const ok = Array.isArray(list) && list.every((t) => t && typeof t.name === 'string' && typeof t.datatype === 'string' && Array.isArray(t.shape) && t.shape.every(Number.isInteger));
  if (!ok) throw new BeitLensError('MODEL_INVALID', `the server's model metadata has no valid ${key} list (name, datatype, shape for each tensor)`, endpoint);
  return list as TensorMetadata[];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The protocol's `{"error": "..."}` message where the server sent one, else the start of its body. */
function serverErrorOf(text: string): string {
  const parsed = parseJson(text);
  return parsed && typeof parsed === 'object' && typeof (parsed as { error?: unknown }).error === 'string' ? (parsed as { error: string }).error : text.slice(0, 300);
}
