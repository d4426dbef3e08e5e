import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BeitModel } from '../../src/core/beitModel';
import { convertedTinyModel, FIXTURE_IMAGES, maxAbsDiff } from '../helpers/fixtures';
import { startV2Server, V2TestServer } from '../helpers/v2Server';
import { endpointSummaryLines, remoteSessions } from '../../src/cli/remoteOptions';

const run = promisify(execFile);
const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts'), ...args], { timeout: 120_000 });
const rows = (stdout: string) => new Map(stdout.trim().split('\n').map((l) => JSON.parse(l)).map((r: any) => [r.path ?? r.image, r]));

describe('scan --endpoint A --endpoint B', () => {
  let dir: string;
  let a: V2TestServer;
  let b: V2TestServer;

  before(async () => {
    dir = await convertedTinyModel();
    const local = await BeitModel.load(dir, { provider: 'cpu', verifier: false });
    const modelFile = local.directory.classifyModel;
    await local.dispose();
    // A answers one request, then dies: its later chunks must be answered by B.
    a = await startV2Server({ modelName: 'beit', modelFile, binary: true, dieAfterInfers: 1 });
    b = await startV2Server({ modelName: 'beit', modelFile, binary: true });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('with one endpoint killed mid-scan answers every image once, equal to a local scan, with throughput per endpoint', async () => {
    const common = ['scan', '--model', dir, '--no-cache', '--batch', '2', FIXTURE_IMAGES];
    const want = rows((await cli(common)).stdout);
    const remote = await cli([...common, '--endpoint', a.url, '--endpoint', b.url, '--remote-model', 'beit']);
    const got = rows(remote.stdout);
    assert.equal(want.size, 6);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [key, r] of got) {
      const w = want.get(key);
      assert.deepEqual(r.top.map((p: any) => p.index), w.top.map((p: any) => p.index));
      assert.ok(maxAbsDiff(r.top.map((p: any) => p.score), w.top.map((p: any) => p.score)) <= 1e-4);
    }
    const answered = [...a.answeredInfers(), ...b.answeredInfers()];
    assert.equal(answered.reduce((sum, r) => sum + r.batch!, 0), 6);
    assert.equal(a.answeredInfers().length, 1);
    const aImages = a.answeredInfers()[0].batch!;
    assert.match(remote.stderr, new RegExp(`endpoint ${a.url}: ${aImages} images in 1 requests \\([0-9.]+ images/s\\); failed, its batches went to the others`));
    assert.match(remote.stderr, new RegExp(`endpoint ${b.url}: ${6 - aImages} images in ${b.answeredInfers().length} requests \\([0-9.]+ images/s\\)\\n`));
  });
});

describe('remote flags', () => {
  it('refuses --endpoint without --remote-model, --remote-model without --endpoint, and --ca without --endpoint', () => {
    assert.throws(() => remoteSessions({ endpoint: ['http://127.0.0.1:1'] }), /--endpoint and --remote-model go together/);
    assert.throws(() => remoteSessions({ endpoint: [], remoteModel: 'beit' }), /--endpoint and --remote-model go together/);
    assert.throws(() => remoteSessions({ endpoint: [], ca: 'ca.pem' }), /--ca is for https endpoints/);
    assert.equal(remoteSessions({ endpoint: [] }), undefined);
  });

  it('refuses the same endpoint twice, naming it', () => {
    assert.throws(() => remoteSessions({ endpoint: ['http://127.0.0.1:1/', 'http://127.0.0.1:1'], remoteModel: 'beit' }), /endpoint http:\/\/127\.0\.0\.1:1 is given twice/);
  });

  it('summarises each endpoint with its throughput over the run', () => {
    const lines = endpointSummaryLines(
      [
        { endpoint: 'http://a:8000', images: 30, requests: 4 },
        { endpoint: 'http://b:8000', images: 10, requests: 2, failure: 'POST /v2/models/beit/infer failed' },
      ],
      4,
    );
    assert.deepEqual(lines, [
      'endpoint http://a:8000: 30 images in 4 requests (7.5 images/s)',
      'endpoint http://b:8000: 10 images in 2 requests (2.5 images/s); failed, its batches went to the others: POST /v2/models/beit/infer failed',
    ]);
  });
});
