/**
 * Getting a model without network, against the real inference worker and the tiny fixture model: a Hugging
 * Face folder converted by the worker (progress, cancel, then loaded), the download's unreachable-hub error
 * as its own code with a message that does not point at the CLI, and every failed request in the log with
 * its reason (decode error, the BMP refusal, the failed download).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MANIFEST_FILE } from '../../src/core/modelDirectory';
import { localConvertedModelDir } from '../../src/core/modelStore';
import { InferenceClient, isInferenceError } from '../../src/extension/inference/inferenceClient';
import type { Logger } from '../../src/extension/util/logger';
import type { ProgressEvent } from '../../src/extension/worker/workerProtocol';

const root = path.resolve(__dirname, '../..');
const tinyModel = path.join(root, 'test/fixtures/beit-tiny');
let tmp: string;
let client: InferenceClient;
let closedEndpoint: string;
/** How long the full conversion took, so the cancel test knows when an uncancelled one would be done. */
let conversionMs = 5000;
const warnings: string[] = [];
const recording: Logger = { trace() {}, debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };

/** A loopback port that was listening a moment ago and is now closed: connecting is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'beit-lens-offline-'));
  closedEndpoint = `http://127.0.0.1:${await closedPort()}`;
  client = new InferenceClient({
    workerScript: path.join(root, 'src/extension/worker/inferenceWorker.ts'),
    execArgv: ['--import', 'tsx'],
    log: recording,
    env: { ...process.env, HF_ENDPOINT: closedEndpoint },
  });
});

after(async () => {
  await client.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('no network: the ways to a model', () => {
  it('converts a Hugging Face folder in the worker with progress, and the result loads and classifies', async () => {
    const cacheDir = path.join(tmp, 'cache');
    const events: ProgressEvent[] = [];
    const started = Date.now();
    const { dir, warnings: convertWarnings } = await client.call('convertFolder', { from: tinyModel, cacheDir }, { onProgress: (e) => events.push(e) });
    assert.equal(dir, localConvertedModelDir(cacheDir, tinyModel));
    assert.ok(existsSync(path.join(dir, MANIFEST_FILE)), 'the manifest is written last, so the conversion finished');
    conversionMs = Date.now() - started;
    assert.deepEqual(convertWarnings, []);
    const logged = events.filter((e) => e.kind === 'log').map((e) => e.message);
    assert.ok(logged.some((m) => /^read \d+ tensors from /.test(m)), `progress names the weights read: ${logged.join(' | ')}`);
    assert.ok(logged.some((m) => m.startsWith('wrote model.onnx')), `progress names each file written: ${logged.join(' | ')}`);
    // Nothing half-converted next to it.
    assert.deepEqual((await readdir(path.dirname(dir))).filter((n) => n.includes('.tmp-')), []);

    const state = await client.setModel({ source: { kind: 'folder', dir }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } });
    assert.equal(state.kind, 'ready');
    const image = path.join(tinyModel, 'images', (await readdir(path.join(tinyModel, 'images')))[0]);
    const top = await client.call('classify', { file: image, topK: 3 });
    assert.equal(top.length, 3);
  });

  it('a cancelled conversion answers CANCELLED and leaves no folder behind', async () => {
    const cacheDir = path.join(tmp, 'cancelled');
    const controller = new AbortController();
    const call = client.call('convertFolder', { from: tinyModel, cacheDir }, { signal: controller.signal, onProgress: () => controller.abort() });
    await assert.rejects(call, (err: unknown) => isInferenceError(err, 'CANCELLED'));
    // The host stops waiting at once; the worker stops at its next check and removes its temporary folder.
    // Wait twice as long as the whole conversion took, so an abort the worker ignored would show as a model.
    await new Promise((resolve) => setTimeout(resolve, 2 * conversionMs));
    const target = localConvertedModelDir(cacheDir, tinyModel);
    const left = existsSync(path.dirname(target)) ? await readdir(path.dirname(target)) : [];
    assert.deepEqual(left, [], `nothing converted or half-converted: ${left.join(', ')}`);
  });

  it('a folder that is not a model gives an error naming the file and the problem', async () => {
    const notModel = path.join(tmp, 'not-a-model');
    await mkdir(notModel);
    await writeFile(path.join(notModel, 'config.json'), '{ nope');
    await assert.rejects(client.call('convertFolder', { from: notModel, cacheDir: path.join(tmp, 'bad') }), (err: Error) => err.message.includes(path.join(notModel, 'config.json')));
  });

  it('an unreachable hub fails fast as HUB_UNREACHABLE, without the CLI hint', async () => {
    const started = Date.now();
    const err = await client.call('ensureModel', { cacheDir: path.join(tmp, 'download') }).then(
      () => assert.fail('the download cannot succeed'),
      (e: unknown) => e as Error,
    );
    assert.ok(isInferenceError(err, 'HUB_UNREACHABLE'), `code: ${(err as { code?: string }).code}: ${err.message}`);
    assert.equal(err.message, `could not reach ${closedEndpoint} (offline?)`);
    assert.ok(Date.now() - started < 10_000, 'a refused connection is not waited out');
  });

  it('logs every failed request with its reason: decode error, BMP refusal, failed download', async () => {
    const broken = path.join(tmp, 'broken.png');
    await writeFile(broken, Buffer.from('\x89PNG\r\n\x1a\nnot really'));
    const bmp = path.join(tmp, 'picture.bmp');
    await writeFile(bmp, Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]));
    warnings.length = 0;
    await assert.rejects(client.call('classify', { file: broken, topK: 1 }));
    await assert.rejects(client.call('classify', { file: bmp, topK: 1 }));
    await assert.rejects(client.call('ensureModel', { cacheDir: path.join(tmp, 'download') }));
    const line = (needle: string) => warnings.find((w) => w.includes(needle));
    assert.match(line(broken) ?? '', /^classify failed.*\(IMAGE_[A-Z_]+\): /, warnings.join('\n'));
    assert.match(line(bmp) ?? '', /^classify failed.*BMP/, warnings.join('\n'));
    assert.match(line('ensureModel') ?? '', /^ensureModel failed \(HUB_UNREACHABLE\): could not reach /, warnings.join('\n'));
  });
});
