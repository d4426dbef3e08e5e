import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BeitModel } from '../../src/core/beitModel';
import { BeitLensError } from '../../src/core/errors';
import { RemoteSessionFactory } from '../../src/core/remote/v2Client';
import { convertedTinyModel, expected, FIXTURE_DIR, maxAbsDiff } from '../helpers/fixtures';
import { startV2Server, V2TestServer } from '../helpers/v2Server';

const files = expected.images.slice(0, 3).map((i: any) => path.join(FIXTURE_DIR, i.file));

describe('KServe v2 remote session (JSON tensors) against the independent test server', () => {
  let dir: string;
  let local: BeitModel;
  let server: V2TestServer;

  before(async () => {
    dir = await convertedTinyModel();
    local = await BeitModel.load(dir, { provider: 'cpu', verifier: false });
    server = await startV2Server({ modelName: 'beit', modelFile: local.directory.classifyModel });
  });
  after(async () => {
    await local.dispose();
    await server.close();
  });

  it('classifies and embeds equal to the local session within 1e-4, with the bearer token sent', async () => {
    const sessions = new RemoteSessionFactory({ endpoint: server.url, modelName: 'beit', token: 'secret-token' });
    const remote = await BeitModel.load(dir, { verifier: false, sessions });
    try {
      const want = await local.classifyFiles(files, { batchSize: 2, topK: 5 });
      const got = await remote.classifyFiles(files, { batchSize: 2, topK: 5 });
      assert.equal(got.length, files.length);
      got.forEach((r, i) => {
        assert.equal(r.error, undefined);
        assert.deepEqual(r.top!.map((p) => p.index), want[i].top!.map((p) => p.index));
        assert.ok(maxAbsDiff(r.top!.map((p) => p.score), want[i].top!.map((p) => p.score)) <= 1e-4);
      });
      const [e] = await remote.embedFiles(files.slice(0, 1));
      const [le] = await local.embedFiles(files.slice(0, 1));
      assert.ok(maxAbsDiff(e.embedding!, le.embedding!) <= 1e-4);
      assert.ok(server.requests.some((r) => r.path === '/v2/health/ready'));
      assert.ok(server.requests.some((r) => r.path === '/v2/models/beit'));
      assert.ok(server.requests.filter((r) => r.path === '/v2/models/beit/infer').every((r) => r.authorization === 'Bearer secret-token'));
    } finally {
      await remote.dispose();
      await sessions.close();
    }
  });

  it('a model name the server does not have is refused at connect, naming the endpoint and showing the server error', async () => {
    const sessions = new RemoteSessionFactory({ endpoint: server.url, modelName: 'missing' });
    await assert.rejects(BeitModel.load(dir, { verifier: false, sessions }), (err: unknown) => {
      assert.ok(err instanceof BeitLensError);
      assert.equal(err.code, 'REMOTE_FAILED');
      assert.match(err.message, /GET \/v2\/models\/missing answered 404: no route GET \/v2\/models\/missing/);
      assert.equal(err.file, server.url);
      return true;
    });
    await sessions.close();
  });

  it("a 400 is not retried and shows the server's error message", async () => {
    const failing = await startV2Server({ modelName: 'beit', modelFile: local.directory.classifyModel, failInfer: { status: 400, error: 'input pixel_values: bad shape' } });
    const sessions = new RemoteSessionFactory({ endpoint: failing.url, modelName: 'beit', attempts: 3 });
    const remote = await BeitModel.load(dir, { verifier: false, sessions });
    try {
      await assert.rejects(remote.classifyFiles(files.slice(0, 1)), /POST \/v2\/models\/beit\/infer answered 400: input pixel_values: bad shape/);
      assert.equal(failing.requests.filter((q) => q.path.endsWith('/infer')).length, 1);
    } finally {
      await remote.dispose();
      await sessions.close();
      await failing.close();
    }
  });

  it('a 503 is retried the given number of times, then reported', async () => {
    const failing = await startV2Server({ modelName: 'beit', modelFile: local.directory.classifyModel, failInfer: { status: 503, error: 'overloaded' } });
    const sessions = new RemoteSessionFactory({ endpoint: failing.url, modelName: 'beit', attempts: 2 });
    const remote = await BeitModel.load(dir, { verifier: false, sessions });
    try {
      await assert.rejects(remote.classifyFiles(files.slice(0, 1)), /answered 503: overloaded \(after 2 attempts\)/);
      assert.equal(failing.requests.filter((q) => q.path.endsWith('/infer')).length, 2);
    } finally {
      await remote.dispose();
      await sessions.close();
      await failing.close();
    }
  });

  it('a server that never answers times out instead of hanging', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const sessions = new RemoteSessionFactory({ endpoint: url, modelName: 'beit', timeoutSeconds: 0.3, attempts: 1 });
    try {
      await assert.rejects(BeitModel.load(dir, { verifier: false, sessions }), (err: unknown) => {
        assert.ok(err instanceof BeitLensError);
        assert.equal(err.code, 'NETWORK_TIMEOUT');
        assert.equal(err.file, url);
        assert.match(err.message, /GET \/v2\/health\/ready timed out: no answer within 0.3 s/);
        return true;
      });
    } finally {
      await sessions.close();
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('the CLI classifies through --endpoint/--remote-model equal to the local session within 1e-4; explain on a logits-only server is refused', async () => {
    const cliArgs = (args: string[]) => ['--import', 'tsx', path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts'), ...args];
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, cliArgs(['classify', '--model', dir, '--endpoint', server.url, '--remote-model', 'beit', '--json', ...files]), { timeout: 120_000 });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    const want = await local.classifyFiles(files, { topK: 5 });
    assert.equal(lines.length, files.length);
    lines.forEach((l, i) => {
      assert.equal(l.image, files[i]);
      assert.ok(maxAbsDiff(l.top.map((p: any) => p.score), want[i].top!.map((p) => p.score)) <= 1e-4);
    });
    const refused = await run(process.execPath, cliArgs(['explain', '--model', dir, '--endpoint', server.url, '--remote-model', 'beit', files[0]]), { timeout: 120_000 }).then(
      () => undefined,
      (err: { stderr?: string; code?: number }) => err,
    );
    assert.ok(refused && refused.code !== 0);
    assert.match(refused.stderr ?? '', /missing output attentions/);
  });

  it('an endpoint that is not an http(s) URL is refused', () => {
    assert.throws(() => new RemoteSessionFactory({ endpoint: 'ftp://host', modelName: 'beit' }), /must be an http or https URL/);
  });
});
