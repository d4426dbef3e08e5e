/**
 * `train-head` and `label-issues` end to end on the tiny fixture model: a generated 3-class folder whose classes
 * differ by dominant colour (which even the random tiny model's embeddings separate), run through the CLI (from
 * source, with tsx), then the trained folder loaded like any other.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { onnx } from 'onnx-proto';
import { BeitModel } from '../../src/core/beitModel';
import { encodePng } from '../../src/core/image';
import { loadModelDirectory } from '../../src/core/modelDirectory';
import { ModelVerifier } from '../../src/core/modelIntegrity';
import { preprocessImage } from '../../src/core/preprocess';
import { loadProbeData } from '../../src/core/probe/probeData';
import { ResultStore } from '../../src/core/scan/resultStore';
import { seededUniform } from '../../src/core/seededRandom';
import { convertModel } from '../../src/core/convert';
import { readSafetensors } from '../../src/core/weights/safetensors';
import { convertedTinyModel, FIXTURE_DIR, removedAfterTests } from '../helpers/fixtures';
import { countingModel } from '../helpers/scanFixtures';

const run = promisify(execFile);
const tempDir = removedAfterTests();
const ROOT = path.resolve(__dirname, '..', '..');

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'index.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      timeout: 300_000,
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Class names that are special in CSV and shells, kept verbatim as labels. */
const COLOURS: Array<{ name: string; rgb: [number, number, number] }> = [
  { name: 'blue, "sky"', rgb: [30, 60, 220] },
  { name: 'green $leaf', rgb: [40, 200, 50] },
  { name: 'red é', rgb: [220, 40, 30] },
];
const PER_CLASS = 12;

/** A 48x48 image of one dominant colour with seeded noise, so no two images are the same content. */
async function colourImage(rgb: [number, number, number], seed: number): Promise<Buffer> {
  const random = seededUniform(seed);
  const size = 48;
  const pixels = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    for (let c = 0; c < 3; c++) pixels[i * 3 + c] = Math.max(0, Math.min(255, Math.round(rgb[c] + (random() - 0.5) * 60)));
  }
  return encodePng(pixels, size, size, 3);
}

async function makeColourDataset(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const [c, colour] of COLOURS.entries()) {
    await mkdir(path.join(dir, colour.name), { recursive: true });
    for (let i = 0; i < PER_CLASS; i++) {
      const file = path.join(dir, colour.name, `img_${i}.png`);
      await writeFile(file, await colourImage(colour.rgb, 1000 * c + i + 1));
      files.push(file);
    }
  }
  return files;
}

/** An initializer's float values as the graph stores them, read with onnx-proto alone. */
function initializer(model: onnx.ModelProto, name: string): { dims: number[]; values: Float32Array } {
  const t = model.graph!.initializer!.find((i) => i.name === name);
  assert.ok(t, `initializer ${name}`);
  assert.equal(t.dataType, onnx.TensorProto.DataType.FLOAT);
  const raw = t.rawData!;
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  return { dims: t.dims!.map(Number), values: new Float32Array(copy.buffer) };
}

describe('beit-lens train-head', () => {
  let base: string;
  let work: string;
  let dataset: string;
  let out: string;
  let env: NodeJS.ProcessEnv;
  let report: {
    holdoutAccuracy: number;
    classes: Array<{ name: string; precision: number | null; recall: number | null; support: number }>;
    confusion: number[][];
    holdoutImages: number;
  };
  let trainStderr: string;
  let hfExport: string;

  before(async () => {
    base = await convertedTinyModel();
    work = await tempDir('probe-cli-');
    dataset = path.join(work, 'colours');
    await makeColourDataset(dataset);
    // One file that cannot be decoded: reported and skipped, never fatal.
    await writeFile(path.join(dataset, COLOURS[0].name, 'broken.png'), Buffer.from('not a png'));
    out = path.join(work, 'trained');
    env = { BEIT_LENS_CACHE: path.join(work, 'cache') };
    hfExport = path.join(work, 'hf');
    const r = await cli(
      ['train-head', dataset, '--model', base, '--out', out, '--holdout', '0.34', '--seed', '3', '--workers', '0', '--cache', path.join(work, 'scan.log'), '--json', '--export-hf', hfExport, '--hf-base', FIXTURE_DIR],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    report = JSON.parse(r.stdout);
    trainStderr = r.stderr;
  });

  it('reaches >= 95% holdout accuracy on classes that differ by colour, with per-class metrics and the confusion matrix', () => {
    assert.ok(report.holdoutAccuracy >= 0.95, `holdout accuracy ${report.holdoutAccuracy}`);
    assert.deepEqual(report.classes.map((c) => c.name), COLOURS.map((c) => c.name));
    // round(0.34 · 12) = 4 per class; the broken file is not a sample.
    assert.equal(report.holdoutImages, 12);
    for (const [c, cls] of report.classes.entries()) {
      assert.equal(cls.support, 4);
      assert.equal(report.confusion[c].reduce((a, b) => a + b, 0), 4);
    }
    const correct = report.confusion.reduce((a, row, c) => a + row[c], 0);
    assert.equal(correct / 12, report.holdoutAccuracy);
    assert.match(trainStderr, /broken\.png: skipped/);
  });

  it('writes a folder that passes integrity verification, shares the weights file and records its provenance', async () => {
    const directory = await loadModelDirectory(out);
    const integrity = await new ModelVerifier({ recordDir: path.join(work, 'records') }).verify(directory);
    assert.equal(integrity.state, 'verified');
    const baseDirectory = await loadModelDirectory(base);
    const probe = directory.manifest!.probe!;
    assert.equal(probe.baseModelId, baseDirectory.modelId);
    assert.equal(probe.holdoutAccuracy, report.holdoutAccuracy);
    assert.equal(probe.images, COLOURS.length * PER_CLASS);
    assert.match(probe.datasetSha256, /^[0-9a-f]{64}$/);
    assert.ok(!Number.isNaN(Date.parse(probe.trainedAt)));
    assert.notEqual(directory.modelId, baseDirectory.modelId);
    const [a, b] = await Promise.all([stat(path.join(out, 'model.weights')), stat(path.join(base, 'model.weights'))]);
    assert.equal(a.ino, b.ino, 'model.weights is a hard link to the base folder');
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.id2label, { 0: COLOURS[0].name, 1: COLOURS[1].name, 2: COLOURS[2].name });
    assert.equal(config.num_labels, 3);
  });

  it('classify on the trained folder returns the class names, with logits = embedding·W + b', async () => {
    const trained = await BeitModel.load(out);
    const baseModel = await BeitModel.load(base);
    try {
      assert.deepEqual(trained.labels, COLOURS.map((c) => c.name));
      const graph = onnx.ModelProto.decode(await readFile(path.join(out, 'model.logits.onnx')));
      const w = initializer(graph, 'classifier_wT');
      const b = initializer(graph, 'classifier_b');
      assert.deepEqual(w.dims, [32, 3]);
      for (const [c, colour] of COLOURS.entries()) {
        const image = path.join(work, `probe_${c}.png`);
        await writeFile(image, await colourImage(colour.rgb, 99_000 + c));
        const [top] = await trained.classify(image, 3);
        assert.equal(top.label, colour.name);
        const [embedded] = await baseModel.embedFiles([image]);
        const { pixelValues } = await preprocessImage(image, trained.directory.preprocessor);
        const { logits } = await trained.logitsAndEmbeddings(pixelValues, 1);
        const e = embedded.embedding!;
        for (let k = 0; k < 3; k++) {
          let expected = b.values[k];
          for (let j = 0; j < 32; j++) expected += e[j] * w.values[j * 3 + k];
          assert.ok(Math.abs(logits[k] - expected) <= 1e-4, `class ${k}: graph ${logits[k]}, embedding·W+b ${expected}`);
        }
      }
      // explain reads the same head per patch: its patch maps have the new classes.
      const explanation = await trained.explain(path.join(work, 'probe_2.png'));
      assert.equal(explanation.numLabels, 3);
      assert.equal(explanation.top[0].label, COLOURS[2].name);
    } finally {
      await trained.dispose();
      await baseModel.dispose();
    }
  });

  it('--export-hf writes a Hugging Face folder that our converter turns back into the same logits', async () => {
    const config = JSON.parse(await readFile(path.join(hfExport, 'config.json'), 'utf8'));
    assert.deepEqual(config.id2label, { 0: COLOURS[0].name, 1: COLOURS[1].name, 2: COLOURS[2].name });
    assert.deepEqual(config.label2id, { [COLOURS[0].name]: 0, [COLOURS[1].name]: 1, [COLOURS[2].name]: 2 });
    assert.equal(config.num_labels, 3);
    const weights = await readSafetensors(path.join(hfExport, 'model.safetensors'));
    const original = await readSafetensors(path.join(FIXTURE_DIR, 'model.safetensors'));
    assert.deepEqual(weights.get('classifier.weight')!.shape, [3, 32]);
    assert.deepEqual(weights.get('classifier.bias')!.shape, [3]);
    assert.deepEqual([...weights.keys()].sort(), [...original.keys()].sort());
    assert.deepEqual(weights.get('beit.encoder.layer.0.output.dense.weight')!.data, original.get('beit.encoder.layer.0.output.dense.weight')!.data);
    const converted = path.join(work, 'hf-converted');
    await convertModel({ from: hfExport, out: converted });
    const [a, b] = await Promise.all([BeitModel.load(converted), BeitModel.load(out)]);
    try {
      for (const [c, colour] of COLOURS.entries()) {
        const { pixelValues } = await preprocessImage(await colourImage(colour.rgb, 77_000 + c), a.directory.preprocessor);
        const [x, y] = await Promise.all([a.logits(pixelValues, 1), b.logits(pixelValues, 1)]);
        for (let k = 0; k < 3; k++) assert.ok(Math.abs(x[k] - y[k]) <= 1e-5, `class ${k}: converted ${x[k]}, trained folder ${y[k]}`);
      }
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it('a second run reuses the cached embeddings: no image is decoded or run again', async () => {
    const model = await BeitModel.load(base);
    const counting = countingModel(model, { embed: true });
    const store = await ResultStore.open(path.join(work, 'scan.log'));
    try {
      const { features } = await loadProbeData(dataset, { model: counting, store, pool: { workers: 0 } });
      assert.equal(counting.images, 0);
      assert.equal(features.summary.cached, COLOURS.length * PER_CLASS);
      assert.equal(features.x.rows, COLOURS.length * PER_CLASS);
      assert.equal(features.failed.length, 1);
    } finally {
      await store.close();
      await model.dispose();
    }
  });

  it('--export-hf refuses a Hugging Face folder of another checkpoint, and needs --hf-base', async () => {
    const other = path.join(FIXTURE_DIR, '..', 'families', 'vit');
    const r = await cli(['train-head', dataset, '--model', base, '--out', path.join(work, 'trained-2'), '--workers', '0', '--cache', path.join(work, 'scan.log'), '--export-hf', path.join(work, 'hf-2'), '--hf-base', other], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /vit.*not the checkpoint the base model was converted from/);
    const alone = await cli(['train-head', dataset, '--model', base, '--out', path.join(work, 'trained-3'), '--export-hf', path.join(work, 'hf-3')], env);
    assert.notEqual(alone.code, 0);
    assert.match(alone.stderr, /--export-hf and --hf-base go together/);
  });

  it('refuses a one-class folder, naming it', async () => {
    const one = path.join(work, 'one');
    await mkdir(path.join(one, 'only'), { recursive: true });
    await copyFile(path.join(dataset, COLOURS[0].name, 'img_0.png'), path.join(one, 'only', 'a.png'));
    const r = await cli(['train-head', one, '--model', base, '--out', path.join(work, 'never'), '--no-cache', '--workers', '0'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /one.*only one class/);
  });
});

describe('beit-lens label-issues', () => {
  it('ranks transplanted wrong-class images first and suggests their true class', async () => {
    const base = await convertedTinyModel();
    const work = await tempDir('probe-issues-');
    const dataset = path.join(work, 'colours');
    await makeColourDataset(dataset);
    // Two red images moved into the blue folder, one green into red: their given labels are wrong.
    const planted = [
      { from: path.join(dataset, COLOURS[2].name, 'img_0.png'), to: path.join(dataset, COLOURS[0].name, 'planted_red_0.png'), truth: COLOURS[2].name },
      { from: path.join(dataset, COLOURS[2].name, 'img_1.png'), to: path.join(dataset, COLOURS[0].name, 'planted_red_1.png'), truth: COLOURS[2].name },
      { from: path.join(dataset, COLOURS[1].name, 'img_0.png'), to: path.join(dataset, COLOURS[2].name, 'planted_green_0.png'), truth: COLOURS[1].name },
    ];
    for (const p of planted) await rename(p.from, p.to);
    const r = await cli(['label-issues', dataset, '--model', base, '--json', '--workers', '0', '--cache', path.join(work, 'scan.log')], { BEIT_LENS_CACHE: path.join(work, 'cache') });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { image: string; givenLabel: string; suggestedLabel: string; selfConfidence: number; rank: number });
    assert.equal(lines.length, COLOURS.length * PER_CLASS);
    assert.deepEqual(lines.map((l) => l.rank), lines.map((_, i) => i + 1));
    for (let i = 1; i < lines.length; i++) assert.ok(lines[i].selfConfidence >= lines[i - 1].selfConfidence);
    const top = lines.slice(0, planted.length);
    assert.deepEqual(new Set(top.map((l) => path.resolve(l.image))), new Set(planted.map((p) => path.resolve(p.to))));
    for (const l of top) assert.equal(l.suggestedLabel, planted.find((p) => path.resolve(p.to) === path.resolve(l.image))!.truth);
    assert.match(r.stderr, /estimated share of wrong labels per class/);
  });
});
