import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BeitModel, type ClassifyResult } from '../../src/core/beitModel';
import { BeitLensError } from '../../src/core/errors';
import { RemoteSessionFactory, type RemoteEndpointOptions } from '../../src/core/remote/v2Client';
import { convertedTinyModel, expected, FIXTURE_DIR, maxAbsDiff, removedAfterTests } from '../helpers/fixtures';
import { startV2Server, V2ServerOptions, V2TestServer } from '../helpers/v2Server';

const files: string[] = expected.images.map((i: any) => path.join(FIXTURE_DIR, i.file));
const tempDir = removedAfterTests();

describe('KServe v2 remote session: binary tensors and conformance cases against the independent test server', () => {
  let dir: string;
  let local: BeitModel;
  let want: ClassifyResult[];
  const servers: V2TestServer[] = [];

  const serve = async (options: Partial<V2ServerOptions> = {}) => {
    const server = await startV2Server({ modelName: 'beit', modelFile: local.directory.classifyModel, ...options });
    servers.push(server);
    return server;
  };
  /** A BeitModel on the endpoint(s), disposed (and its connections closed) after `use`. */
  const withRemote = async <T>(options: RemoteEndpointOptions, use: (model: BeitModel, sessions: RemoteSessionFactory) => Promise<T>): Promise<T> => {
    const sessions = new RemoteSessionFactory({ backoffMs: 10, ...options });
    try {
      const model = await BeitModel.load(dir, { verifier: false, sessions });
      try {
        return await use(model, sessions);
      } finally {
        await model.dispose();
      }
    } finally {
      await sessions.close();
    }
  };
  const assertEqualsLocal = (got: ClassifyResult[]) => {
    assert.equal(got.length, files.length);
    got.forEach((r, i) => {
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.image, want[i].image);
      assert.deepEqual(r.top!.map((p) => p.index), want[i].top!.map((p) => p.index));
      assert.ok(maxAbsDiff(r.top!.map((p) => p.score), want[i].top!.map((p) => p.score)) <= 1e-4);
    });
  };
  const infers = (server: V2TestServer) => server.requests.filter((r) => r.path === '/v2/models/beit/infer');

  before(async () => {
    dir = await convertedTinyModel();
    local = await BeitModel.load(dir, { provider: 'cpu', verifier: false });
    want = await local.classifyFiles(files, { topK: 5 });
  });
  after(async () => {
    await local.dispose();
    await Promise.all(servers.map((s) => s.close()));
  });

  it('binary tensors where GET /v2 lists binary_tensor_data: classify and embed equal the local session within 1e-4', async () => {
    const server = await serve({ binary: true });
    await withRemote({ endpoint: server.url, modelName: 'beit' }, async (remote) => {
      assertEqualsLocal(await remote.classifyFiles(files, { batchSize: 4, topK: 5 }));
      const got = await remote.embedFiles(files);
      const ref = await local.embedFiles(files);
      got.forEach((e, i) => assert.ok(maxAbsDiff(e.embedding!, ref[i].embedding!) <= 1e-4));
    });
    assert.ok(server.requests.some((r) => r.method === 'GET' && r.path === '/v2'));
    assert.ok(infers(server).length >= 3);
    for (const r of infers(server)) {
      assert.equal(r.binaryInput, true);
      assert.equal(r.binaryOutput, true);
      assert.equal(r.answered, true);
    }
  });

  it('JSON tensors where the server does not list the extension, and with tensors: json; results equal the local session', async () => {
    const plain = await serve({ binary: false });
    const binary = await serve({ binary: true });
    await withRemote({ endpoint: plain.url, modelName: 'beit' }, async (remote) => assertEqualsLocal(await remote.classifyFiles(files, { topK: 5 })));
    await withRemote({ endpoint: binary.url, modelName: 'beit', tensors: 'json' }, async (remote) => assertEqualsLocal(await remote.classifyFiles(files, { topK: 5 })));
    for (const r of [...infers(plain), ...infers(binary)]) {
      assert.equal(r.binaryInput, false);
      assert.equal(r.binaryOutput, false);
    }
    assert.ok(infers(plain).length > 0 && infers(binary).length > 0);
  });

  it('asks only for the outputs it needs (the requested-outputs filter), and the server honours it', async () => {
    const server = await serve({ binary: true });
    await withRemote({ endpoint: server.url, modelName: 'beit' }, async (remote) => {
      await remote.classifyFiles(files.slice(0, 2), { topK: 5 });
      assert.deepEqual(infers(server).at(-1)!.outputs, ['logits']);
      await remote.embedFiles(files.slice(0, 1));
      assert.ok(infers(server).at(-1)!.outputs!.includes('pooled_output'));
    });
    // The server side of the filter, asked directly: only the named output comes back.
    const res = await fetch(`${server.url}/v2/models/beit/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'pixel_values', datatype: 'FP32', shape: [1, 3, 224, 224], data: new Array(3 * 224 * 224).fill(0) }], outputs: [{ name: 'pooled_output' }] }),
    });
    const body = (await res.json()) as { outputs: { name: string }[] };
    assert.deepEqual(body.outputs.map((o) => o.name), ['pooled_output']);
  });

  it('a wrong output shape in the metadata is refused at connect, naming the tensor and the endpoint', async () => {
    const server = await serve({ metadata: (m) => void (m.outputs.find((t) => t.name === 'logits')!.shape = [-1, 7]) });
    await assert.rejects(withRemote({ endpoint: server.url, modelName: 'beit' }, async () => undefined), (err: unknown) => {
      assert.ok(err instanceof BeitLensError);
      assert.equal(err.code, 'MODEL_INVALID');
      assert.equal(err.file, server.url);
      assert.match(err.message, new RegExp(`model beit output logits is FP32 \\[-1,7\\], the local model.logits.onnx has FP32 \\[-1,${local.directory.config.numLabels}\\]`));
      return true;
    });
    assert.equal(infers(server).length, 0);
  });

  it('a wrong input datatype or rank, or a missing input, is refused naming the tensor', async () => {
    const fp16 = await serve({ metadata: (m) => void (m.inputs[0].datatype = 'FP16') });
    await assert.rejects(withRemote({ endpoint: fp16.url, modelName: 'beit' }, async () => undefined), /model beit input pixel_values is FP16 \[-1,3,224,224\], the local model.logits.onnx has FP32 \[-1,3,224,224\]/);
    const rank = await serve({ metadata: (m) => void (m.inputs[0].shape = [3, 224, 224]) });
    await assert.rejects(withRemote({ endpoint: rank.url, modelName: 'beit' }, async () => undefined), /input pixel_values is FP32 \[3,224,224\]/);
    const renamed = await serve({ metadata: (m) => void (m.inputs[0].name = 'images') });
    await assert.rejects(withRemote({ endpoint: renamed.url, modelName: 'beit' }, async () => undefined), /has no input pixel_values/);
  });

  it('a server that cuts the connection mid-batch is retried with backoff; nothing is lost', async () => {
    const server = await serve({ binary: true, dropInfers: 2 });
    await withRemote({ endpoint: server.url, modelName: 'beit', attempts: 3 }, async (remote) => assertEqualsLocal(await remote.classifyFiles(files, { batchSize: 6, topK: 5 })));
    assert.equal(infers(server).length, 3);
    assert.equal(server.answeredInfers().length, 1);
  });

  it('a cut connection on every attempt fails with the endpoint named and the attempts counted', async () => {
    const server = await serve({ dropInfers: 100 });
    await withRemote({ endpoint: server.url, modelName: 'beit', attempts: 2 }, async (remote) => {
      await assert.rejects(remote.classifyFiles(files.slice(0, 1)), (err: unknown) => {
        assert.ok(err instanceof BeitLensError);
        assert.equal(err.file, server.url);
        assert.match(err.message, /POST \/v2\/models\/beit\/infer failed: .*\(after 2 attempts\)/);
        return true;
      });
    });
    assert.equal(infers(server).length, 2);
  });

  it('401 and 403 are clear authentication errors, never retried', async () => {
    const server = await serve({ token: 'right' });
    await assert.rejects(withRemote({ endpoint: server.url, modelName: 'beit', token: '' }, async () => undefined), (err: unknown) => {
      assert.ok(err instanceof BeitLensError);
      assert.equal(err.file, server.url);
      assert.match(err.message, /authentication failed: GET \/v2\/health\/ready answered 401 Unauthorized: missing bearer token; no token was sent: set \$BEIT_LENS_ENDPOINT_TOKEN/);
      return true;
    });
    await assert.rejects(withRemote({ endpoint: server.url, modelName: 'beit', token: 'wrong' }, async () => undefined), /answered 403 Forbidden: token not accepted; the bearer token \(from \$BEIT_LENS_ENDPOINT_TOKEN\) was not accepted/);
    assert.equal(server.requests.length, 2);
    await withRemote({ endpoint: server.url, modelName: 'beit', token: 'right' }, async (remote) => assertEqualsLocal(await remote.classifyFiles(files, { topK: 5 })));
  });

  it('a model that is not ready is refused at connect with the server message', async () => {
    const server = await serve({ modelNotReady: true });
    await assert.rejects(withRemote({ endpoint: server.url, modelName: 'beit' }, async () => undefined), (err: unknown) => {
      assert.ok(err instanceof BeitLensError);
      assert.equal(err.file, server.url);
      assert.match(err.message, /model beit is not ready on the server \(GET \/v2\/models\/beit\/ready answered 400: model 'beit' is not ready\)/);
      return true;
    });
  });

  it('a slow server times out with an error naming the endpoint', async () => {
    const server = await serve({ inferDelayMs: 2000 });
    await withRemote({ endpoint: server.url, modelName: 'beit', timeoutSeconds: 0.4, attempts: 1 }, async (remote) => {
      await assert.rejects(remote.classifyFiles(files.slice(0, 1)), (err: unknown) => {
        assert.ok(err instanceof BeitLensError);
        assert.equal(err.code, 'NETWORK_TIMEOUT');
        assert.equal(err.file, server.url);
        assert.match(err.message, /POST \/v2\/models\/beit\/infer timed out: no answer within 0.4 s/);
        return true;
      });
    });
  });

  it("batches are sized to the server's max_batch_size (GET /v2/models/NAME/config)", async () => {
    const server = await serve({ binary: true, maxBatchSize: 2 });
    await withRemote({ endpoint: server.url, modelName: 'beit' }, async (remote) => assertEqualsLocal(await remote.classifyFiles(files, { batchSize: 6, topK: 5 })));
    assert.deepEqual(infers(server).map((r) => r.batch), [2, 2, 2]);
    assert.ok(server.requests.some((r) => r.path === '/v2/models/beit/config'));
  });

  it('request ids are sent, unique, and an answer to another id is refused', async () => {
    const server = await serve({ binary: true });
    await withRemote({ endpoint: server.url, modelName: 'beit' }, async (remote) => void (await remote.classifyFiles(files, { batchSize: 2 })));
    const ids = infers(server).map((r) => r.id);
    assert.equal(ids.length, 3);
    assert.ok(ids.every((id) => typeof id === 'string' && id.startsWith('beit-lens-')));
    assert.equal(new Set(ids).size, ids.length);
    const liar = await serve({ binary: true, wrongId: true });
    await withRemote({ endpoint: liar.url, modelName: 'beit' }, async (remote) => {
      await assert.rejects(remote.classifyFiles(files.slice(0, 1)), /the server answered request "some-other-request" to request beit-lens-/);
    });
  });

  it('two endpoints share the batches; one killed mid-run has its batches answered by the other, each image once', async () => {
    const a = await serve({ binary: true, dieAfterInfers: 1 });
    const b = await serve({ binary: true });
    await withRemote({ endpoint: [a.url, b.url], modelName: 'beit', attempts: 2 }, async (remote, sessions) => {
      assertEqualsLocal(await remote.classifyFiles(files, { batchSize: 2, topK: 5 }));
      const stats = sessions.endpointStats();
      assert.equal(stats[0].endpoint, a.url);
      assert.match(stats[0].failure ?? '', /POST \/v2\/models\/beit\/infer failed/);
      assert.equal(stats[1].failure, undefined);
      assert.equal(stats[0].images + stats[1].images, files.length);
    });
    const answered = [...a.answeredInfers(), ...b.answeredInfers()];
    assert.equal(answered.reduce((sum, r) => sum + r.batch!, 0), files.length);
    assert.equal(a.answeredInfers().length, 1);
  });
});

describe('KServe v2 remote session over https with a custom CA (--ca)', () => {
  let dir: string;
  let local: BeitModel;
  let server: V2TestServer;
  let caFile: string;

  before(async () => {
    dir = await convertedTinyModel();
    local = await BeitModel.load(dir, { provider: 'cpu', verifier: false });
    const certs = await tempDir('beit-ca-');
    const key = path.join(certs, 'key.pem');
    caFile = path.join(certs, 'cert.pem');
    // A self-signed certificate for 127.0.0.1: it is its own CA.
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', caFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    server = await startV2Server({ modelName: 'beit', modelFile: local.directory.classifyModel, binary: true, tls: { key: await readFile(key, 'utf8'), cert: await readFile(caFile, 'utf8') } });
  });
  after(async () => {
    await local.dispose();
    await server.close();
  });

  it('classifies over https when the CA is given, equal to the local session within 1e-4', async () => {
    const sessions = new RemoteSessionFactory({ endpoint: server.url, modelName: 'beit', caFile });
    const remote = await BeitModel.load(dir, { verifier: false, sessions });
    try {
      const got = await remote.classifyFiles(files, { topK: 5 });
      const ref = await local.classifyFiles(files, { topK: 5 });
      got.forEach((r, i) => assert.ok(maxAbsDiff(r.top!.map((p) => p.score), ref[i].top!.map((p) => p.score)) <= 1e-4));
    } finally {
      await remote.dispose();
    }
    assert.ok(server.requests.some((r) => r.path === '/v2/models/beit/infer'));
  });

  it('without the CA the self-signed server is refused, naming the endpoint', async () => {
    const sessions = new RemoteSessionFactory({ endpoint: server.url, modelName: 'beit', attempts: 1 });
    await assert.rejects(BeitModel.load(dir, { verifier: false, sessions }), (err: unknown) => {
      assert.ok(err instanceof BeitLensError);
      assert.equal(err.file, server.url);
      assert.match(err.message, /GET \/v2\/health\/ready failed: .*self[- ]signed certificate/);
      return true;
    });
    await sessions.close();
  });

  it('a --ca file that is missing or not a certificate is refused naming the file', async () => {
    const notPem = path.join(await tempDir('beit-ca-bad-'), 'ca.pem');
    await writeFile(notPem, 'not a certificate\n');
    for (const [file, message] of [
      [notPem, /the --ca file is not a PEM certificate/],
      [notPem + '.missing', /cannot read the --ca file/],
    ] as const) {
      const sessions = new RemoteSessionFactory({ endpoint: server.url, modelName: 'beit', caFile: file });
      await assert.rejects(BeitModel.load(dir, { verifier: false, sessions }), (err: unknown) => {
        assert.ok(err instanceof BeitLensError);
        assert.equal(err.file, file);
        assert.match(err.message, message);
        return true;
      });
      await sessions.close();
    }
  });
});
