/**
 * Model folders are untrusted too: configs with absurd dimensions, configs that disagree with each other,
 * weights with tensors missing, and ONNX files that are not ours (right input name, wrong shape or type).
 * Each is refused with a clear one-line message, quickly, and without allocating more than the files imply
 * (measured as peak RSS growth). The safetensors and pickle readers' hostile cases are in weights.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, copyFile, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { BeitLensError, type ErrorCode } from '../../src/core/errors';
import { GraphBuilder } from '../../src/core/onnx/graphBuilder';
import { readSafetensors, writeSafetensors } from '../../src/core/weights/safetensors';
import { convertedTinyModel, expected, FIXTURE_DIR, FIXTURE_IMAGES, maxAbsDiff, rawPixelValues, removedAfterTests } from '../helpers/fixtures';
import { MB, mb, measure } from '../helpers/memory';

/** The tiny fixture's weights are under 2 MB; nothing here may grow the process by more than this. */
const MEMORY_BOUND = 32 * MB;
const TIME_BOUND_MS = 2000;
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');

/** Temporary folders removed when the file's tests end. */
const tempDir = removedAfterTests();

const FIXTURE_CONFIG = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;

/** An HF folder: the fixture weights and preprocessor config, with `config` overriding fields of config.json. */
async function hfFolder(config: Record<string, unknown>, preprocessor: Record<string, unknown> = {}): Promise<string> {
  const dir = await tempDir('beit-lens-hostile-hf-');
  await copyFile(path.join(FIXTURE_DIR, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  const pre = JSON.parse(await readFile(path.join(FIXTURE_DIR, 'preprocessor_config.json'), 'utf8'));
  await writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ ...pre, ...preprocessor }));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...FIXTURE_CONFIG, ...config }));
  return dir;
}

/** Runs `action`, which must fail with `code` and a one-line message matching `message`, within the time and memory bounds. */
async function assertRefused(action: () => Promise<unknown>, code: ErrorCode, message: RegExp): Promise<{ ms: number; peakRssGrowth: number }> {
  const measured = await measure(action);
  assert.ok(!measured.ok, 'expected a refusal, but it succeeded');
  const err = measured.error;
  assert.ok(err instanceof BeitLensError, `expected a BeitLensError, got ${(err as Error)?.stack ?? String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, message);
  assert.ok(!err.message.includes('\n'), 'one line');
  assert.ok(measured.ms < TIME_BOUND_MS, `took ${measured.ms.toFixed(0)} ms`);
  assert.ok(measured.peakRssGrowth < MEMORY_BOUND, `grew RSS by ${mb(measured.peakRssGrowth)}`);
  return measured;
}

describe('configs with absurd dimensions are refused before anything is allocated', () => {
  const absurd: { what: string; config: Record<string, unknown>; message: RegExp }[] = [
    // Before the fix this threw a RangeError ("Invalid typed array length: 4295098369") instead of a BeitLensError.
    { what: '4096 px in 16 px patches (256 per side)', config: { image_size: 4096, patch_size: 16 }, message: /image_size 4096 \/ patch_size 16 gives 256 patches per side; at most 64/ },
    // Before the fix this allocated 1 GB and spent 13 s computing a relative position index no weight matched.
    { what: '2048 px in 16 px patches (128 per side)', config: { image_size: 2048, patch_size: 16 }, message: /gives 128 patches per side/ },
    { what: '4096 px in 1 px patches', config: { image_size: 4096, patch_size: 1 }, message: /gives 4096 patches per side/ },
    { what: '32 heads over 64x64 patches', config: { image_size: 1024, patch_size: 16, num_attention_heads: 32 }, message: /32 heads over 4097 tokens need 537133088 attention values per layer/ },
    { what: 'a hidden size of 1e9', config: { hidden_size: 1e9 }, message: /hidden_size: Too big/i },
    { what: 'a million layers', config: { num_hidden_layers: 1_000_000 }, message: /num_hidden_layers: Too big/i },
    { what: 'a negative intermediate size', config: { intermediate_size: -3072 }, message: /intermediate_size: Too small/i },
    { what: 'a fractional patch size', config: { patch_size: 15.5 }, message: /patch_size/ },
  ];
  for (const c of absurd) {
    it(`convert refuses ${c.what} with CONFIG_INVALID`, async () => {
      const dir = await hfFolder(c.config);
      await assertRefused(() => convertModel({ from: dir, out: path.join(dir, 'out') }), 'CONFIG_INVALID', c.message);
      assert.equal(existsSync(path.join(dir, 'out')), false, 'nothing written');
    });
  }

  it('a converted folder whose config.json was edited to absurd sizes fails to load, before any session', async () => {
    const model = await convertedTinyModel();
    const dir = await tempDir('beit-lens-hostile-model-');
    for (const f of ['model.onnx', 'model.logits.onnx', 'preprocessor_config.json']) await copyFile(path.join(model, f), path.join(dir, f));
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...FIXTURE_CONFIG, image_size: 4096 }));
    await assertRefused(() => BeitModel.load(dir), 'CONFIG_INVALID', /config\.json: image_size 4096 \/ patch_size 16 gives 256 patches per side/);
  });

  it('the largest dimensions the schema allows are refused by the first weight that does not match, at the size of the file', async () => {
    const dir = await hfFolder({ hidden_size: 8192, num_attention_heads: 256, num_hidden_layers: 128, intermediate_size: 65536 });
    await assertRefused(() => convertModel({ from: dir, out: path.join(dir, 'out') }), 'WEIGHTS_INVALID', /tensor beit\.embeddings\.patch_embeddings\.projection\.weight has shape \[32,3,16,16\], expected \[8192,3,16,16\]/);
  });
});

describe('configs that disagree with each other', () => {
  it('a preprocessor producing 256x256 inputs for a 224 model is refused by convert and by load', async () => {
    const dir = await hfFolder({}, { size: 256 });
    await assertRefused(() => convertModel({ from: dir, out: path.join(dir, 'out') }), 'CONFIG_INVALID', /preprocessor_config\.json: produces 256x256 model inputs but config\.json has image_size 224/);

    // A converted folder edited afterwards: before the fix every batch failed with "RangeError: offset is out of bounds".
    const model = await convertedTinyModel();
    const edited = await tempDir('beit-lens-hostile-model-');
    for (const f of ['model.onnx', 'model.logits.onnx', 'model.weights', 'config.json']) await copyFile(path.join(model, f), path.join(edited, f));
    await writeFile(path.join(edited, 'preprocessor_config.json'), JSON.stringify({ size: 256, do_center_crop: false, resample: 2 }));
    await assertRefused(() => BeitModel.load(edited), 'CONFIG_INVALID', /produces 256x256 model inputs but config\.json has image_size 224/);
  });

  it('a centre crop to the model size after a larger resize is accepted (BeitImageProcessor defaults)', async () => {
    const model = await convertedTinyModel();
    const dir = await tempDir('beit-lens-crop-model-');
    for (const f of ['model.onnx', 'model.logits.onnx', 'model.weights', 'config.json']) await copyFile(path.join(model, f), path.join(dir, f));
    await writeFile(path.join(dir, 'preprocessor_config.json'), JSON.stringify({ size: 256, do_center_crop: true, crop_size: 224, resample: 2 }));
    const m = await BeitModel.load(dir);
    try {
      const [r] = await m.classifyFiles([path.join(FIXTURE_IMAGES, 'gray_256x256.png')]);
      assert.equal(r.top?.length, 5, r.error);
    } finally {
      await m.dispose();
    }
  });
});

describe('weights with tensors missing', () => {
  for (const name of ['beit.embeddings.patch_embeddings.projection.weight', 'beit.encoder.layer.1.attention.attention.relative_position_bias.relative_position_bias_table', 'beit.encoder.layer.0.lambda_1', 'classifier.weight']) {
    it(`convert names the missing ${name}`, async () => {
      const dir = await hfFolder({});
      const sd = await readSafetensors(path.join(dir, 'model.safetensors'));
      assert.ok(sd.delete(name), `the fixture has ${name}`);
      await writeSafetensors(path.join(dir, 'model.safetensors'), sd);
      await assertRefused(() => convertModel({ from: dir, out: path.join(dir, 'out') }), 'WEIGHTS_INVALID', new RegExp(`model\\.safetensors: missing tensor ${name.replace(/\./g, '\\.')}$`));
      assert.equal(existsSync(path.join(dir, 'out', 'model.onnx')), false);
    });
  }
});

describe('the external weights file', () => {
  async function copyOfModel(): Promise<string> {
    const model = await convertedTinyModel();
    const dir = await tempDir('beit-lens-weights-');
    for (const f of ['config.json', 'preprocessor_config.json', 'model.onnx', 'model.logits.onnx', 'model.weights', 'beit-lens.json']) await copyFile(path.join(model, f), path.join(dir, f));
    return dir;
  }

  it('missing, cut short or grown: load names the file and says to convert again', async () => {
    const missing = await copyOfModel();
    await rm(path.join(missing, 'model.weights'));
    await assertRefused(() => BeitModel.load(missing), 'MODEL_INVALID', /model\.weights is missing: the graphs keep their weights there \(convert the model again\)/);

    const cut = await copyOfModel();
    const size = (await stat(path.join(cut, 'model.weights'))).size;
    await truncate(path.join(cut, 'model.weights'), size - 1000);
    await assertRefused(() => BeitModel.load(cut), 'MODEL_INVALID', new RegExp(`model\\.weights is ${size - 1000} bytes, the manifest says ${size} \\(cut short or replaced`));

    const grown = await copyOfModel();
    await appendFile(path.join(grown, 'model.weights'), Buffer.alloc(10));
    await assertRefused(() => BeitModel.load(grown), 'MODEL_INVALID', new RegExp(`model\\.weights is ${size + 10} bytes, the manifest says ${size}`));
  });

  it('without a manifest onnxruntime still names the missing file; a model with its weights in-line needs none', async () => {
    const dir = await copyOfModel();
    await rm(path.join(dir, 'beit-lens.json'));
    await rm(path.join(dir, 'model.weights'));
    await assertRefused(() => BeitModel.load(dir), 'MODEL_INVALID', /model\.logits\.onnx: onnxruntime could not load the model \(its weights file model\.weights is missing \(.*model\.weights; convert the model again\)\)/);

    const plain = await tempDir('beit-lens-plain-');
    await convertModel({ from: FIXTURE_DIR, out: plain, plain: true });
    assert.equal(existsSync(path.join(plain, 'model.weights')), false);
    const m = await BeitModel.load(plain);
    try {
      const raw = expected.raw_input_check;
      assert.ok(maxAbsDiff(await m.logits(rawPixelValues(), 1), raw.logits) <= 1e-4);
    } finally {
      await m.dispose();
    }
  });
});

describe('ONNX files that are not ours', () => {
  let model: string;
  before(async () => {
    model = await convertedTinyModel();
  });

  /** A valid graph named like ours whose pixel_values input has the given type and shape (logits = the flattened input). */
  function foreignGraph(elemType: 'float32' | 'float16', dims: (number | string)[]): Uint8Array {
    const g = new GraphBuilder('not-beit');
    const x = g.input('pixel_values', { elemType, dims });
    g.output('logits', g.node('Flatten', [x]), { elemType, dims: [dims[0], 'features'] });
    return g.encode({ opset: 17 });
  }

  async function folderWith(graph: Uint8Array, file = 'model.logits.onnx'): Promise<string> {
    const dir = await tempDir('beit-lens-foreign-');
    for (const f of ['config.json', 'preprocessor_config.json', 'model.onnx', 'model.logits.onnx', 'model.weights']) await copyFile(path.join(model, f), path.join(dir, f));
    await writeFile(path.join(dir, file), graph);
    return dir;
  }

  const foreign: { what: string; type: 'float32' | 'float16'; dims: (number | string)[]; found: string }[] = [
    { what: 'a fixed [1,3,32,32] input', type: 'float32', dims: [1, 3, 32, 32], found: 'float32 [1,3,32,32]' },
    { what: 'a [batch,3,32,32] input', type: 'float32', dims: ['batch', 3, 32, 32], found: 'float32 [batch,3,32,32]' },
    { what: 'a fixed batch of 1 at the right size', type: 'float32', dims: [1, 3, 224, 224], found: 'float32 [1,3,224,224]' },
    { what: 'a float16 input', type: 'float16', dims: ['batch', 3, 224, 224], found: 'float16 [batch,3,224,224]' },
    { what: 'a 3-d input', type: 'float32', dims: ['batch', 3, 224], found: 'float32 [batch,3,224]' },
  ];
  for (const f of foreign) {
    it(`load refuses ${f.what}`, async () => {
      const dir = await folderWith(foreignGraph(f.type, f.dims));
      const expected = new RegExp(`model\\.logits\\.onnx: not a BEiT Lens model: input pixel_values is ${f.found.replace(/[[\]]/g, '\\$&')}, expected float32 \\[batch,3,224,224\\]`);
      await assertRefused(() => BeitModel.load(dir), 'MODEL_INVALID', expected);
    });
  }

  it('the explanation graph is checked the same way when it is first used', async () => {
    const dir = await folderWith(foreignGraph('float32', [1, 3, 32, 32]), 'model.onnx');
    const m = await BeitModel.load(dir);
    try {
      await assertRefused(() => m.explain(path.join(FIXTURE_IMAGES, 'gray_256x256.png')), 'MODEL_INVALID', /model\.onnx: not a BEiT Lens model: input pixel_values is float32 \[1,3,32,32\]/);
    } finally {
      await m.dispose();
    }
  });

  it('the built CLI says so in one line and exits non-zero', async () => {
    assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
    const dir = await folderWith(foreignGraph('float32', [1, 3, 32, 32]));
    const r = await promisify(execFile)(process.execPath, [CLI, 'classify', '--model', dir, path.join(FIXTURE_IMAGES, 'gray_256x256.png')]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^beit-lens: .*model\.logits\.onnx: not a BEiT Lens model: input pixel_values is float32 \[1,3,32,32\], expected float32 \[batch,3,224,224\]/);
  });
});
