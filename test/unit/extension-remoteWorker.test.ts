/**
 * beitLens.endpoint through the real inference worker: the load message's remote target makes the worker build its
 * sessions from the KServe v2 client, with the token from SecretStorage as the bearer token. Checked against the
 * independent v2 test server (test/helpers/v2Server.ts) running the same graph, and against the local session.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { ENDPOINT_TOKEN_ENV } from '../../src/core/remote/v2Client';
import { InferenceClient } from '../../src/extension/inference/inferenceClient';
import { silentLogger } from '../../src/extension/util/logger';
import type { LoadModelArgs } from '../../src/extension/worker/workerProtocol';
import { convertedTinyModel, FIXTURE_IMAGES } from '../helpers/fixtures';
import { startV2Server, V2TestServer } from '../helpers/v2Server';

const root = path.resolve(__dirname, '../..');
const TOKEN = 'secret-from-the-keychain';
const images = readdirSync(FIXTURE_IMAGES).filter((f) => /\.(png|jpe?g)$/i.test(f)).map((f) => path.join(FIXTURE_IMAGES, f));

describe('the worker with beitLens.endpoint', () => {
  let modelDir: string;
  let local: BeitModel;
  let server: V2TestServer;
  let client: InferenceClient;
  const args = (remote: LoadModelArgs['remote']): LoadModelArgs => ({ source: { kind: 'folder', dir: modelDir }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true }, remote });

  before(async () => {
    modelDir = await convertedTinyModel();
    local = await BeitModel.load(modelDir, { provider: 'cpu', verifier: false });
    server = await startV2Server({ modelName: 'beit', modelFile: local.directory.classifyModel, binary: true, token: TOKEN });
    // The CLI's variable, set where the worker inherits it: the extension must not send it.
    process.env[ENDPOINT_TOKEN_ENV] = TOKEN;
    client = new InferenceClient({ workerScript: path.join(root, 'src/extension/worker/inferenceWorker.ts'), execArgv: ['--import', 'tsx'], log: silentLogger });
  });
  after(async () => {
    delete process.env[ENDPOINT_TOKEN_ENV];
    await client?.dispose();
    await server?.close();
    await local?.dispose();
  });

  it('classifies on the endpoint with the stored token, equal to the local session within 1e-4', async () => {
    const state = await client.setModel(args({ endpoints: [server.url], modelName: 'beit', token: TOKEN }));
    assert.equal(state.kind, 'ready', JSON.stringify(state));
    assert.deepEqual(client.model?.remote, { endpoints: [server.url], modelName: 'beit' });
    assert.equal(JSON.stringify(client.model).includes(TOKEN), false, 'the token does not come back from the worker');
    assert.ok(images.length >= 3, 'fixture images');
    for (const image of images) {
      const numLabels = local.labels.length;
      const want = await local.classify(image, numLabels);
      const got = await client.call('classify', { file: image, topK: numLabels });
      assert.equal(got.length, want.length);
      const byIndex = new Map(got.map((p) => [p.index, p.score]));
      for (const p of want) {
        const score = byIndex.get(p.index);
        assert.ok(score !== undefined && Math.abs(score - p.score) <= 1e-4, `${path.basename(image)} ${p.label}: remote ${score}, local ${p.score}`);
      }
      assert.equal(got[0].index, want[0].index);
    }
    const infers = server.answeredInfers();
    assert.equal(infers.length, images.length, 'every classification went to the endpoint');
    assert.ok(server.requests.length > infers.length, 'health and metadata were asked first');
    for (const request of server.requests) assert.equal(request.authorization, `Bearer ${TOKEN}`, `${request.method} ${request.path}`);
    const info = await client.call('modelInfo', {});
    assert.deepEqual(info.remote, { endpoints: [server.url], modelName: 'beit' });
  });

  it('without a stored token fails the model naming the endpoint and the command that sets one, and sends no header', async () => {
    const before = server.requests.length;
    const state = await client.setModel(args({ endpoints: [server.url], modelName: 'beit' }));
    assert.equal(state.kind, 'failed');
    assert.ok(state.kind === 'failed' && state.message.startsWith(`${server.url}: authentication failed: GET /v2/health/ready answered 401 Unauthorized: missing bearer token`), JSON.stringify(state));
    assert.match(state.kind === 'failed' ? state.message : '', /no token was sent: run "BEiT Lens: Set Endpoint Token"/);
    const sent = server.requests.slice(before);
    assert.ok(sent.length >= 1);
    for (const request of sent) assert.equal(request.authorization, undefined, `$${ENDPOINT_TOKEN_ENV} in the worker's environment is not a token source for the extension`);
  });

  it('a wrong token says it was not accepted; an endpoint serving another model names it', async () => {
    const wrong = await client.setModel(args({ endpoints: [server.url], modelName: 'beit', token: 'old' }));
    assert.ok(wrong.kind === 'failed' && /answered 403 Forbidden: token not accepted; the bearer token \(from BEiT Lens: Set Endpoint Token\) was not accepted/.test(wrong.message), JSON.stringify(wrong));
    const other = await client.setModel(args({ endpoints: [server.url], modelName: 'resnet', token: TOKEN }));
    assert.ok(other.kind === 'failed' && other.message.startsWith(`${server.url}: `) && other.message.includes('resnet'), JSON.stringify(other));
  });

  it('back without an endpoint runs locally, and the worker no longer reports a remote target', async () => {
    const infers = server.answeredInfers().length;
    const state = await client.setModel(args(undefined));
    assert.equal(state.kind, 'ready');
    assert.equal(client.model?.remote, undefined);
    await client.call('classify', { file: images[0], topK: 3 });
    assert.equal(server.answeredInfers().length, infers);
    assert.equal((await client.call('modelInfo', {})).remote, undefined);
  });
});
