import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { BeitLensError, type ErrorCode } from '../../src/core/errors';
import { defaultCacheDir, downloadModel, downloadTimeoutSeconds, isAllowedHop, type DownloadModelOptions, type DownloadProgress } from '../../src/core/hub';
import { loadModelRegistry } from '../../src/core/modelRegistry';
import { ensureModel } from '../../src/core/modelStore';
import { startFakeHub, type FakeHub, type FakeHubOptions, type FakeRepoFile } from '../helpers/fakeHub';
import { FUZZ_SEED } from '../helpers/fuzz';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'beit-tiny');
const MODEL_ID = 'microsoft/beit-base-patch16-224-pt22k-ft22k';
const BIN = 'pytorch_model.bin';
const OFFLINE_HINT = '(offline?): run `node dist/cli.js convert --from test/fixtures/beit-tiny --out models/beit-tiny` to try the pipeline on the bundled tiny model';
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
const SCRUBBED_ENV = ['HF_TOKEN', 'HF_ENDPOINT', 'BEIT_LENS_CACHE', 'HF_HUB_DOWNLOAD_TIMEOUT'] as const;
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

/** A TCP server on `host` that accepts connections and never sends a byte; counts connections. */
async function silentServer(t: TestContext, host = '127.0.0.1'): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume(); // read the request, answer nothing
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as { port: number }).port, connections: () => connections };
}

async function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

async function tempCache(t: TestContext): Promise<string> {
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'beit-lens-hub-'));
  t.after(() => rm(cacheDir, { recursive: true, force: true }));
  return cacheDir;
}

/** How long `work` took to settle, and its outcome to assert on. */
async function timed<T>(work: Promise<T>): Promise<{ result: Promise<T>; seconds: number }> {
  const started = performance.now();
  const outcome = await work.then(
    (value) => () => Promise.resolve(value),
    (err: unknown) => () => Promise.reject(err),
  );
  return { result: outcome(), seconds: (performance.now() - started) / 1000 };
}

describe('network timeouts and redirects', () => {
  test('HF_HUB_DOWNLOAD_TIMEOUT is read as huggingface_hub reads it; invalid values are refused before any request', LIMITS, async (t) => {
    assert.equal(downloadTimeoutSeconds(undefined), 10);
    assert.equal(downloadTimeoutSeconds(''), 10);
    assert.equal(downloadTimeoutSeconds('10'), 10);
    assert.equal(downloadTimeoutSeconds(' 30 '), 30);
    assert.equal(downloadTimeoutSeconds('0.5'), 0.5);
    assert.equal(downloadTimeoutSeconds('.25'), 0.25);
    for (const raw of ['abc', '0', '0.0', '-1', '1e3', '10s', 'Infinity', 'NaN', '3000000']) {
      assert.throws(
        () => downloadTimeoutSeconds(raw),
        (err) => err instanceof BeitLensError && err.code === 'DOWNLOAD_FAILED' && err.message.includes('HF_HUB_DOWNLOAD_TIMEOUT') && !err.message.includes('\n'),
        raw,
      );
    }

    const { hub, download } = await setup(t);
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = 'ten';
    try {
      await rejectsWith(download(), 'DOWNLOAD_FAILED', /^HF_HUB_DOWNLOAD_TIMEOUT="ten" is not a number of seconds/);
    } finally {
      delete process.env.HF_HUB_DOWNLOAD_TIMEOUT;
    }
    await rejectsWith(download({ timeoutSeconds: 0 }), 'DOWNLOAD_FAILED', /timeoutSeconds=0 must be more than 0/);
    assert.equal(hub.requests.length, 0);
  });

  test('a hub that accepts the connection and never answers: NETWORK_TIMEOUT naming host:port, progress shows the wait', LIMITS, async (t) => {
    const silent = await silentServer(t);
    const cacheDir = await tempCache(t);
    const progress: DownloadProgress[] = [];
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = '2.5';
    try {
      const { result, seconds } = await timed(
        downloadModel({ modelId: MODEL_ID, cacheDir, endpoint: `http://127.0.0.1:${silent.port}`, onProgress: (p) => progress.push(p) }),
      );
      const err = await rejectsWith(result, 'NETWORK_TIMEOUT');
      assert.equal(err.message, `127.0.0.1:${silent.port} timed out: no answer within 2.5 s (HF_HUB_DOWNLOAD_TIMEOUT)`);
      // undici's timers for timeouts over 1 s tick every 0.5 s, so the end comes up to a second late.
      assert.ok(seconds >= 2.4 && seconds < 3.6, `gave up after ${seconds.toFixed(2)} s`);
      t.diagnostic(`silent hub, HF_HUB_DOWNLOAD_TIMEOUT=2.5: NETWORK_TIMEOUT after ${seconds.toFixed(2)} s`);
      assert.deepEqual(
        progress.map((p) => p.waiting),
        Array.from({ length: Math.floor(seconds) }, (_, i) => ({ host: `127.0.0.1:${silent.port}`, seconds: i + 1, timeoutSeconds: 2.5 })),
        'one report per second of waiting',
      );
    } finally {
      delete process.env.HF_HUB_DOWNLOAD_TIMEOUT;
    }
    assert.ok(progress.every((p) => p.file === '' && p.received === 0), 'waiting on metadata, no file yet');
    assert.equal(silent.connections(), 1, 'no retry loop on a silent hub');

    // The path every command and the extension's Download Model take (ensureModel, HF_ENDPOINT): same timeouts.
    process.env.HF_ENDPOINT = `http://127.0.0.1:${silent.port}`;
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = '0.5';
    try {
      const { result, seconds } = await timed(ensureModel({ cacheDir }));
      await rejectsWith(result, 'NETWORK_TIMEOUT', new RegExp(`^127\\.0\\.0\\.1:${silent.port} timed out: no answer within 0\\.5 s`));
      assert.ok(seconds < 1.5, `ensureModel gave up after ${seconds.toFixed(2)} s`);
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_HUB_DOWNLOAD_TIMEOUT;
    }
  });

  test('a connect timeout, as undici reports it, names the host and the default 10 s', LIMITS, async (t) => {
    // Loopback always accepts a connection, so undici's connect timer cannot fire here; this
    // checks what its error becomes (the timer itself is the dispatcher's `connect.timeout`).
    let calls = 0;
    const connectTimeout: typeof fetch = async () => {
      calls++;
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }) });
    };
    const err = await rejectsWith(downloadModel({ modelId: MODEL_ID, cacheDir: await tempCache(t), fetch: connectTimeout }), 'NETWORK_TIMEOUT');
    assert.equal(err.message, 'huggingface.co timed out: could not connect within 10 s (HF_HUB_DOWNLOAD_TIMEOUT)');
    assert.equal(calls, 1);
  });

  test('a wait can be cancelled: CANCELLED at once, not at the timeout', LIMITS, async (t) => {
    const silent = await silentServer(t);
    const controller = new AbortController();
    const { result, seconds } = await timed(
      downloadModel({
        modelId: MODEL_ID,
        cacheDir: await tempCache(t),
        endpoint: `http://127.0.0.1:${silent.port}`,
        timeoutSeconds: 30,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.waiting) controller.abort();
        },
      }),
    );
    await rejectsWith(result, 'CANCELLED', /cancelled; run again to resume/);
    assert.ok(seconds >= 0.9 && seconds < 2, `cancelled after ${seconds.toFixed(2)} s (first wait report at 1 s)`);
  });

  test('a transfer that stalls mid-body: NETWORK_TIMEOUT after the timeout, the partial file is kept and resumed', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    const binSize = (await fixture(BIN)).length;
    const half = Math.floor(binSize / 2);
    hub.faults.stallAt.set(BIN, [half]);
    const progress: DownloadProgress[] = [];

    const { result, seconds } = await timed(download({ retries: 0, timeoutSeconds: 1.5, onProgress: (p) => progress.push(p) }));

    const err = await rejectsWith(
      result,
      'NETWORK_TIMEOUT',
      new RegExp(`^pytorch_model\\.bin: 127\\.0\\.0\\.1:\\d+ timed out: no data for 1\\.5 s \\(HF_HUB_DOWNLOAD_TIMEOUT\\) after \\d+ of ${binSize} bytes; run again to resume$`),
    );
    assert.ok(seconds >= 1.5 && seconds < 1.5 + 1.5, `gave up after ${seconds.toFixed(2)} s`);
    t.diagnostic(`stalled mid-body, timeout 1.5 s: NETWORK_TIMEOUT after ${seconds.toFixed(2)} s`);
    assert.ok(hub.transfers(BIN)[0].stalled);
    const kept = (await stat(path.join(cachedDir, `${BIN}.partial`))).size;
    assert.ok(kept > 0 && kept <= half, `partial file kept (${kept} bytes)`);
    assert.match(err.message, new RegExp(`after ${kept} of`));
    const waits = progress.filter((p) => p.waiting);
    assert.ok(waits.length >= 1);
    assert.deepEqual(
      waits.map((p) => [p.file, p.received, p.waiting!.seconds]),
      waits.map((_, i) => [BIN, kept, i + 1]),
      'the wait is reported against the file and the bytes already there',
    );

    const result2 = await download({ timeoutSeconds: 1.5 });
    const resume = hub.transfers(BIN)[1];
    assert.equal(resume.headers.range, `bytes=${kept}-`);
    assert.equal(resume.status, 206);
    assert.ok((await readFile(path.join(result2.dir, BIN))).equals(await fixture(BIN)));
  });

  test('stalls are resumed within one call, like dropped connections', LIMITS, async (t) => {
    const { hub, download } = await setup(t);
    const binSize = (await fixture(BIN)).length;
    hub.faults.stallAt.set(BIN, [Math.floor(binSize / 3), Math.floor((2 * binSize) / 3)]);

    const result = await download({ retries: 2, timeoutSeconds: 0.5 });

    assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)));
    assert.deepEqual(
      hub.transfers(BIN).map((r) => [r.status, Boolean(r.stalled)]),
      [
        [200, true],
        [206, true],
        [206, false],
      ],
    );
  });

  test('one byte every half timeout never stalls, but the throughput floor ends it within 6 timeouts', LIMITS, async (t) => {
    const { hub, cachedDir, download } = await setup(t);
    hub.faults.trickleMs.set(BIN, 250);

    const { result, seconds } = await timed(download({ retries: 0, timeoutSeconds: 0.5 }));

    const err = await rejectsWith(
      result,
      'NETWORK_TIMEOUT',
      /^pytorch_model\.bin: 127\.0\.0\.1:\d+ timed out: \d+ bytes in 3 s, under the 1 KiB\/s floor \(HF_HUB_DOWNLOAD_TIMEOUT=0\.5 s sets the 6x window\) after \d+ of \d+ bytes; run again to resume$/,
    );
    const trickled = Number(/: (\d+) bytes in 3 s/.exec(err.message)![1]);
    assert.ok(trickled >= 8 && trickled <= 14, `${trickled} bytes trickled in`);
    assert.ok(seconds >= 3 && seconds < 4.5, `gave up after ${seconds.toFixed(2)} s`);
    assert.ok((await stat(path.join(cachedDir, `${BIN}.partial`))).size > 0, 'what arrived is kept');
    t.diagnostic(`1 byte / 0.25 s, timeout 0.5 s: NETWORK_TIMEOUT after ${seconds.toFixed(2)} s (${trickled} bytes)`);

    // The floor does not trip a healthy transfer at the same timeout.
    hub.faults.trickleMs.clear();
    const done = await download({ timeoutSeconds: 0.5 });
    assert.ok((await readFile(path.join(done.dir, BIN))).equals(await fixture(BIN)));
  });

  test('the CLI shows the wait, then one line naming the host', LIMITS, async (t) => {
    const silent = await silentServer(t);
    const cacheDir = await tempCache(t);
    const cliSource = path.join(__dirname, '..', '..', 'src', 'cli', 'index.ts');
    const env = { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${silent.port}`, HF_HUB_DOWNLOAD_TIMEOUT: '2.5', HF_TOKEN: '' };

    const failed = await promisify(execFile)(process.execPath, ['--import', 'tsx', cliSource, 'download', '--cache-dir', cacheDir], { env, timeout: 20_000 }).then(
      () => assert.fail('download succeeded against a silent hub'),
      (err: { code: number; stderr: string }) => err,
    );

    assert.equal(failed.code, 1);
    const lines = failed.stderr.trim().split('\n');
    assert.equal(lines[0], 'model microsoft/beit-base-patch16-224-pt22k-ft22k@main is not converted yet: downloading from the hub');
    assert.equal(lines[1], `waiting for 127.0.0.1:${silent.port}… 1 s (timeout 2.5 s)`);
    assert.equal(lines[2], `waiting for 127.0.0.1:${silent.port}… 2 s (timeout 2.5 s)`);
    assert.equal(lines.at(-1), `beit-lens: 127.0.0.1:${silent.port} timed out: no answer within 2.5 s (HF_HUB_DOWNLOAD_TIMEOUT)`);
  });

  test('which redirect hops are allowed', () => {
    const https = new URL('https://huggingface.co');
    const loopback = new URL('http://127.0.0.1:8080');
    const cases: [string, URL, boolean][] = [
      ['https://cdn-lfs.hf.co/x', https, true],
      ['https://127.0.0.2:9/x', https, true],
      ['http://127.0.0.1:9/x', loopback, true],
      ['http://localhost:9/x', loopback, true],
      ['http://[::1]:9/x', loopback, true],
      ['http://127.0.0.2:9/x', loopback, false],
      ['http://10.0.0.1/x', loopback, false],
      ['http://127.0.0.1:9/x', https, false],
      ['http://cdn-lfs.hf.co/x', https, false],
      ['ftp://127.0.0.1/x', loopback, false],
      ['file:///etc/passwd', loopback, false],
    ];
    for (const [hop, endpoint, allowed] of cases) assert.equal(isAllowedHop(new URL(hop), endpoint), allowed, `${hop} from ${endpoint.origin}`);
  });

  test('a redirect to plain http on another host is refused before any request reaches it', LIMITS, async (t) => {
    const canary = await silentServer(t, '127.0.0.2');
    const { hub, download } = await setup(t);
    hub.faults.lfsRedirectOrigin = `http://127.0.0.2:${canary.port}`;

    await rejectsWith(
      download({ timeoutSeconds: 2 }),
      'DOWNLOAD_FAILED',
      new RegExp(`^127\\.0\\.0\\.1:\\d+ redirected to http://127\\.0\\.0\\.2:${canary.port}, which is not https .*nothing was sent there$`),
    );
    assert.ok(hub.requests.some((r) => r.kind === 'redirect' && r.file === BIN), 'the hub did redirect');
    assert.equal(canary.connections(), 0, 'nothing reached the plain-http host');

    // An https hub redirecting to plain http on this machine: the https leg is a fake transport
    // (no address outside loopback is contacted); the loop refuses the hop before sending to it.
    const local = await silentServer(t);
    const sent: string[] = [];
    const httpsHub: typeof fetch = async (input) => {
      sent.push(String(input));
      return new Response(null, { status: 302, headers: { Location: `http://127.0.0.1:${local.port}/api/models/x` } });
    };
    await rejectsWith(
      downloadModel({ modelId: MODEL_ID, cacheDir: await tempCache(t), endpoint: 'https://hub.example', fetch: httpsHub }),
      'DOWNLOAD_FAILED',
      new RegExp(`^hub\\.example redirected to http://127\\.0\\.0\\.1:${local.port}, which is not https`),
    );
    assert.equal(sent.length, 1, 'only the https request was sent');
    assert.ok(sent[0].startsWith(`https://hub.example/api/models/${MODEL_ID}/revision/main?`), sent[0]);
    assert.equal(local.connections(), 0);
  });

  test('a redirect to an unreachable host names that host, not the hub', LIMITS, async (t) => {
    const { hub, download } = await setup(t);
    const port = await closedPort();
    hub.faults.lfsRedirectOrigin = `http://127.0.0.1:${port}`;
    const hubHost = new URL(hub.url).host;

    const err = await rejectsWith(download(), 'DOWNLOAD_FAILED');

    assert.equal(err.message, `could not reach 127.0.0.1:${port} (redirected there by ${hubHost}): ECONNREFUSED`);
  });

  test('cross-origin redirects are followed without the token; redirect loops are bounded', LIMITS, async (t) => {
    const token = 'hf_fakeTokenForTests';
    const cdn = await startFakeHub({ repoId: MODEL_ID, files: await officialFiles() });
    t.after(() => cdn.close());
    const { hub, download } = await setup(t, { requiredToken: token });
    hub.faults.lfsRedirectOrigin = cdn.url;

    const result = await download({ token });

    assert.ok((await readFile(path.join(result.dir, BIN))).equals(await fixture(BIN)));
    assert.ok(cdn.transfers(BIN).length >= 1);
    assert.ok(cdn.requests.every((r) => r.headers.authorization === undefined), 'the token stays with the hub');
    assert.ok(hub.requests.every((r) => r.headers.authorization === `Bearer ${token}`));
    assert.ok(cdn.requests.some((r) => r.headers.range === 'bytes=0-0'), 'headers other than the token survive the hop');

    let calls = 0;
    const looping: typeof fetch = async (input) => {
      calls++;
      return new Response(null, { status: 307, headers: { Location: String(input) } });
    };
    await rejectsWith(
      downloadModel({ modelId: MODEL_ID, cacheDir: await tempCache(t), endpoint: 'https://hub.example', fetch: looping }),
      'DOWNLOAD_FAILED',
      /^hub\.example redirected more than 20 times$/,
    );
    assert.equal(calls, 21);
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
