/**
 * An Open Inference Protocol (KServe v2 REST) server for tests, written from the protocol document and sharing no
 * code with src/core/remote: node:http in front of a real onnxruntime session of a converted fixture graph.
 * JSON tensors only (the binary tensor extension is not served, so GET /v2 lists no extensions).
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ort from 'onnxruntime-node';

export interface V2ServerOptions {
  modelName: string;
  modelFile: string;
  /** Answer every infer with this status and error message instead of running the model. */
  failInfer?: { status: number; error: string };
}

export interface V2TestServer {
  url: string;
  requests: { method: string; path: string; authorization?: string }[];
  close(): Promise<void>;
}

const ORT_TO_V2: Record<string, string> = { float32: 'FP32', int64: 'INT64', float16: 'FP16' };

export async function startV2Server(options: V2ServerOptions): Promise<V2TestServer> {
  const session = await ort.InferenceSession.create(options.modelFile, { executionProviders: ['cpu'] });
  const requests: V2TestServer['requests'] = [];
  const tensorMeta = (m: ort.InferenceSession.ValueMetadata) =>
    m.isTensor ? { name: m.name, datatype: ORT_TO_V2[m.type] ?? m.type, shape: m.shape.map((d) => (typeof d === 'number' ? d : -1)) } : { name: m.name, datatype: 'BYTES', shape: [-1] };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const modelPath = `/v2/models/${options.modelName}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push({ method: req.method ?? '', path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method === 'GET' && path === '/v2') return send(res, 200, { name: 'v2-test-server', version: '1', extensions: [] });
    if (req.method === 'GET' && (path === '/v2/health/ready' || path === '/v2/health/live')) return send(res, 200, {});
    if (req.method === 'GET' && path === modelPath) {
      return send(res, 200, { name: options.modelName, platform: 'onnxruntime_onnx', inputs: session.inputMetadata.map(tensorMeta), outputs: session.outputMetadata.map(tensorMeta) });
    }
    if (req.method === 'POST' && path === `${modelPath}/infer`) {
      if (options.failInfer) return send(res, options.failInfer.status, { error: options.failInfer.error });
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 400, { error: 'request body is not JSON' });
      }
      const feeds: Record<string, ort.Tensor> = {};
      for (const input of body.inputs ?? []) {
        if (!session.inputNames.includes(input.name)) return send(res, 400, { error: `unexpected inference input '${input.name}'` });
        if (input.datatype !== 'FP32') return send(res, 400, { error: `input '${input.name}' datatype ${input.datatype}, expected FP32` });
        const count = (input.shape as number[]).reduce((a, b) => a * b, 1);
        if (!Array.isArray(input.data) || input.data.length !== count) return send(res, 400, { error: `input '${input.name}' has ${input.data?.length} values for shape [${input.shape}]` });
        feeds[input.name] = new ort.Tensor('float32', Float32Array.from(input.data), input.shape);
      }
      const wanted: string[] = body.outputs ? body.outputs.map((o: { name: string }) => o.name) : [...session.outputNames];
      const unknown = wanted.find((n) => !session.outputNames.includes(n));
      if (unknown) return send(res, 400, { error: `unexpected inference output '${unknown}'` });
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await session.run(feeds, wanted);
      } catch (err) {
        return send(res, 400, { error: String((err as Error).message).split('\n')[0] });
      }
      return send(res, 200, {
        model_name: options.modelName,
        ...(body.id !== undefined ? { id: body.id } : {}),
        outputs: wanted.map((name) => {
          const t = results[name] as ort.Tensor;
          return { name, datatype: 'FP32', shape: [...t.dims], data: Array.from(t.data as Float32Array) };
        }),
      });
    }
    return send(res, 404, { error: `no route ${req.method} ${path}` });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await session.release();
    },
  };
}
