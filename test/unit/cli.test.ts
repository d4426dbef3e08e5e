import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BeitModel } from '../../src/core/beitModel';
import { decodeImage } from '../../src/core/image';
import { GraphBuilder } from '../../src/core/onnx/graphBuilder';
import { startFakeHub } from '../helpers/fakeHub';
import { convertedTinyModel, expected, FIXTURE_DIR, FIXTURE_IMAGES, maxAbsDiff, rawPixelValues, tempDir, bmpBytes } from '../helpers/fixtures';

/**
 * Runs the built CLI (dist/cli.js, as users get it) so these tests cover the bundle, not just the
 * sources. `npm test` builds before running the unit tests.
 */
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const run = promisify(execFile);

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A user error: exit non-zero and exactly one error line (the last on stderr; progress lines may
 * precede it) naming the file and matching the problem.
 */
function assertOneLineError(r: { code: number; stderr: string }, file: string, problem: RegExp): void {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('beit-lens:'));
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').pop(), lines[0]);
  assert.ok(lines[0].includes(file), `"${lines[0]}" should name ${file}`);
  assert.match(lines[0], problem);
}

describe('beit-lens CLI (built bundle)', () => {
  let model: string;
  before(async () => {
    assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
    model = await convertedTinyModel();
  });

  it('convert reads pytorch_model.bin and writes the documented interface', async () => {
    const hf = await tempDir();
    for (const f of ['config.json', 'preprocessor_config.json', 'pytorch_model.bin']) await copyFile(path.join(FIXTURE_DIR, f), path.join(hf, f));
    const out = path.join(await tempDir(), 'converted');
    const r = await cli(['convert', '--from', hf, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['model.onnx', 'model.logits.onnx', 'config.json', 'preprocessor_config.json', 'beit-lens.json']) assert.ok(existsSync(path.join(out, f)), f);
    const m = await BeitModel.load(out);
    try {
      assert.ok(maxAbsDiff(await m.logits(rawPixelValues(), 1), expected.raw_input_check.logits) <= 1e-4);
    } finally {
      await m.dispose();
    }
  });

  it('classify --json prints one line per image in the documented schema, errors included', async () => {
    const images = ['gradient_640x480.jpg', 'alpha_300x200.png'].map((f) => path.join(FIXTURE_IMAGES, f));
    const missing = path.join(FIXTURE_IMAGES, 'missing.png');
    const r = await cli(['classify', '--model', model, '--json', '--top-k', '3', images[0], missing, images[1]]);
    assert.equal(r.code, 1, 'a failed image makes the exit code non-zero');
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.equal(lines[1].image, missing);
    assert.match(lines[1].error, /not found/);
    for (const [i, file] of [[0, images[0]], [2, images[1]]] as const) {
      const ref = expected.images.find((e: any) => images.includes(path.join(FIXTURE_DIR, e.file)) && path.join(FIXTURE_DIR, e.file) === file);
      assert.equal(lines[i].image, file);
      assert.deepEqual(Object.keys(lines[i]), ['image', 'top']);
      assert.deepEqual(lines[i].top.map((p: any) => p.index), ref.top5.slice(0, 3).map((p: any) => p.index));
      assert.deepEqual(lines[i].top.map((p: any) => p.label), ref.top5.slice(0, 3).map((p: any) => p.label));
      assert.ok(maxAbsDiff(lines[i].top.map((p: any) => p.score), ref.top5.slice(0, 3).map((p: any) => p.prob)) <= 1e-5);
    }
  });

  it('preprocess writes exactly the reference tensor (pixel_values_0.bin)', async () => {
    const out = path.join(await tempDir(), 'x.bin');
    const r = await cli(['preprocess', '--model', FIXTURE_DIR, '--out', out, path.join(FIXTURE_DIR, expected.raw_input_check.source_image)]);
    assert.equal(r.code, 0, r.stderr);
    const ours = await readFile(out);
    const ref = await readFile(path.join(FIXTURE_DIR, 'pixel_values_0.bin'));
    assert.equal(ours.length, ref.length);
    const a = new Float32Array(ours.buffer, ours.byteOffset, ours.length / 4);
    assert.ok(maxAbsDiff(a, rawPixelValues()) <= 1e-6);
  });

  it('explain --json gives the rollout, patch grid and legend, and --out writes a PNG overlay', async () => {
    const dir = await tempDir();
    const image = path.join(FIXTURE_DIR, expected.images[0].file);
    for (const overlay of ['rollout', 'patches', 'class']) {
      const png = path.join(dir, `${overlay}.png`);
      // The fixture's rollout reference reads the CLS row; this model mean-pools, so the default would read the patch rows.
      const r = await cli(['explain', '--model', model, '--json', '--overlay', overlay, '--out', png, '--class', '3', '--rollout-from', 'cls', image]);
      assert.equal(r.code, 0, r.stderr);
      const e = JSON.parse(r.stdout);
      assert.ok(maxAbsDiff(e.rollout.map.flat(), expected.images[0].attention_rollout.diagnostic_only_row_normalised_variant_14x14.flat()) <= 1e-3);
      assert.deepEqual(e.patches.argmax, expected.images[0].per_patch.argmax_grid_14x14);
      const shares = e.patches.legend.reduce((s: number, l: any) => s + l.share, 0);
      assert.ok(Math.abs(shares - 1) < 1e-9);
      assert.equal(e.classHeatmap.index, 3);
      assert.equal(e.classHeatmap.label, 'crème brûlée, burnt cream');
      assert.ok(Math.abs(e.classHeatmap.logits[0][0] - expected.images[0].per_patch.patch0_logits[3]) <= 1e-4);
      const decoded = await decodeImage(png);
      // 512x384 of image, then the legend strip (its pixels are checked in legendStrip.test.ts).
      assert.equal(decoded.width, 512);
      assert.ok(decoded.height > 384 && decoded.height < 384 + 160, `height ${decoded.height}`);
    }
  });

  it('doctor reports providers tried and the model', async () => {
    const r = await cli(['doctor', '--model', model, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.model.ok, true);
    assert.equal(report.model.provider, 'cpu');
    assert.ok(report.model.attempts.some((a: any) => a.provider === 'cpu' && a.ok));
    assert.equal(report.model.numLabels, 10);
  });

  it('download fetches from HF_ENDPOINT, converts, and classifies with the result', async () => {
    const files = await Promise.all(
      ['config.json', 'preprocessor_config.json', 'pytorch_model.bin'].map(async (p) => ({ path: p, content: await readFile(path.join(FIXTURE_DIR, p)), lfs: p.endsWith('.bin') })),
    );
    const hub = await startFakeHub({ repoId: 'microsoft/beit-base-patch16-224-pt22k-ft22k', files });
    try {
      const cache = await tempDir();
      const env = { HF_ENDPOINT: hub.url, BEIT_LENS_CACHE: cache };
      const r = await cli(['download'], env);
      assert.equal(r.code, 0, r.stderr);
      const dir = r.stdout.trim();
      assert.ok(existsSync(path.join(dir, 'model.logits.onnx')));
      // classify without --model uses the cached conversion and needs no network.
      await hub.close();
      const c = await cli(['classify', '--json', path.join(FIXTURE_DIR, expected.images[0].file)], env);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(JSON.parse(c.stdout).top[0].index, expected.images[0].top5[0].index);
    } finally {
      await hub.close().catch(() => undefined);
    }
  });

  it('offline, classify without a model says so in one line and shows the tiny-model pipeline', async () => {
    const r = await cli(['classify', path.join(FIXTURE_DIR, expected.images[0].file)], { HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}`, BEIT_LENS_CACHE: await tempDir() });
    assert.notEqual(r.code, 0);
    const last = r.stderr.trim().split('\n').pop() ?? '';
    assert.match(last, /offline\?.*node dist\/cli.js convert --from test\/fixtures\/beit-tiny/);
  });

  describe('bad input: one line naming the file, non-zero exit', () => {
    it('zero-byte and non-image files', async () => {
      const dir = await tempDir();
      const empty = path.join(dir, 'empty.jpg');
      const text = path.join(dir, 'notes.png');
      await writeFile(empty, '');
      await writeFile(text, 'hello, not an image');
      for (const f of [empty, text]) assertOneLineError(await cli(['classify', '--model', model, f]), f, /file is empty|not a recognised image/);
    });

    it('a missing model folder', async () => {
      const missing = path.join(await tempDir(), 'nope');
      assertOneLineError(await cli(['classify', '--model', missing, 'x.png']), missing, /not found/);
    });

    it('a truncated model.onnx', async () => {
      const dir = await tempDir();
      for (const f of ['config.json', 'preprocessor_config.json', 'model.onnx']) await copyFile(path.join(model, f), path.join(dir, f));
      await truncate(path.join(dir, 'model.onnx'), 5000);
      assertOneLineError(await cli(['classify', '--model', dir, path.join(FIXTURE_IMAGES, 'gray_256x256.png')]), path.join(dir, 'model.onnx'), /could not load/);
    });

    it('an ONNX file that is not ours (wrong input name)', async () => {
      const dir = await tempDir();
      for (const f of ['config.json', 'preprocessor_config.json']) await copyFile(path.join(model, f), path.join(dir, f));
      // An Identity graph with input "x": a valid ONNX model with the wrong interface.
      const g = new GraphBuilder('not-beit');
      g.output('logits', g.input('x', { elemType: 'float32', dims: [1, 10] }), { elemType: 'float32', dims: [1, 10] });
      await writeFile(path.join(dir, 'model.onnx'), g.encode({ opset: 17 }));
      assertOneLineError(await cli(['classify', '--model', dir, path.join(FIXTURE_IMAGES, 'gray_256x256.png')]), path.join(dir, 'model.onnx'), /not a BEiT Lens model: expected input pixel_values/);
    });

    it('a model whose config disagrees with the graph (wrong shape)', async () => {
      const dir = await tempDir();
      for (const f of ['preprocessor_config.json', 'model.logits.onnx', 'model.weights']) await copyFile(path.join(model, f), path.join(dir, f));
      const config = JSON.parse(await readFile(path.join(model, 'config.json'), 'utf8'));
      config.id2label = Object.fromEntries([...Array(12).keys()].map((k) => [String(k), `l${k}`]));
      await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
      assertOneLineError(await cli(['classify', '--model', dir, path.join(FIXTURE_IMAGES, 'gray_256x256.png')]), 'model.logits.onnx', /logits \[1,10\], expected \[1,12\]/);
    });

    it('a config without id2label', async () => {
      const dir = await tempDir();
      await mkdir(dir, { recursive: true });
      for (const f of ['preprocessor_config.json', 'model.safetensors']) await copyFile(path.join(FIXTURE_DIR, f), path.join(dir, f));
      const config = JSON.parse(await readFile(path.join(FIXTURE_DIR, 'config.json'), 'utf8'));
      delete config.id2label;
      await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
      assertOneLineError(await cli(['convert', '--from', dir, '--out', path.join(dir, 'out')]), path.join(dir, 'config.json'), /config has no id2label/);
    });

    it('weights with a wrong-shape tensor', async () => {
      const { readSafetensors, writeSafetensors } = await import('../../src/core/weights/safetensors');
      const dir = await tempDir();
      for (const f of ['config.json', 'preprocessor_config.json']) await copyFile(path.join(FIXTURE_DIR, f), path.join(dir, f));
      const sd = await readSafetensors(path.join(FIXTURE_DIR, 'model.safetensors'));
      sd.set('beit.pooler.layernorm.weight', { dtype: 'float32', shape: [31], data: new Float32Array(31) });
      await writeSafetensors(path.join(dir, 'model.safetensors'), sd);
      assertOneLineError(await cli(['convert', '--from', dir, '--out', path.join(dir, 'out')]), 'model.safetensors', /beit\.pooler\.layernorm\.weight.*\[31\].*\[32\]/);
    });

    it('an image over the pixel limit (a PNG header declaring 100000x100000)', async () => {
      const { encodePng } = await import('../../src/core/image');
      const { crc32 } = await import('node:zlib');
      const dir = await tempDir();
      const bomb = path.join(dir, 'bomb.png');
      const png = Buffer.from(await encodePng(new Uint8Array(3), 1, 1, 3));
      // IHDR data starts at byte 16 (8 signature + 4 length + 4 type); its CRC follows the 13 data bytes.
      png.writeUInt32BE(100_000, 16);
      png.writeUInt32BE(100_000, 20);
      png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
      await writeFile(bomb, png);
      assertOneLineError(await cli(['classify', '--model', model, bomb]), bomb, /pixel|too large/i);
    });
  });
});

/** #17: every message the CLI prints for a user's mistake is one line saying what to do. */
describe('beit-lens CLI messages (built bundle)', () => {
  let model: string;
  const image = path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg');
  before(async () => {
    assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
    model = await convertedTinyModel();
  });

  /** Exit code 1, nothing on stdout, and stderr exactly this one line. */
  function assertExactError(r: { code: number; stdout: string; stderr: string }, line: string): void {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${line}\n`);
  }

  it('argument errors are one line pointing at the command help, not the whole help', async () => {
    assertExactError(await cli(['classify', '--top-k', '0', image]), "beit-lens: option '--top-k <k>' argument '0' is invalid. --top-k must be a positive integer; see `beit-lens classify --help`");
    assertExactError(await cli(['classify']), "beit-lens: missing required argument 'images'; see `beit-lens classify --help`");
    assertExactError(await cli(['explain', '--frobnicate', image]), "beit-lens: unknown option '--frobnicate'; see `beit-lens explain --help`");
    assertExactError(await cli(['scan', '--top-k', '-3', 'x']), "beit-lens: option '--top-k <k>' argument '-3' is invalid. --top-k must be a positive integer; see `beit-lens scan --help`");
    assertExactError(await cli(['convert', '--out', 'x']), "beit-lens: required option '--from <dir>' not specified; see `beit-lens convert --help`");
    assertExactError(await cli(['clasify', image]), "beit-lens: unknown command 'clasify' (Did you mean classify?); see `beit-lens --help`");
    // --help itself still prints the whole help, on stdout, with exit code 0.
    const help = await cli(['classify', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: beit-lens classify/);
  });

  it('a file --out in a missing folder names the folder, before any model work, and writes nothing', async () => {
    const missing = path.join(await tempDir(), 'no-such-folder');
    for (const [args, file] of [
      [['explain', '--model', model, '--out', path.join(missing, 'overlay.png'), image], path.join(missing, 'overlay.png')],
      [['preprocess', '--model', model, '--out', path.join(missing, 'x.bin'), image], path.join(missing, 'x.bin')],
      [['scan', '--model', model, '--out', path.join(missing, 'results.jsonl'), FIXTURE_IMAGES], path.join(missing, 'results.jsonl')],
    ] as const) {
      assertExactError(await cli([...args]), `beit-lens: ${file}: cannot write it: the folder ${missing} does not exist (create it first)`);
    }
    assert.ok(!existsSync(missing));
    // A file where the folder should be is named too.
    assertExactError(
      await cli(['explain', '--model', model, '--out', path.join(image, 'overlay.png'), image]),
      `beit-lens: ${path.join(image, 'overlay.png')}: cannot write it: ${image} is a file, not a folder`,
    );
  });

  it('convert --from a folder that is not a Hugging Face model says so and what one holds', async () => {
    const notModel = await tempDir();
    await writeFile(path.join(notModel, 'README.md'), 'not a model');
    assertExactError(
      await cli(['convert', '--from', notModel, '--out', path.join(notModel, 'out')]),
      `beit-lens: ${notModel}: not a Hugging Face model folder: it has no config.json (one holds config.json, preprocessor_config.json and model.safetensors or pytorch_model.bin)`,
    );
    const missing = path.join(notModel, 'nope');
    assertExactError(await cli(['convert', '--from', missing, '--out', path.join(notModel, 'out')]), `beit-lens: ${missing}: folder not found`);
    assert.ok(!existsSync(path.join(notModel, 'out')));
  });

  it('a .bmp named on the command line is refused, naming the file and the format', async () => {
    const bmp = path.join(await tempDir(), 'photo.bmp');
    await writeFile(bmp, bmpBytes());
    assertExactError(await cli(['classify', '--model', model, bmp]), `beit-lens: ${bmp}: BMP (the bundled libvips has no BMP decoder) is not supported; supported formats: JPEG, PNG, GIF, WebP, TIFF, AVIF`);
  });

  it('--provider cuda where CUDA cannot start says it fell back and why, in one line', async () => {
    const { ModelSession } = await import('../../src/core/backend/onnxRuntime');
    // What this machine does with CUDA, asked of onnxruntime directly, so the test holds with or without a GPU.
    const probe = await ModelSession.create(path.join(model, 'model.logits.onnx'), { provider: 'cuda' });
    const cudaWorks = probe.provider === 'cuda';
    const reason = probe.attempts.find((a) => a.provider === 'cuda')?.reason;
    await probe.release();
    const r = await cli(['classify', '--model', model, '--json', '--provider', 'cuda', image]);
    const cpu = await cli(['classify', '--model', model, '--json', '--provider', 'cpu', image]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cpu.stderr, '');
    if (cudaWorks) {
      assert.equal(r.stderr, '');
    } else {
      assert.ok(reason);
      assert.equal(r.stderr, `warning: --provider cuda is not available: ${reason}; running on the CPU instead (details: beit-lens doctor --provider cuda)\n`);
      assert.equal(r.stdout, cpu.stdout, 'the fallback is the CPU provider');
    }
    // The default (auto) falls back silently: that is what auto means.
    assert.equal((await cli(['classify', '--model', model, image])).stderr, '');
  });

  it('--provider webgpu prints no Node deprecation warning (DEP0005 came from decoding the graph)', async () => {
    const r = await cli(['classify', '--model', model, '--json', '--top-k', '3', '--provider', 'webgpu', image]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /DEP0005|DeprecationWarning|Buffer\(\) is deprecated/);
    assert.doesNotMatch(r.stderr, /warning: --provider webgpu is not available/, 'this machine has a Vulkan adapter (lavapipe)');
    const cpu = JSON.parse((await cli(['classify', '--model', model, '--json', '--top-k', '3', '--provider', 'cpu', image])).stdout);
    const gpu = JSON.parse(r.stdout);
    assert.deepEqual(gpu.top.map((p: { index: number }) => p.index), cpu.top.map((p: { index: number }) => p.index));
  });
});
