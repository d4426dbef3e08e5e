import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { BeitLensError, type ErrorCode } from '../../src/core/errors';
import { defaultCacheDir, downloadModel, type DownloadModelOptions, type DownloadProgress } from '../../src/core/hub';
import { loadModelRegistry } from '../../src/core/modelRegistry';
import { startFakeHub, type FakeHub, type FakeHubOptions, type FakeRepoFile } from '../helpers/fakeHub';
import { FUZZ_SEED } from '../helpers/fuzz';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'beit-tiny');
const MODEL_ID = 'microsoft/beit-base-patch16-224-pt22k-ft22k';
const BIN = 'pytorch_model.bin';
const OFFLINE_HINT = '(offline?): run `beit-lens convert --from test/fixtures/beit-tiny --out models/beit-tiny` to try the pipeline on the bundled tiny model';
const LIMITS = { timeout: 30_000 };

const fixtureBytes = new Map<string, Buffer>();
async function fixture(name: string): Promise<Buffer> {
  if (!fixtureBytes.has(name)) fixtureBytes.set(name, await readFile(path.join(FIXTURE, name)));
  return fixtureBytes.get(name)!;
}

/** The files of the official checkpoint's main branch: two small git files and LFS pytorch weights. */
async function officialFiles(): Promise<FakeRepoFile[]> {
  return [
    { path: 'config.json', content: await fixture('config.json'), lfs: false },
    { path: 'preprocessor_config.json', content: await fixture('preprocessor_config.json'), lfs: false },
    { path: BIN, content: await fixture(BIN), lfs: true },
  ];
}

async function setup(t: TestContext, hubOptions: Partial<FakeHubOptions> = {}) {
  const hub = await startFakeHub({ repoId: MODEL_ID, files: await officialFiles(), ...hubOptions });
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'beit-lens-hub-'));
  t.after(async () => {
    await hub.close();
    await rm(cacheDir, { recursive: true, force: true });
  });
  const download = (extra: Partial<DownloadModelOptions> = {}) =>
    downloadModel({ modelId: MODEL_ID, cacheDir, endpoint: hub.url, ...extra });
  const cachedDir = path.join(cacheDir, 'microsoft--beit-base-patch16-224-pt22k-ft22k', hub.commit);
  return { hub, cacheDir, cachedDir, download };
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<BeitLensError> {
  let caught: unknown;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof BeitLensError, `expected a BeitLensError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Tests must not pick up a developer's real hub settings. */
const SCRUBBED_ENV = ['HF_TOKEN', 'HF_ENDPOINT', 'BEIT_LENS_CACHE'] as const;
const savedEnv: Partial<Record<(typeof SCRUBBED_ENV)[number], string>> = {};
before(() => {
  for (const name of SCRUBBED_ENV) {
    savedEnv[name] = process.env[name];
    delete process.env[name];
  }
});
after(() => {
  for (const name of SCRUBBED_ENV) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
});

describe('downloadModel', () => {
  test('fetches config, preprocessor config and pytorch_model.bin byte-identical into <owner>--<name>/<commit>', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    const progress: DownloadProgress[] = [];

    const result = await download({ onProgress: (p) => progress.push(p) });

    assert.deepEqual(result, {
      dir: cachedDir,
      files: ['config.json', 'preprocessor_config.json', BIN],
      weights: BIN,
      commit: hub.commit,
    });
    for (const file of result.files) {
      assert.ok((await readFile(path.join(result.dir, file))).equals(await fixture(file)), `${file} differs from the fixture`);
    }
    assert.deepEqual((await readdir(result.dir)).sort(), [...result.files].sort(), 'no temporary files left behind');

    const binSize = (await fixture(BIN)).length;
    const binProgress = progress.filter((p) => p.file === BIN);
    assert.ok(binProgress.length > 2, 'progress reported while the weights arrive');
    assert.ok(binProgress.every((p) => p.total === binSize));
    assert.ok(binProgress.every((p, i) => i === 0 || p.received >= binProgress[i - 1].received), 'progress never goes back');
    assert.equal(binProgress.at(-1)!.received, binSize);
    assert.deepEqual(new Set(progress.map((p) => p.file)), new Set(result.files));

    assert.equal(hub.transfers(BIN).length, 1);
    assert.equal(hub.transfers(BIN)[0].headers.range, undefined, 'a fresh download asks for the whole file');
  });

  test('reuses verified cached files without transferring them again', LIMITS, async (t) => {
    const { hub, download } = await setup(t);
    const first = await download();
    const transfersBefore = hub.requests.filter((r) => r.kind === 'transfer').length;

    const second = await download();

    assert.deepEqual(second, first);
    assert.equal(hub.requests.filter((r) => r.kind === 'transfer').length, transfersBefore);
  });

  test('prefers model.safetensors when the revision has it', LIMITS, async (t) => {
    const files = [...(await officialFiles()), { path: 'model.safetensors', content: await fixture('model.safetensors'), lfs: true }];
    const { hub, download } = await setup(t, { files });

    const result = await download();

    assert.equal(result.weights, 'model.safetensors');
    assert.deepEqual(result.files, ['config.json', 'preprocessor_config.json', 'model.safetensors']);
    assert.ok((await readFile(path.join(result.dir, 'model.safetensors'))).equals(await fixture('model.safetensors')));
    assert.ok(!hub.requests.some((r) => r.file === BIN), 'pytorch_model.bin not fetched');
  });

  test('resumes a download cut off halfway with a Range request on the next run', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    const binSize = (await fixture(BIN)).length;
    const half = Math.floor(binSize / 2);
    hub.faults.cutAt.set(BIN, [half]);

    await rejectsWith(download({ retries: 0 }), 'DOWNLOAD_FAILED', /connection lost after \d+ of \d+ bytes.*run again to resume/);
    const kept = (await stat(path.join(cachedDir, `${BIN}.partial`))).size;
    assert.ok(kept > 0 && kept <= half, `partial file kept (${kept} bytes)`);
    assert.ok(!(await exists(path.join(cachedDir, BIN))), 'nothing unverified in the cache');

    const progress: DownloadProgress[] = [];
    const result = await download({ retries: 0, onProgress: (p) => progress.push(p) });

    const [firstTry, resume] = hub.transfers(BIN);
    assert.equal(firstTry.headers.range, undefined);
    assert.equal(resume.headers.range, `bytes=${kept}-`);
    assert.equal(resume.status, 206);
    assert.equal(progress.find((p) => p.file === BIN)!.received, kept, 'progress starts from the kept bytes');
    assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)));
    assert.ok(!(await exists(path.join(cachedDir, `${BIN}.partial`))));
  });

  test('connections dropped at random offsets are resumed within one call into an identical file', LIMITS, async (t) => {
    const expected = await fixture(BIN);
    const hub = await startFakeHub({ repoId: MODEL_ID, files: await officialFiles() });
    t.after(() => hub.close());
    let downloads = 0;
    let drops = 0;

    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: expected.length - 1 }), { minLength: 1, maxLength: 3 }), async (offsets) => {
        const cuts = [...offsets].sort((a, b) => a - b);
        const cacheDir = await mkdtemp(path.join(tmpdir(), 'beit-lens-hub-'));
        try {
          const seen = hub.transfers(BIN).length;
          hub.faults.cutAt.set(BIN, [...cuts]);

          const result = await downloadModel({ modelId: MODEL_ID, cacheDir, endpoint: hub.url, retries: cuts.length });
          downloads++;
          drops += cuts.length;

          assert.ok((await readFile(path.join(result.dir, BIN))).equals(expected));
          const transfers = hub.transfers(BIN).slice(seen);
          assert.equal(transfers.length, cuts.length + 1, 'one resume per dropped connection');
          assert.equal(transfers[0].headers.range, undefined);
          // Each resume starts where the kept bytes end: after the previous resume point and no
          // later than the drop (bytes in flight when a connection breaks may be lost).
          let previousStart = 0;
          transfers.slice(1).forEach((resume, i) => {
            const start = resume.headers.range === undefined ? 0 : Number(/^bytes=(\d+)-$/.exec(resume.headers.range)![1]);
            assert.ok(start >= previousStart && start <= cuts[i], `resume ${i + 1} at ${start}, drop at ${cuts[i]}`);
            assert.equal(resume.status, start > 0 ? 206 : 200);
            previousStart = start;
          });
        } finally {
          await rm(cacheDir, { recursive: true, force: true });
        }
      }),
      // A fixed seed, so the offsets (and the README's count of them) are the same on every run.
      { numRuns: 5, seed: FUZZ_SEED },
    );
    t.diagnostic(`interrupted downloads: ${drops} connections dropped at random offsets over ${downloads} downloads, every file resumed byte-identical`);
  });

  test('gives up after `retries` resumes and keeps what arrived', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    hub.faults.cutAt.set(BIN, [100_000, 200_000, 300_000]);

    const err = await rejectsWith(download({ retries: 2 }), 'DOWNLOAD_FAILED', /connection lost after \d+ of/);
    assert.equal(hub.transfers(BIN).length, 3);
    const kept = (await stat(path.join(cachedDir, `${BIN}.partial`))).size;
    assert.ok(kept > 0 && kept <= 300_000);
    assert.match(err.message, new RegExp(`after ${kept} of`), 'the message reports what is kept');
  });

  test('restarts cleanly when the server answers a Range request with the whole file', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    hub.faults.cutAt.set(BIN, [Math.floor((await fixture(BIN)).length / 2)]);
    await rejectsWith(download({ retries: 0 }), 'DOWNLOAD_FAILED');
    const kept = (await stat(path.join(cachedDir, `${BIN}.partial`))).size;
    assert.ok(kept > 0);
    hub.faults.ignoreRange.add(BIN);

    const result = await download();

    const resume = hub.transfers(BIN)[1];
    assert.equal(resume.headers.range, `bytes=${kept}-`);
    assert.equal(resume.status, 200);
    assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)), 'not appended to the partial');
  });

  test('corrupted LFS bytes fail with INTEGRITY, leave nothing in the cache, and a re-run re-fetches', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    hub.faults.corrupt.add(BIN);

    await rejectsWith(download(), 'INTEGRITY', /pytorch_model\.bin: .*sha256 [0-9a-f]{64}.*run again/);
    assert.deepEqual((await readdir(cachedDir)).sort(), ['config.json', 'preprocessor_config.json'], 'neither the file nor its partial');

    hub.faults.corrupt.clear();
    const result = await download();
    assert.equal(hub.transfers(BIN).length, 2);
    assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)));
  });

  test('small non-LFS files are checked against their git blob sha1', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    hub.faults.corrupt.add('config.json');

    await rejectsWith(download(), 'INTEGRITY', /config\.json: .*git-blob-sha1/);
    assert.deepEqual(await readdir(cachedDir), []);
  });

  test('a cached file that no longer matches its checksum is detected and re-fetched', LIMITS, async (t) => {
    const { hub, download } = await setup(t);
    const { dir } = await download();
    const damaged = await readFile(path.join(dir, BIN));
    damaged[12345] ^= 0x01; // same size, different content: only the hash can tell
    await writeFile(path.join(dir, BIN), damaged);
    await truncate(path.join(dir, 'config.json'), 10);

    await download();

    assert.equal(hub.transfers(BIN).length, 2);
    assert.equal(hub.transfers('config.json').length, 2);
    assert.equal(hub.transfers('preprocessor_config.json').length, 1, 'intact files are not fetched again');
    assert.ok((await readFile(path.join(dir, BIN))).equals(await fixture(BIN)));
    assert.ok((await readFile(path.join(dir, 'config.json'))).equals(await fixture('config.json')));
  });

  test('an AbortSignal cancels with CANCELLED, keeps the partial file, and the next run resumes it', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    const binSize = (await fixture(BIN)).length;
    hub.faults.chunkDelayMs = 5;
    const controller = new AbortController();

    await rejectsWith(
      download({
        signal: controller.signal,
        onProgress: (p) => {
          if (p.file === BIN && p.received > 0) controller.abort();
        },
      }),
      'CANCELLED',
    );

    const kept = (await stat(path.join(cachedDir, `${BIN}.partial`))).size;
    assert.ok(kept > 0 && kept < binSize, `partial holds ${kept} of ${binSize} bytes`);
    assert.ok(!(await exists(path.join(cachedDir, BIN))));

    hub.faults.chunkDelayMs = 0;
    const result = await download();
    assert.equal(hub.transfers(BIN).at(-1)!.headers.range, `bytes=${kept}-`);
    assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)));
  });

  test('an already aborted signal cancels before any request', LIMITS, async (t) => {
    const { hub, download } = await setup(t);
    await rejectsWith(download({ signal: AbortSignal.abort() }), 'CANCELLED');
    assert.equal(hub.requests.length, 0);
  });

  test('rejects endpoints that are not https unless loopback, before any request', LIMITS, async (t) => {
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'beit-lens-hub-'));
    t.after(() => rm(cacheDir, { recursive: true, force: true }));
    let calls = 0;
    const countingFetch: typeof fetch = async () => {
      calls++;
      throw new Error('must not be called');
    };

    for (const endpoint of ['http://huggingface.co', 'http://10.0.0.1:8080', 'ftp://127.0.0.1/', 'huggingface.co']) {
      await rejectsWith(downloadModel({ modelId: MODEL_ID, cacheDir, endpoint, fetch: countingFetch }), 'DOWNLOAD_FAILED', /https|not a URL/);
    }
    process.env.HF_ENDPOINT = 'http://mirror.example';
    try {
      await rejectsWith(downloadModel({ modelId: MODEL_ID, cacheDir, fetch: countingFetch }), 'DOWNLOAD_FAILED', /http:\/\/mirror\.example.*https/);
    } finally {
      delete process.env.HF_ENDPOINT;
    }
    assert.equal(calls, 0);
  });

  test('rejects a redirect away from https', LIMITS, async (t) => {
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'beit-lens-hub-'));
    t.after(() => rm(cacheDir, { recursive: true, force: true }));
    const redirectedFetch: typeof fetch = async () => {
      const response = new Response('{}', { status: 200, headers: { 'Content-Type': 'application/json' } });
      Object.defineProperty(response, 'url', { value: 'http://mirror.example/api/models/x' });
      return response;
    };

    await rejectsWith(
      downloadModel({ modelId: MODEL_ID, cacheDir, endpoint: 'https://hub.example', fetch: redirectedFetch }),
      'DOWNLOAD_FAILED',
      /redirected to http:\/\/mirror\.example, which is not https/,
    );
  });

  test('sends HF_TOKEN as an Authorization Bearer header, and explains a 401 without it', LIMITS, async (t) => {
    const token = 'hf_fakeTokenForTests';
    const { hub, download } = await setup(t, { requiredToken: token });

    await rejectsWith(download(), 'DOWNLOAD_FAILED', /refused access .*HTTP 401.*HF_TOKEN/);

    process.env.HF_TOKEN = token;
    try {
      const result = await download();
      assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)));
    } finally {
      delete process.env.HF_TOKEN;
    }
    const authorized = hub.requests.filter((r) => r.status < 400);
    assert.ok(authorized.some((r) => r.kind === 'api') && authorized.some((r) => r.kind === 'transfer'));
    for (const request of authorized) assert.equal(request.headers.authorization, `Bearer ${token}`, request.url);
  });

  test('an unreachable endpoint gives the one-line offline message', LIMITS, async (t) => {
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'beit-lens-hub-'));
    t.after(() => rm(cacheDir, { recursive: true, force: true }));
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const endpoint = `http://127.0.0.1:${closedPort}`;

    const refused = await rejectsWith(downloadModel({ modelId: MODEL_ID, cacheDir, endpoint }), 'DOWNLOAD_FAILED');
    assert.equal(refused.message, `could not reach ${endpoint} ${OFFLINE_HINT}`);

    const dnsFailure: typeof fetch = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND huggingface.co'), { code: 'ENOTFOUND' }) });
    };
    const noDns = await rejectsWith(downloadModel({ modelId: MODEL_ID, cacheDir, fetch: dnsFailure }), 'DOWNLOAD_FAILED');
    assert.equal(noDns.message, `could not reach https://huggingface.co ${OFFLINE_HINT}`);
    assert.ok(!noDns.message.includes('\n'));
  });

  test('downloads Xet-backed weights over plain HTTP', LIMITS, async (t) => {
    const { hub, download } = await setup(t, { xet: true });

    const result = await download();

    assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)));
    assert.ok(hub.requests.some((r) => r.file === BIN && r.kind === 'probe' && r.status === 200), 'the probe got Xet file info');
    assert.ok(!hub.requests.some((r) => r.kind === 'xet'), 'no Xet protocol requests');
  });

  test('reports an unknown revision or model, and refuses ids that could escape the cache', LIMITS, async (t) => {
    const { download } = await setup(t);
    await rejectsWith(download({ revision: 'no-such-branch' }), 'DOWNLOAD_FAILED', /@no-such-branch: .*HTTP 404: Invalid rev id/);
    await rejectsWith(download({ modelId: 'someone/else' }), 'DOWNLOAD_FAILED', /HTTP 404: Repository not found/);
    for (const modelId of ['../etc', 'owner/..', 'no-slash', 'a/b/c']) {
      await rejectsWith(download({ modelId }), 'DOWNLOAD_FAILED', /owner\/name/);
    }
  });
});

describe('defaultCacheDir', () => {
  test('uses BEIT_LENS_CACHE, else ~/.cache/beit-lens', () => {
    process.env.BEIT_LENS_CACHE = '/tmp/somewhere';
    try {
      assert.equal(defaultCacheDir(), '/tmp/somewhere');
    } finally {
      delete process.env.BEIT_LENS_CACHE;
    }
    assert.equal(defaultCacheDir(), path.join(homedir(), '.cache', 'beit-lens'));
  });
});

describe('loadModelRegistry', () => {
  test('describes the official checkpoint without invented checksums', () => {
    const registry = loadModelRegistry();
    const beit = registry.models.find((m) => m.id === MODEL_ID);
    assert.ok(beit);
    assert.equal(beit.license, 'apache-2.0');
    assert.equal(beit.num_labels, 21841);
    assert.equal(beit.revision, 'main');
    assert.deepEqual(
      beit.files.map((f) => [f.path, f.role, f.lfs]),
      [
        ['config.json', 'config', false],
        ['preprocessor_config.json', 'preprocessor', false],
        [BIN, 'weights', true],
      ],
    );
    for (const file of beit.files) {
      if (file.sha256 === null) assert.ok(file.comment, `${file.path} explains where its checksum comes from`);
    }
  });

  test('rejects a malformed registry with CONFIG_INVALID', () => {
    const registry = structuredClone(loadModelRegistry());
    registry.models[0].files[2].sha256 = 'not-a-hash';
    assert.throws(
      () => loadModelRegistry(registry),
      (err) => err instanceof BeitLensError && err.code === 'CONFIG_INVALID' && /models\.0\.files\.2\.sha256/.test(err.message),
    );
  });
});
