/**
 * Converted folders are checked against their manifest before use (src/core/modelIntegrity.ts), and a model
 * that computes NaN or infinite logits gives an error, never a score. Real onnxruntime sessions on the tiny
 * fixture model, converted by the project's converter into temporary folders.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { onnx } from 'onnx-proto';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { runDoctor } from '../../src/core/doctor';
import { BeitLensError, type ErrorCode } from '../../src/core/errors';
import { ModelVerifier, sha256File } from '../../src/core/modelIntegrity';
import { ResultStore } from '../../src/core/scan/resultStore';
import { scanDataset, type ScanModel, type ScanResult } from '../../src/core/scan/scanner';
import { readSafetensors, writeSafetensors } from '../../src/core/weights/safetensors';
import { expected, FIXTURE_DIR, FIXTURE_IMAGES, hfFolderWith, maxAbsDiff, rawPixelValues, tempDir } from '../helpers/fixtures';

const MODEL_FILES = ['config.json', 'preprocessor_config.json', 'model.onnx', 'model.logits.onnx', 'model.weights', 'beit-lens.json'];
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const IMAGES = expected.images.slice(0, 3).map((i: { file: string }) => path.join(FIXTURE_IMAGES, path.basename(i.file)));

let converted: string;

async function copyOfModel(): Promise<string> {
  const dir = await tempDir('beit-integrity-');
  for (const f of MODEL_FILES) await copyFile(path.join(converted, f), path.join(dir, f));
  return dir;
}

/** A verifier with its own record folder that lists the files it hashes. */
async function countingVerifier(recordDir?: string): Promise<{ verifier: ModelVerifier; hashed: string[]; recordDir: string }> {
  const dir = recordDir ?? (await tempDir('beit-verified-'));
  const hashed: string[] = [];
  const verifier = new ModelVerifier({
    recordDir: dir,
    hashFile: (file) => {
      hashed.push(path.basename(file));
      return sha256File(file);
    },
  });
  return { verifier, hashed, recordDir: dir };
}

async function refused(action: () => Promise<unknown>, code: ErrorCode, message: RegExp): Promise<BeitLensError> {
  try {
    await action();
  } catch (err) {
    assert.ok(err instanceof BeitLensError, `expected a BeitLensError, got ${(err as Error)?.stack ?? String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err;
  }
  assert.fail('expected a refusal, but it succeeded');
}

async function overwrite(file: string, offset: number, bytes: Buffer): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(bytes, 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
}

async function loadAndCheck(dir: string, verifier: ModelVerifier): Promise<BeitModel> {
  const model = await BeitModel.load(dir, { verifier, provider: 'cpu' });
  assert.ok(maxAbsDiff(await model.logits(rawPixelValues(), 1), expected.raw_input_check.logits) <= 1e-4, 'the intact model computes the reference logits');
  return model;
}

async function scanAll(model: ScanModel, root: string, store?: ResultStore): Promise<ScanResult[]> {
  const results: ScanResult[] = [];
  await scanDataset({ roots: [root], model, store, topK: 3, pool: { workers: 0 }, onResult: (r) => void results.push(r) });
  return results.sort((a, b) => a.image.localeCompare(b.image));
}

async function imageFolder(): Promise<string> {
  const root = await tempDir('beit-integrity-images-');
  await mkdir(path.join(root, 'cls'));
  for (const f of IMAGES) await copyFile(f, path.join(root, 'cls', path.basename(f)));
  return root;
}

/** Sets one logit's classifier bias to `value` in both graphs, and rewrites the manifest to match: a folder that verifies, whose model computes a non-finite logit. */
async function nonFiniteModel(value: number): Promise<string> {
  const dir = await copyOfModel();
  const manifestFile = path.join(dir, 'beit-lens.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  for (const name of ['model.onnx', 'model.logits.onnx']) {
    const model = onnx.ModelProto.decode(await readFile(path.join(dir, name)));
    let patched = 0;
    for (const t of model.graph!.initializer!) {
      if (!/classifier/.test(t.name ?? '') || t.dims?.length !== 1 || Number(t.dims[0]) !== expected.model.num_labels) continue;
      const raw = Buffer.from(t.rawData!);
      raw.writeFloatLE(value, 0);
      t.rawData = raw;
      patched++;
    }
    assert.ok(patched >= 1, `${name}: classifier bias found`);
    const bytes = onnx.ModelProto.encode(model).finish();
    await writeFile(path.join(dir, name), bytes);
    manifest.files[name] = { ...manifest.files[name], bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  manifest.modelId = `non-finite@${value}`;
  await writeFile(manifestFile, JSON.stringify(manifest));
  return dir;
}

before(async () => {
  converted = await tempDir('beit-integrity-converted-');
  await convertModel({ from: FIXTURE_DIR, out: converted });
});

describe('a converted folder is verified before first use', () => {
  it('an intact folder is hashed once; later loads of the unchanged folder hash nothing', async () => {
    const dir = await copyOfModel();
    const { verifier, hashed } = await countingVerifier();
    const first = await loadAndCheck(dir, verifier);
    assert.deepEqual([...hashed].sort(), ['model.logits.onnx', 'model.onnx', 'model.weights']);
    assert.equal(first.integrity.state, 'verified');
    await first.dispose();
    hashed.length = 0;
    const second = await loadAndCheck(dir, verifier);
    assert.deepEqual(hashed, [], 'nothing re-hashed');
    assert.deepEqual(second.integrity.state === 'verified' && second.integrity.hashed, []);
    await second.dispose();
    // The record is beside the caches, not in the (possibly read-only) model folder.
    assert.deepEqual((await readdir(dir)).sort(), [...MODEL_FILES].sort());
  });

  it('a touched but unchanged file is re-verified, accepted, and then trusted again', async () => {
    const dir = await copyOfModel();
    const { verifier, hashed } = await countingVerifier();
    await (await BeitModel.load(dir, { verifier, provider: 'cpu' })).dispose();
    const weights = path.join(dir, 'model.weights');
    const later = new Date(Date.now() + 5000);
    await utimes(weights, later, later);
    hashed.length = 0;
    const model = await loadAndCheck(dir, verifier);
    assert.deepEqual(hashed, ['model.weights']);
    await model.dispose();
    hashed.length = 0;
    await (await BeitModel.load(dir, { verifier, provider: 'cpu' })).dispose();
    assert.deepEqual(hashed, []);
  });

  it('same-size damage to model.weights is refused naming the file, even with its mtime put back', async () => {
    const dir = await copyOfModel();
    const { verifier, hashed } = await countingVerifier();
    await (await BeitModel.load(dir, { verifier, provider: 'cpu' })).dispose();
    const weights = path.join(dir, 'model.weights');
    const before = await stat(weights);
    await overwrite(weights, Math.floor(before.size / 2), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    // Only ctime (which no user tool can set) still says the file changed.
    await utimes(weights, before.atime, before.mtime);
    assert.equal((await stat(weights)).size, before.size);
    hashed.length = 0;
    const err = await refused(() => BeitModel.load(dir, { verifier, provider: 'cpu' }), 'INTEGRITY', /model\.weights: differs from beit-lens\.json: sha256 [0-9a-f]{12}…, the manifest says [0-9a-f]{12}… \(damaged or replaced/);
    assert.equal(err.file, weights);
    assert.ok(err.message.startsWith(`${weights}: `), err.message);
    assert.deepEqual(hashed.slice(-1), ['model.weights']);
    // Refused again on the next load: a failed check records nothing.
    await refused(() => BeitModel.load(dir, { verifier, provider: 'cpu' }), 'INTEGRITY', /model\.weights: differs/);
  });

  it('a wrong hash in the manifest is refused naming the file it lists', async () => {
    const dir = await copyOfModel();
    const manifestFile = path.join(dir, 'beit-lens.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
    const good = manifest.files['model.onnx'].sha256;
    manifest.files['model.onnx'].sha256 = good.replace(/^./, (c: string) => (c === '0' ? '1' : '0'));
    await writeFile(manifestFile, JSON.stringify(manifest));
    const { verifier } = await countingVerifier();
    await refused(() => BeitModel.load(dir, { verifier, provider: 'cpu' }), 'INTEGRITY', new RegExp(`${escape(path.join(dir, 'model.onnx'))}: differs from beit-lens\\.json`));

    // A record made while the manifest was right does not vouch for a manifest changed since.
    const dir2 = await copyOfModel();
    const counting = await countingVerifier();
    await (await BeitModel.load(dir2, { verifier: counting.verifier, provider: 'cpu' })).dispose();
    const m2 = JSON.parse(await readFile(path.join(dir2, 'beit-lens.json'), 'utf8'));
    m2.weights.sha256 = 'f'.repeat(64);
    await writeFile(path.join(dir2, 'beit-lens.json'), JSON.stringify(m2));
    await refused(() => BeitModel.load(dir2, { verifier: counting.verifier, provider: 'cpu' }), 'INTEGRITY', /model\.weights: differs from beit-lens\.json: sha256 [0-9a-f]{12}…, the manifest says ffffffffffff…/);
  });

  it('a replaced graph file is refused naming it, before onnxruntime sees it', async () => {
    const other = await tempDir('beit-integrity-plain-');
    await convertModel({ from: FIXTURE_DIR, out: other, plain: true });
    const replaced = await copyOfModel();
    await copyFile(path.join(other, 'model.onnx'), path.join(replaced, 'model.logits.onnx'));
    const size = (await stat(path.join(replaced, 'model.logits.onnx'))).size;
    const { verifier } = await countingVerifier();
    await refused(() => BeitModel.load(replaced, { verifier, provider: 'cpu' }), 'INTEGRITY', new RegExp(`model\\.logits\\.onnx: is ${size} bytes, beit-lens\\.json says \\d+ \\(cut short or replaced`));

    // Same size, different bytes (one byte of the graph changed).
    const edited = await copyOfModel();
    const graph = path.join(edited, 'model.logits.onnx');
    const bytes = await readFile(graph);
    const at = Math.floor(bytes.length / 2);
    await overwrite(graph, at, Buffer.from([bytes[at] ^ 0xff]));
    await refused(() => BeitModel.load(edited, { verifier, provider: 'cpu' }), 'INTEGRITY', /model\.logits\.onnx: differs from beit-lens\.json/);
  });

  it('folders without a manifest, and with weights in-line, load as before', async () => {
    const noManifest = await tempDir('beit-integrity-nomanifest-');
    for (const f of MODEL_FILES.filter((f) => f !== 'beit-lens.json')) await copyFile(path.join(converted, f), path.join(noManifest, f));
    const { verifier, hashed } = await countingVerifier();
    const m = await loadAndCheck(noManifest, verifier);
    assert.equal(m.integrity.state, 'nothing-to-verify');
    assert.deepEqual(hashed, []);
    await m.dispose();

    const plain = await tempDir('beit-integrity-plain-');
    await convertModel({ from: FIXTURE_DIR, out: plain, plain: true });
    const p = await loadAndCheck(plain, verifier);
    assert.ok(p.integrity.state === 'verified');
    assert.deepEqual(p.integrity.files, ['model.onnx']);
    await p.dispose();
  });

  it('an unwritable record folder only means verifying again next time', async () => {
    const dir = await copyOfModel();
    const blocker = path.join(await tempDir('beit-integrity-blocked-'), 'a-file');
    await writeFile(blocker, 'not a folder');
    const { verifier, hashed } = await countingVerifier(path.join(blocker, 'records'));
    const m = await loadAndCheck(dir, verifier);
    assert.ok(m.integrity.state === 'verified');
    assert.match(m.integrity.recordError ?? '', /verification record not saved \(.*\): the next load verifies again/);
    await m.dispose();
    hashed.length = 0;
    await (await BeitModel.load(dir, { verifier, provider: 'cpu' })).dispose();
    assert.equal(hashed.length, 3);
  });

  it('doctor says verified, or names the file that differs; without a manifest, that there is nothing to verify', async () => {
    const dir = await copyOfModel();
    const cacheDir = await tempDir('beit-integrity-doctor-');
    const good = await runDoctor({ modelDir: dir, cacheDir, provider: 'cpu' });
    assert.equal(good.ok, true, good.text);
    assert.equal(good.model?.integrity?.state, 'verified');
    assert.match(good.text, /integrity: verified, sha256 as in beit-lens\.json \(hashed now: model\.onnx, model\.logits\.onnx, model\.weights\)/);
    const again = await runDoctor({ modelDir: dir, cacheDir, provider: 'cpu' });
    assert.match(again.text, /integrity: verified, sha256 as in beit-lens\.json \(unchanged since verified: model\.onnx, model\.logits\.onnx, model\.weights\)/);

    const weights = path.join(dir, 'model.weights');
    await overwrite(weights, 4096, Buffer.from('damage'));
    const bad = await runDoctor({ modelDir: dir, cacheDir, provider: 'cpu' });
    assert.equal(bad.ok, false);
    assert.deepEqual(bad.model?.integrity && { state: bad.model.integrity.state, file: 'file' in bad.model.integrity ? bad.model.integrity.file : undefined }, { state: 'differs', file: weights });
    assert.match(bad.text, new RegExp(`model: ${escape(weights)}: differs from beit-lens\\.json`));
    assert.match(bad.text, new RegExp(`integrity: differs: ${escape(weights)}`));

    const noManifest = await tempDir('beit-integrity-nomanifest-');
    for (const f of MODEL_FILES.filter((f) => f !== 'beit-lens.json')) await copyFile(path.join(converted, f), path.join(noManifest, f));
    const none = await runDoctor({ modelDir: noManifest, cacheDir, provider: 'cpu' });
    assert.equal(none.ok, true, none.text);
    assert.match(none.text, /integrity: nothing to verify: no beit-lens\.json/);
  });
});

describe('the scan cache never holds results of an unverified model', () => {
  it('a damaged folder is refused, and an unverified model neither reads nor writes the cache', async () => {
    const root = await imageFolder();
    const cacheFile = path.join(await tempDir('beit-integrity-cache-'), 'scan-cache.log');
    const good = await copyOfModel();
    const damaged = await copyOfModel();
    // Same size, finite values: the first bytes of the weights file are the first tensor's.
    await overwrite(path.join(damaged, 'model.weights'), 0, Buffer.from(new Float32Array(1024).fill(0.25).buffer));
    const { verifier } = await countingVerifier();
    await refused(() => BeitModel.load(damaged, { verifier, provider: 'cpu' }), 'INTEGRITY', /model\.weights: differs/);

    // Loaded without verification, as the benchmark's peer does: its answers are not cached...
    const unverified = await BeitModel.load(damaged, { verifier: false, provider: 'cpu' });
    assert.equal(unverified.integrity.state, 'unverified');
    assert.equal(unverified.modelId, (await BeitModel.load(good, { verifier, provider: 'cpu' }).then(async (m) => [m.modelId, await m.dispose()][0])), 'same manifest, same id: the hazard');
    let store = await ResultStore.open(cacheFile);
    const damagedResults = await scanAll(unverified, root, store);
    assert.equal(store.stats.predictions, 0);
    assert.equal(store.stats.files, 0);
    await store.close();
    await unverified.dispose();
    assert.equal(damagedResults.length, IMAGES.length);
    assert.ok(damagedResults.every((r) => r.top !== undefined && r.source === 'model'), 'finite, plausible, wrong answers');

    // ...so the good model computes its own, and caches them.
    const model = await BeitModel.load(good, { verifier, provider: 'cpu' });
    store = await ResultStore.open(cacheFile);
    const first = await scanAll(model, root, store);
    assert.deepEqual(first.map((r) => r.source), IMAGES.map(() => 'model'));
    for (const r of first) {
      // Batched against alone: the same classes, scores within float rounding.
      const alone = await model.classify(r.image, 3);
      assert.deepEqual(r.top!.map((p) => p.index), alone.map((p) => p.index));
      assert.ok(maxAbsDiff(r.top!.map((p) => p.score), alone.map((p) => p.score)) < 1e-5);
    }
    assert.ok(first.some((r, i) => r.top![0].score !== damagedResults[i].top![0].score), 'the damaged weights gave other scores');
    assert.equal(store.stats.predictions, IMAGES.length);
    const again = await scanAll(model, root, store);
    assert.deepEqual(again.map((r) => r.source), IMAGES.map(() => 'cache'));
    await store.close();

    // An unverified model is not served the good model's cached answers either.
    const unverifiedAgain = await BeitModel.load(damaged, { verifier: false, provider: 'cpu' });
    store = await ResultStore.open(cacheFile);
    const third = await scanAll(unverifiedAgain, root, store);
    assert.deepEqual(third.map((r) => r.source), IMAGES.map(() => 'model'));
    await store.close();
    await unverifiedAgain.dispose();
    await model.dispose();
  });
});

describe('non-finite logits are an error, never a result', () => {
  let nanDir: string;
  let infDir: string;
  before(async () => {
    nanDir = await nonFiniteModel(Number.NaN);
    infDir = await nonFiniteModel(Number.POSITIVE_INFINITY);
  });

  it('classify, classifyFiles and explain give NON_FINITE_OUTPUT', async () => {
    for (const [dir, shown] of [[nanDir, 'NaN'], [infDir, 'Infinity']] as const) {
      const { verifier } = await countingVerifier();
      const model = await BeitModel.load(dir, { verifier, provider: 'cpu' });
      assert.equal(model.integrity.state, 'verified', 'the folder matches its manifest: the model itself is broken');
      const logitsFile = path.join(dir, 'model.logits.onnx');
      const message = new RegExp(`^${escape(logitsFile)}: the model returned a non-finite logit \\(${shown} for class 0 of ${expected.model.num_labels}\\)`);
      await refused(() => model.classify(IMAGES[0], 5), 'NON_FINITE_OUTPUT', message);
      const results = await model.classifyFiles([IMAGES[0], path.join(FIXTURE_IMAGES, 'no-such.png'), IMAGES[1]], { topK: 3 });
      assert.deepEqual(results.map((r) => r.code), ['NON_FINITE_OUTPUT', 'FILE_NOT_FOUND', 'NON_FINITE_OUTPUT']);
      assert.ok(results.every((r) => r.top === undefined));
      assert.match(results[0].error!, message);
      await refused(() => model.explain(IMAGES[0]), 'NON_FINITE_OUTPUT', new RegExp(`^${escape(path.join(dir, 'model.onnx'))}: the model returned a non-finite logit`));
      await model.dispose();
    }
  });

  it('a scan gives error rows with NON_FINITE_OUTPUT and caches nothing', async () => {
    const root = await imageFolder();
    const cacheFile = path.join(await tempDir('beit-integrity-cache-'), 'scan-cache.log');
    const { verifier } = await countingVerifier();
    const model = await BeitModel.load(nanDir, { verifier, provider: 'cpu' });
    for (let run = 0; run < 2; run++) {
      const store = await ResultStore.open(cacheFile);
      const results = await scanAll(model, root, store);
      assert.deepEqual(results.map((r) => r.errorCode), IMAGES.map(() => 'NON_FINITE_OUTPUT'));
      assert.ok(results.every((r) => r.top === undefined && r.source === 'file' && /non-finite logit \(NaN/.test(r.error!)));
      assert.equal(store.stats.predictions, 0, `run ${run}: nothing cached`);
      await store.close();
    }
    await model.dispose();
  });

  it('the CLI prints errorCode NON_FINITE_OUTPUT in --json and exits 1', async (t) => {
    assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
    const cache = await tempDir('beit-integrity-cli-cache-');
    const r = await promisify(execFile)(process.execPath, [CLI, 'classify', '--model', nanDir, '--json', '--provider', 'cpu', IMAGES[0], IMAGES[1]], { env: { ...process.env, BEIT_LENS_CACHE: cache } }).then(
      (x) => ({ code: 0, ...x }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.image, l.errorCode, l.top]), [
      [IMAGES[0], 'NON_FINITE_OUTPUT', undefined],
      [IMAGES[1], 'NON_FINITE_OUTPUT', undefined],
    ]);
    assert.match(lines[0].error, /model\.logits\.onnx: the model returned a non-finite logit \(NaN for class 0/);
    assert.ok(existsSync(path.join(cache, 'verified-models')), 'the CLI keeps its verification records in BEIT_LENS_CACHE');
    t.diagnostic(`CLI: ${lines.length} lines, exit code ${r.code}`);
  });
});

describe('convert refuses non-finite weights', () => {
  for (const [name, value, shown] of [
    ['beit.encoder.layer.0.attention.output.dense.weight', Number.NaN, 'NaN'],
    ['classifier.bias', Number.NEGATIVE_INFINITY, '-Infinity'],
  ] as const) {
    it(`names ${name} holding ${shown}`, async () => {
      const dir = await hfFolderWith('model.safetensors');
      const file = path.join(dir, 'model.safetensors');
      const sd = await readSafetensors(file);
      const tensor = sd.get(name);
      assert.ok(tensor && tensor.data instanceof Float32Array, `the fixture has float ${name}`);
      (tensor.data as Float32Array)[3] = value;
      await writeSafetensors(file, sd);
      const out = path.join(dir, 'out');
      await refused(() => convertModel({ from: dir, out }), 'WEIGHTS_INVALID', new RegExp(`^${escape(file)}: tensor ${escape(name)} has a non-finite value \\(${shown} at element 3\\); refusing to convert it$`));
      assert.equal(existsSync(path.join(out, 'beit-lens.json')), false, 'no manifest: nothing half-converted looks finished');
    });
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
