/**
 * Family selection from config.json, refusals by name, the registry's entries as real configs, and download +
 * convert of each family through the local hub stand-in and the built CLI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { BeitLensError } from '../../src/core/errors';
import { downloadModel } from '../../src/core/hub';
import { parseBeitConfig } from '../../src/core/modelConfig';
import { loadModelRegistry, type RegistryModel } from '../../src/core/modelRegistry';
import { familyOf } from '../../src/core/models/registry';
import { startFakeHub, type FakeRepoFile } from '../helpers/fakeHub';
import { maxAbsDiff, removedAfterTests } from '../helpers/fixtures';

const FAMILIES_DIR = path.resolve(__dirname, '..', 'fixtures', 'families');
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const tempDir = removedAfterTests();
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const fixtureConfig = (name: string) => readJson(path.join(FAMILIES_DIR, name, 'config.json'));

function refused(json: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseBeitConfig(json, '/m/config.json'),
    (err: unknown) => err instanceof BeitLensError && err.code === 'CONFIG_INVALID' && err.message.startsWith('/m/config.json: ') && pattern.test(err.message),
  );
}

describe('the family is chosen from config.json', () => {
  it('by model_type, each with its own weight prefix, token layout and pooling', () => {
    const d2v = parseBeitConfig(fixtureConfig('data2vec-vision'));
    assert.equal(d2v.architecture.family, 'data2vec-vision');
    assert.equal(d2v.architecture.prefix, 'data2vec_vision');
    const vit = parseBeitConfig(fixtureConfig('vit'));
    assert.deepEqual(
      [vit.architecture.family, vit.architecture.prefix, vit.architecture.pooling, vit.architecture.keyBias, vit.architecture.absolutePositionEmbeddings, vit.architecture.leadingTokens],
      ['vit', 'vit', 'cls', true, true, 1],
    );
    assert.equal(vit.numTokens, 17);
    const shared = parseBeitConfig(fixtureConfig('beit-shared-bias')).architecture;
    assert.deepEqual([shared.perLayerRelativeBias, shared.sharedRelativeBias, shared.layerScale], [false, true, true]);
    assert.equal(parseBeitConfig(fixtureConfig('beit-no-layer-scale-48')).architecture.layerScale, false);
    assert.equal(parseBeitConfig(fixtureConfig('beit-cls-pooling')).architecture.pooling, 'cls');
  });

  it('by architectures when model_type is missing; BEiT when both are', () => {
    const { model_type: _, ...vit } = fixtureConfig('vit');
    assert.equal(familyOf(vit, 'c').id, 'vit');
    const { model_type: __, architectures: ___, ...bare } = fixtureConfig('beit-cls-pooling');
    assert.equal(familyOf(bare, 'c').id, 'beit');
  });

  it('refuses an unknown model_type, a head it cannot run and unsupported option values, naming the field', () => {
    refused({ ...fixtureConfig('vit'), model_type: 'swin' }, /model_type "swin" is not supported \(supported: beit, data2vec-vision, vit\)/);
    refused({ ...fixtureConfig('beit-shared-bias'), architectures: ['BeitForMaskedImageModeling'] }, /architectures \["BeitForMaskedImageModeling"\] is not supported.*BeitForImageClassification/);
    refused({ ...fixtureConfig('vit'), model_type: undefined, architectures: ['DeiTForImageClassification'] }, /architectures \["DeiTForImageClassification"\]/);
    refused({ ...fixtureConfig('vit'), qkv_bias: false }, /qkv_bias false is not supported/);
    refused({ ...fixtureConfig('beit-cls-pooling'), layer_scale_init_value: -1 }, /layer_scale_init_value -1 is not supported/);
    refused({ ...fixtureConfig('data2vec-vision'), hidden_act: 'relu' }, /hidden_act relu is not supported/);
    refused({ ...fixtureConfig('vit'), image_size: [32, 32] }, /^\/m\/config.json: image_size: /);
    refused({ ...fixtureConfig('beit-shared-bias'), use_mean_pooling: 'no' }, /use_mean_pooling: /);
  });

  it('a weight the architecture needs but the checkpoint lacks is named at conversion', async () => {
    // The config says per-layer tables too, the shared-bias checkpoint has none.
    const dir = await tempDir('beit-family-gap-');
    const { writeFile, copyFile } = await import('node:fs/promises');
    const from = path.join(FAMILIES_DIR, 'beit-shared-bias');
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...fixtureConfig('beit-shared-bias'), use_relative_position_bias: true }));
    for (const f of ['preprocessor_config.json', 'model.safetensors']) await copyFile(path.join(from, f), path.join(dir, f));
    await assert.rejects(convertModel({ from: dir, out: path.join(dir, 'out') }), /missing tensor beit\.encoder\.layer\.0\.attention\.attention\.relative_position_bias\.relative_position_bias_table/);
  });
});

/** The entry's config.json as the hub holds it: its architecture fields, plus labels. */
function registryConfig(m: RegistryModel): Record<string, unknown> {
  const { type, summary: _, ...fields } = m.architecture;
  return { ...fields, architectures: [type], id2label: Object.fromEntries(Array.from({ length: m.num_labels }, (_v, i) => [String(i), `class ${i}`])) };
}

describe('models/registry.json', () => {
  const registry = loadModelRegistry();

  it('lists the BEiT checkpoints people use, data2vec-vision, ViT and DiT', () => {
    const ids = registry.models.map((m) => m.id);
    for (const id of [
      'microsoft/beit-base-patch16-224-pt22k-ft22k',
      'microsoft/beit-base-patch16-224',
      'microsoft/beit-base-patch16-384',
      'microsoft/beit-large-patch16-224',
      'microsoft/beit-large-patch16-384',
      'microsoft/beit-large-patch16-512',
      'facebook/data2vec-vision-base-ft1k',
      'google/vit-base-patch16-224',
      'microsoft/dit-base-finetuned-rvlcdip',
    ]) {
      assert.ok(ids.includes(id), id);
    }
  });

  for (const m of registry.models) {
    it(`${m.id}: its config parses into ${m.architecture.type} with input ${m.architecture.image_size}`, () => {
      const config = parseBeitConfig(registryConfig(m), `${m.id}/config.json`);
      assert.equal(familyOf(registryConfig(m), 'c').classifierClass, m.architecture.type);
      assert.equal(config.numLabels, m.num_labels);
      assert.equal(config.numTokens, (m.architecture.image_size / m.architecture.patch_size) ** 2 + 1);
      assert.deepEqual(m.preprocessing.resize, [config.imageSize, config.imageSize]);
    });
  }
});

/** A fixture folder as a hub repository holds it: two small git files and LFS safetensors. */
async function hubFiles(dir: string): Promise<FakeRepoFile[]> {
  return Promise.all(
    ['config.json', 'preprocessor_config.json', 'model.safetensors'].map(async (f) => ({ path: f, content: await readFile(path.join(dir, f)), lfs: f === 'model.safetensors' })),
  );
}

/** A registry entry served by the local hub with the tiny fixture of the same family and options. */
const SERVED: [string, string][] = [
  ['microsoft/beit-base-patch16-224', 'beit-64-patch16'],
  ['facebook/data2vec-vision-base-ft1k', 'data2vec-vision'],
  ['google/vit-base-patch16-224', 'vit'],
  ['microsoft/dit-base-finetuned-rvlcdip', 'beit-absolute-position'],
];

describe('download and convert each family from the hub (local stand-in on 127.0.0.1)', () => {
  for (const [modelId, fixtureName] of SERVED) {
    it(`${modelId} (served as the ${fixtureName} fixture) downloads, converts and runs exactly`, async () => {
      const entry = loadModelRegistry().models.find((m) => m.id === modelId);
      assert.ok(entry);
      const dir = path.join(FAMILIES_DIR, fixtureName);
      // The fixture must have the entry's options (the registry test above checks the full-size config).
      const tiny = parseBeitConfig(readJson(path.join(dir, 'config.json'))).architecture;
      const full = parseBeitConfig(registryConfig(entry)).architecture;
      assert.deepEqual(tiny, full);
      const hub = await startFakeHub({ repoId: modelId, files: await hubFiles(dir) });
      try {
        const cacheDir = await tempDir('beit-family-hub-');
        const downloaded = await downloadModel({ modelId, cacheDir, endpoint: hub.url });
        assert.equal(downloaded.weights, 'model.safetensors');
        const out = await tempDir('beit-family-hub-model-');
        await convertModel({ from: downloaded.dir, out, source: { modelId } });
        const model = await BeitModel.load(out, { verifier: false });
        try {
          const expected = readJson(path.join(dir, 'expected.json'));
          const bytes = readFileSync(path.join(dir, 'pixel_values.bin'));
          const pixels = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
          assert.ok(maxAbsDiff(await model.logits(pixels, 1), expected.raw_input_check.logits) <= 1e-4);
          assert.match(model.modelId, new RegExp(`^${modelId.replace('/', '\\/')}@`));
        } finally {
          await model.dispose();
        }
      } finally {
        await hub.close();
      }
    });
  }
});

describe('the built CLI on every family', () => {
  const run = promisify(execFile);
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [CLI, ...args], { timeout: 120_000, env: { ...process.env, ...env } });
  const images = (expected: { images: { file: string }[] }) => expected.images.map((i) => path.resolve(__dirname, '..', 'fixtures', 'beit-tiny', 'images', i.file));

  for (const name of ['beit-shared-bias', 'beit-absolute-position', 'beit-cls-pooling', 'beit-no-layer-scale-48', 'beit-64-patch16', 'data2vec-vision', 'vit']) {
    it(`${name}: convert --from, then classify --json gives the reference top-1`, async () => {
      assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
      const dir = path.join(FAMILIES_DIR, name);
      const out = await tempDir('beit-family-cli-');
      await cli(['convert', '--from', dir, '--out', out]);
      const expected = readJson(path.join(dir, 'expected.json'));
      const { stdout } = await cli(['classify', '--model', out, '--top-k', '1', '--json', ...images(expected)]);
      const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
      expected.images.forEach((ref: { argmax: number; top1_prob: number }, i: number) => {
        assert.equal(lines[i].top[0].index, ref.argmax);
        assert.ok(Math.abs(lines[i].top[0].score - ref.top1_prob) <= 1e-4);
      });
    });
  }

  it('download --model-id google/vit-base-patch16-224 (local hub) converts into the cache, and explain --out renders it', async () => {
    const modelId = 'google/vit-base-patch16-224';
    const dir = path.join(FAMILIES_DIR, 'vit');
    const hub = await startFakeHub({ repoId: modelId, files: await hubFiles(dir) });
    try {
      const cacheDir = await tempDir('beit-family-cli-cache-');
      const { stdout } = await cli(['download', '--model-id', modelId, '--cache-dir', cacheDir], { HF_ENDPOINT: hub.url });
      const model = stdout.trim().split('\n').pop()!;
      assert.ok(existsSync(path.join(model, 'model.onnx')), model);
      const expected = readJson(path.join(dir, 'expected.json'));
      const png = path.join(cacheDir, 'overlay.png');
      const explained = JSON.parse((await cli(['explain', '--model', model, '--json', '--out', png, images(expected)[0]])).stdout);
      assert.equal(explained.top[0].index, expected.images[0].argmax);
      assert.ok((await readFile(png)).subarray(1, 4).equals(Buffer.from('PNG')));
    } finally {
      await hub.close();
    }
  });
});
