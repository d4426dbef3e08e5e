/**
 * Configs whose values are small on disk but large or degenerate in effect: id2label keys that would size the
 * label-gap list (and the manifest that stores it) by their value, and preprocessor constants that overflow
 * float32 into NaN scores. Each is refused as CONFIG_INVALID naming the file and the field, quickly and without
 * allocating anything in proportion to the value.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { BeitLensError } from '../../src/core/errors';
import { labelsFromId2Label } from '../../src/core/labels';
import { parseBeitConfig } from '../../src/core/modelConfig';
import { parsePreprocessorConfig } from '../../src/core/preprocessorConfig';
import { convertedTinyModel, FIXTURE_DIR, FIXTURE_IMAGES, removedAfterTests } from '../helpers/fixtures';
import { MB, mb, measure } from '../helpers/memory';

const MEMORY_BOUND = 32 * MB;
const TIME_BOUND_MS = 2000;

/** Temporary folders removed when the file's tests end. */
const tempDir = removedAfterTests();

const FIXTURE_CONFIG = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
const FIXTURE_LABELS = FIXTURE_CONFIG.id2label as Record<string, string>;
const FIXTURE_PREPROCESSOR = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;

/** The fixture's 10 labels with the last one's key replaced by `key`. */
function labelsWithKey(key: string): Record<string, string> {
  const id2label: Record<string, string> = { ...FIXTURE_LABELS };
  const last = id2label['9'];
  delete id2label['9'];
  id2label[key] = last;
  return id2label;
}

async function hfFolder(config: Record<string, unknown>, preprocessor: Record<string, unknown> = {}): Promise<string> {
  const dir = await tempDir('beit-lens-config-hf-');
  await copyFile(path.join(FIXTURE_DIR, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  await writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ ...FIXTURE_PREPROCESSOR, ...preprocessor }));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...FIXTURE_CONFIG, ...config }));
  return dir;
}

/** A converted tiny model whose config.json / preprocessor_config.json were edited afterwards (what classify and the worker load). */
async function editedModel(config: Record<string, unknown>, preprocessor: Record<string, unknown> = {}): Promise<string> {
  const model = await convertedTinyModel();
  const dir = await tempDir('beit-lens-config-model-');
  for (const f of ['model.onnx', 'model.logits.onnx', 'model.weights', 'beit-lens.json']) await copyFile(path.join(model, f), path.join(dir, f));
  const pre = JSON.parse(await readFile(path.join(model, 'preprocessor_config.json'), 'utf8'));
  await writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ ...pre, ...preprocessor }));
  const cfg = JSON.parse(await readFile(path.join(model, 'config.json'), 'utf8'));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, ...config }));
  return dir;
}

async function assertRefused(action: () => Promise<unknown>, file: string, message: RegExp, t?: { diagnostic(s: string): void }): Promise<void> {
  const measured = await measure(action);
  assert.ok(!measured.ok, 'expected a refusal, but it succeeded');
  const err = measured.error;
  assert.ok(err instanceof BeitLensError, `expected a BeitLensError, got ${(err as Error)?.stack ?? String(err)}`);
  assert.equal(err.code, 'CONFIG_INVALID', err.message);
  assert.ok(err.message.startsWith(`${file}: `), err.message);
  assert.match(err.message, message);
  assert.ok(!err.message.includes('\n'), 'one line');
  assert.ok(measured.ms < TIME_BOUND_MS, `took ${measured.ms.toFixed(0)} ms`);
  assert.ok(measured.peakRssGrowth < MEMORY_BOUND, `grew RSS by ${mb(measured.peakRssGrowth)}`);
  t?.diagnostic(`${measured.ms.toFixed(0)} ms, +${mb(measured.peakRssGrowth)}: ${path.basename(file)}: ${err.message.slice(file.length + 2)}`);
}

describe('id2label keys are checked before anything proportional to them exists', () => {
  // Before the fix: 4294967295 and 1e23 made V8 abort ("invalid size error") building a 2.5 GB gap list; 30000000
  // wrote a 409 MB manifest and took 8 s per load.
  const huge = ['4294967295', '99999999999999999999999', '30000000'];
  for (const key of huge) {
    it(`convert and load refuse the key ${key} in a 1.6 KB config`, async (t) => {
      const config = { id2label: labelsWithKey(key) };
      assert.ok(JSON.stringify({ ...FIXTURE_CONFIG, ...config }).length < 2048);
      const message = new RegExp(`id2label key "${key.slice(0, 24)}(\\.\\.\\.)?" is out of range: 10 labels \\(classifier rows\\) allow keys 0\\.\\.65535 \\(the larger of twice the rows and 65536\\)`);
      const hf = await hfFolder(config);
      await assertRefused(() => convertModel({ from: hf, out: path.join(hf, 'out') }), path.join(hf, 'config.json'), message, t);
      assert.equal(existsSync(path.join(hf, 'out')), false, 'nothing written');
      const converted = await editedModel(config);
      await assertRefused(() => BeitModel.load(converted), path.join(converted, 'config.json'), message, t);
    });
  }

  const malformed: [string, string][] = [
    ['-1', 'a sign'],
    ['+1', 'a plus sign'],
    ['1e3', 'an exponent'],
    ['1.5', 'a fraction'],
    ['9.0', 'a zero fraction'],
    ['09', 'a leading zero (it would name row 9 twice)'],
    [' 9', 'a space'],
    ['0x9', 'hex'],
    ['', 'an empty key'],
    ['nine', 'a word'],
  ];
  for (const [key, what] of malformed) {
    it(`refuses a key with ${what}: ${JSON.stringify(key)}`, () => {
      const id2label = key === '09' ? { ...FIXTURE_LABELS, '09': 'again' } : labelsWithKey(key);
      assert.throws(
        () => parseBeitConfig({ ...FIXTURE_CONFIG, id2label }, '/m/config.json'),
        (err: unknown) =>
          err instanceof BeitLensError &&
          err.code === 'CONFIG_INVALID' &&
          err.message === `/m/config.json: id2label key ${JSON.stringify(key)} is not a non-negative integer written plainly (no sign, exponent, fraction or leading zeros)`,
      );
    });
  }

  it('the bound is the larger of twice the row count and 65,536: a subset keeping its 22k ids loads, past it is refused', () => {
    // 10 labels keeping keys as scattered as a fine-tuned ImageNet-22k subset's (up to 21842): loads, in key order.
    const scattered = parseBeitConfig({ ...FIXTURE_CONFIG, id2label: labelsWithKey('21842') }, '/m/config.json');
    assert.equal(scattered.numLabels, 10);
    assert.equal(scattered.labels.missingKeys.length, 21842 - 9);
    assert.equal(scattered.labels.labels[9], FIXTURE_LABELS['9']);
    const atLimit = parseBeitConfig({ ...FIXTURE_CONFIG, id2label: labelsWithKey('65535') }, '/m/config.json');
    assert.equal(atLimit.labels.missingKeys.length, 65535 - 9);
    assert.throws(() => parseBeitConfig({ ...FIXTURE_CONFIG, id2label: labelsWithKey('65536') }, '/m/config.json'), /id2label key "65536" is out of range: 10 labels \(classifier rows\) allow keys 0\.\.65535/);
    // Past 32,768 labels the bound is twice the rows.
    const many: Record<string, string> = {};
    for (let k = 0; k < 40_000; k++) many[String(k)] = `l${k}`;
    assert.equal(labelsFromId2Label({ ...many, '79999': 'last' }).missingKeys.length, 79999 - 40000);
    assert.throws(() => labelsFromId2Label({ ...many, '80002': 'last' }, 'c.json'), /^BeitLensError: c\.json: id2label key "80002" is out of range: 40001 labels \(classifier rows\) allow keys 0\.\.80001/);
  });

  it('the official 22k layout (21,841 labels, keys to 21842, gaps 9205 and 15027) is unchanged', () => {
    const id2label: Record<string, string> = {};
    for (let k = 0; k < 21843; k++) if (k !== 9205 && k !== 15027) id2label[String(k)] = `synset ${k}`;
    const config = parseBeitConfig({ ...FIXTURE_CONFIG, id2label }, '/m/config.json');
    assert.equal(config.numLabels, 21841);
    assert.deepEqual(config.labels.missingKeys, [9205, 15027]);
    assert.equal(config.labels.labels[9205], 'synset 9206');
    assert.equal(config.labels.labels[21840], 'synset 21842');
  });

  it('a converted model with a legal gap keeps classifying, with labels in key order', async () => {
    const hf = await hfFolder({ id2label: labelsWithKey('15') });
    const dir = path.join(hf, 'out');
    const { warnings } = await convertModel({ from: hf, out: dir });
    assert.deepEqual(warnings, [`${path.join(hf, 'config.json')}: id2label keys have gaps (missing 9, 10, 11, 12, 13 and 1 more); logit i is given the i-th label in key order, not id2label[i]`]);
    const model = await BeitModel.load(dir);
    try {
      assert.deepEqual(model.directory.config.labels.missingKeys, [9, 10, 11, 12, 13, 14]);
      const [r] = await model.classifyFiles([path.join(FIXTURE_IMAGES, 'gray_256x256.png')], { topK: 10 });
      assert.equal(r.top?.length, 10, r.error);
      const byIndex = new Map(r.top!.map((p) => [p.index, p.label]));
      assert.equal(byIndex.get(9), FIXTURE_LABELS['9']);
      assert.equal(byIndex.get(0), FIXTURE_LABELS['0']);
    } finally {
      await model.dispose();
    }
  });
});

describe('preprocessor constants must keep outputs finite', () => {
  // Before the fix each of these was accepted and every score came out NaN.
  const degenerate: { what: string; patch: Record<string, unknown>; message: RegExp }[] = [
    { what: 'image_std 1e-50', patch: { image_std: 1e-50 }, message: /preprocessor config: "image_std" must be in \[0\.0001, 1\] \(0\.0001 to 1 times the largest pixel value after rescaling\), got 1e-50$/ },
    { what: 'rescale_factor 1e300', patch: { rescale_factor: 1e300 }, message: /preprocessor config: "rescale_factor" must be in \[0\.00001, 1\] \(1\/255 for 8-bit pixels\), got 1e\+300$/ },
    { what: 'image_mean 1e39', patch: { image_mean: 1e39 }, message: /preprocessor config: "image_mean" must be in \[0, 1\], the pixel range after rescaling, got 1e\+39$/ },
  ];
  for (const c of degenerate) {
    it(`convert and load refuse ${c.what}`, async (t) => {
      const hf = await hfFolder({}, c.patch);
      await assertRefused(() => convertModel({ from: hf, out: path.join(hf, 'out') }), path.join(hf, 'preprocessor_config.json'), c.message, t);
      const converted = await editedModel({}, c.patch);
      await assertRefused(() => BeitModel.load(converted), path.join(converted, 'preprocessor_config.json'), c.message, t);
    });
  }

  const refused: [string, Record<string, unknown>, string][] = [
    ['a 0-255 mean with rescaling on (silently wrong in HF)', { image_mean: [123.675, 116.28, 103.53], image_std: [58.395, 57.12, 57.375] }, '"image_mean" must be in [0, 1]'],
    ['a zero std', { image_std: [0.5, 0, 0.5] }, '"image_std" must be in [0.0001, 1]'],
    ['a negative std', { image_std: -0.5 }, '"image_std" must be in [0.0001, 1]'],
    ['a std larger than the pixel range', { image_std: 2 }, '"image_std" must be in [0.0001, 1]'],
    ['a negative mean', { image_mean: [-0.1, 0.5, 0.5] }, '"image_mean" must be in [0, 1]'],
    ['a zero rescale factor', { rescale_factor: 0 }, '"rescale_factor" must be in [0.00001, 1]'],
    ['a negative rescale factor', { rescale_factor: -1 / 255 }, '"rescale_factor" must be in [0.00001, 1]'],
    ['a std of 1e-50 with rescaling off', { do_rescale: false, image_std: 1e-50 }, '"image_std" must be in [0.0255, 255]'],
  ];
  for (const [what, patch, message] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => parsePreprocessorConfig({ ...FIXTURE_PREPROCESSOR, ...patch }, '/m/preprocessor_config.json'),
        (err: unknown) => err instanceof BeitLensError && err.code === 'CONFIG_INVALID' && err.message.startsWith(`/m/preprocessor_config.json: preprocessor config: ${message}`),
      );
    });
  }

  it('accepts what released checkpoints use, and 0-255 constants when rescaling is off', () => {
    const accepted: Record<string, unknown>[] = [
      {},
      { rescale_factor: 1 / 255, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225] }, // ImageNet
      { image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711] }, // CLIP
      { do_rescale: false, image_mean: [123.675, 116.28, 103.53], image_std: [58.395, 57.12, 57.375] },
      { image_mean: 1, image_std: 1 },
      { rescale_factor: 1 / 65535 + 1e-12, image_mean: 0.001, image_std: 0.001 },
      { do_rescale: false, rescale_factor: 1e300 }, // unused when rescaling is off, as in HF
    ];
    for (const patch of accepted) {
      const c = parsePreprocessorConfig({ ...FIXTURE_PREPROCESSOR, ...patch }, '/m/preprocessor_config.json');
      assert.deepEqual(c.imageMean.length, 3, JSON.stringify(patch));
    }
  });

  it('a converted model with ImageNet constants gives finite scores that sum to at most 1', async () => {
    const hf = await hfFolder({}, { image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225] });
    const dir = path.join(hf, 'out');
    await convertModel({ from: hf, out: dir });
    const model = await BeitModel.load(dir);
    try {
      const [r] = await model.classifyFiles([path.join(FIXTURE_IMAGES, 'gray_256x256.png')], { topK: 10 });
      assert.equal(r.top?.length, 10, r.error);
      const sum = r.top!.reduce((s, p) => s + p.score, 0);
      assert.ok(r.top!.every((p) => Number.isFinite(p.score) && p.score >= 0), JSON.stringify(r.top));
      assert.ok(Math.abs(sum - 1) < 1e-4, `scores sum to ${sum}`);
    } finally {
      await model.dispose();
    }
  });
});
