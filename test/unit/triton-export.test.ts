import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { onnx } from 'onnx-proto';
import { parse as parseYaml } from 'yaml';
import { ModelSession } from '../../src/core/backend/onnxRuntime';
import { convertModel } from '../../src/core/convert';
import { BeitLensError } from '../../src/core/errors';
import { LOGITS_MODEL_FILE, WEIGHTS_FILE } from '../../src/core/modelDirectory';
import { loadPreprocessorConfig } from '../../src/core/preprocessorConfig';
import { preprocessImage } from '../../src/core/preprocess';
import { exportTritonRepository, KSERVE_MANIFEST_FILE, preferredBatchSizes, TritonExportOptions } from '../../src/core/serving/tritonRepository';
import { quote, toTextFormat } from '../../src/core/serving/protobufText';
import { expected, FIXTURE_DIR, fp16LogitTolerance, maxAbsDiff, rawPixelValues, removedAfterTests } from '../helpers/fixtures';

/**
 * `export-triton`. config.pbtxt is parsed by protobuf's own text-format parser (Python's google.protobuf.text_format,
 * Debian python3-protobuf) against Triton's model_config.proto (test/fixtures/triton/, compiled by protoc), and each
 * field is checked against Triton's model configuration documentation. The exported graph runs in a real
 * onnxruntime session from inside the repository and is checked against the PyTorch reference outputs.
 */

const run = promisify(execFile);
const tempDir = removedAfterTests();
const TRITON_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'triton');
const PYTHON = process.env.BEIT_LENS_PYTHON ?? '/usr/bin/python3';
const D = onnx.TensorProto.DataType;

/** The fixture's labels in logit order: id2label sorted by integer key. */
const fixtureLabels: string[] = (() => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const config = require(path.join(FIXTURE_DIR, 'config.json')) as { id2label: Record<string, string> };
  return Object.entries(config.id2label)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([, label]) => label);
})();

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Parsed = any;

/** config.pbtxt through protobuf's text-format parser, as JSON (proto field names; int64/uint64 as strings, per proto3 JSON). */
async function parseConfig(file: string): Promise<Parsed> {
  try {
    const { stdout } = await run(PYTHON, [path.join(TRITON_FIXTURES, 'parse_model_config.py'), file], { timeout: 60_000 });
    return JSON.parse(stdout);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`protobuf text-format parse of ${file} failed (needs protoc and python3-protobuf: scripts/install-system-deps.sh): ${e.stderr || e.message}`);
  }
}

const int64s = (dims: string[] | undefined) => (dims ?? []).map(Number);

/** The graph's declared inputs and outputs, read with onnx-proto: [name, Triton type, dims with -1 for symbolic]. */
async function graphInterface(file: string): Promise<{ inputs: [string, string, number[]][]; outputs: [string, string, number[]][] }> {
  const model = onnx.ModelProto.decode(await readFile(file));
  const describe = (v: onnx.IValueInfoProto): [string, string, number[]] => [
    v.name!,
    v.type!.tensorType!.elemType === D.FLOAT ? 'TYPE_FP32' : v.type!.tensorType!.elemType === D.FLOAT16 ? 'TYPE_FP16' : `elem ${v.type!.tensorType!.elemType}`,
    v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? -1 : Number(d.dimValue))),
  ];
  return { inputs: model.graph!.input!.map(describe), outputs: model.graph!.output!.map(describe) };
}

async function secondImagePixels(modelDir: string): Promise<Float32Array> {
  const config = await loadPreprocessorConfig(path.join(modelDir, 'preprocessor_config.json'));
  return (await preprocessImage(path.join(FIXTURE_DIR, expected.images[1].file), config)).pixelValues;
}

/** Logits and embeddings of a batch of 2 (pixel_values_0.bin, images[1]) from a real onnxruntime session on `graph`. */
async function runBatchOfTwo(graph: string, second: Float32Array): Promise<{ logits: Float32Array; pooled: Float32Array }> {
  const first = rawPixelValues();
  const batch = new Float32Array(first.length * 2);
  batch.set(first, 0);
  batch.set(second, first.length);
  const session = await ModelSession.create(graph, { provider: 'cpu' });
  try {
    const out = await session.run(batch, [2, 3, 224, 224], ['logits', 'pooled_output']);
    assert.deepEqual(out.logits.dims, [2, 10]);
    assert.deepEqual(out.pooled_output.dims, [2, 32]);
    return { logits: out.logits.data, pooled: out.pooled_output.data };
  } finally {
    await session.release();
  }
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BeitLensError, `not a BeitLensError: ${String(err)}`);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

describe('export-triton on the tiny fixture', () => {
  let source: string;
  before(async () => {
    source = await tempDir('beit-triton-src-');
    await convertModel({ from: FIXTURE_DIR, out: source });
  });
  const exportTo = async (options: Partial<TritonExportOptions> = {}) => {
    const out = path.join(await tempDir('beit-triton-repo-'), 'repo');
    const result = await exportTritonRepository({ model: source, out, ...options });
    return { out, result };
  };

  it('writes config.pbtxt that protobuf parses as a ModelConfig with every field Triton documents, batching on (defaults)', async () => {
    const { out, result } = await exportTo();
    const config = await parseConfig(path.join(out, 'beit', 'config.pbtxt'));
    // With max_batch_size > 0 Triton adds the batch dimension itself: dims leave it out (model configuration docs, "Maximum Batch Size").
    assert.deepEqual(Object.keys(config).sort(), ['dynamic_batching', 'input', 'instance_group', 'max_batch_size', 'name', 'output', 'platform']);
    assert.equal(config.name, 'beit');
    assert.equal(config.platform, 'onnxruntime_onnx');
    assert.equal(config.max_batch_size, 32);
    assert.deepEqual(config.input, [{ name: 'pixel_values', data_type: 'TYPE_FP32', dims: ['3', '224', '224'] }]);
    assert.deepEqual(config.output, [
      { name: 'logits', data_type: 'TYPE_FP32', dims: ['10'], label_filename: 'labels.txt' },
      { name: 'pooled_output', data_type: 'TYPE_FP32', dims: ['32'] },
    ]);
    assert.deepEqual(config.instance_group, [{ count: 1, kind: 'KIND_GPU' }]);
    assert.deepEqual(config.dynamic_batching, { preferred_batch_size: [4, 8, 16, 32], max_queue_delay_microseconds: '100' });
    // Every preferred size must be <= max_batch_size (Triton refuses the config otherwise).
    for (const size of config.dynamic_batching.preferred_batch_size) assert.ok(size >= 1 && size <= config.max_batch_size);
    assert.equal(result.weights, 'hard-linked');
    assert.deepEqual(result.files, ['beit/config.pbtxt', 'beit/labels.txt', 'beit/1/model.onnx/model.onnx', `beit/1/model.onnx/${WEIGHTS_FILE}`, KSERVE_MANIFEST_FILE, 'README.md']);
  });

  it("matches config.pbtxt to the exported graph's inputs and outputs exactly (names, datatypes, dims minus the symbolic batch)", async () => {
    const { out } = await exportTo();
    const config = await parseConfig(path.join(out, 'beit', 'config.pbtxt'));
    const graph = await graphInterface(path.join(out, 'beit', '1', 'model.onnx', 'model.onnx'));
    assert.deepEqual(graph.inputs, [['pixel_values', 'TYPE_FP32', [-1, 3, 224, 224]]]);
    for (const [name, type, dims] of [...graph.inputs, ...graph.outputs.filter(([n]) => config.output.some((o: Parsed) => o.name === n))]) {
      const declared = [...config.input, ...config.output].find((t: Parsed) => t.name === name);
      assert.ok(declared, `${name} is not in config.pbtxt`);
      assert.equal(declared.data_type, type, name);
      assert.equal(dims[0], -1, `${name}: the graph's batch dimension is symbolic`);
      assert.deepEqual(int64s(declared.dims), dims.slice(1), name);
    }
    assert.deepEqual(config.output.map((o: Parsed) => o.name).sort(), ['logits', 'pooled_output']);
    assert.ok(config.output.every((o: Parsed) => graph.outputs.some(([n]) => n === o.name)));
  });

  it('--max-batch 0: no batching, every dims includes the batch dimension (-1), no dynamic batcher; --kind cpu --instances 3', async () => {
    const { out } = await exportTo({ maxBatch: 0, kind: 'cpu', instances: 3 });
    const config = await parseConfig(path.join(out, 'beit', 'config.pbtxt'));
    // proto3 JSON leaves out zero values: max_batch_size 0 is absent, which is what Triton reads as "no batching".
    assert.equal(config.max_batch_size ?? 0, 0);
    assert.equal(config.dynamic_batching, undefined);
    assert.deepEqual(int64s(config.input[0].dims), [-1, 3, 224, 224]);
    assert.deepEqual(config.output.map((o: Parsed) => [o.name, int64s(o.dims)]), [
      ['logits', [-1, 10]],
      ['pooled_output', [-1, 32]],
    ]);
    assert.deepEqual(config.instance_group, [{ count: 3, kind: 'KIND_CPU' }]);
    assert.equal(config.optimization, undefined);
    const text = await readFile(path.join(out, 'beit', 'config.pbtxt'), 'utf8');
    assert.match(text, /^max_batch_size: 0$/m);
  });

  it('--tensorrt-fp16 (GPU): the TensorRT execution accelerator in FP16, as the onnxruntime backend documents it', async () => {
    const { out } = await exportTo({ tensorrtFp16: true, maxBatch: 8, queueDelayMicroseconds: 500, name: 'beit_v1.2-tiny' });
    const config = await parseConfig(path.join(out, 'beit_v1.2-tiny', 'config.pbtxt'));
    assert.equal(config.name, 'beit_v1.2-tiny');
    assert.deepEqual(config.optimization, { execution_accelerators: { gpu_execution_accelerator: [{ name: 'tensorrt', parameters: { precision_mode: 'FP16' } }] } });
    assert.deepEqual(config.dynamic_batching, { preferred_batch_size: [4, 8], max_queue_delay_microseconds: '500' });
    assert.equal(config.max_batch_size, 8);
  });

  it('writes the labels file: num_labels lines, in logit order', async () => {
    const { out } = await exportTo();
    const text = await readFile(path.join(out, 'beit', 'labels.txt'), 'utf8');
    assert.ok(text.endsWith('\n'));
    const lines = text.slice(0, -1).split('\n');
    assert.equal(lines.length, 10);
    assert.deepEqual(lines, fixtureLabels);
    assert.equal(lines[3], 'crème brûlée, burnt cream');
  });

  it('keeps the graph and its external weights in 1/model.onnx/ and hard-links the weights; the graph runs there alone and equals the source (batch of 2) and PyTorch', async () => {
    const own = await tempDir('beit-triton-own-src-');
    await cp(source, own, { recursive: true });
    const out = path.join(await tempDir('beit-triton-run-'), 'repo');
    const result = await exportTritonRepository({ model: own, out });
    const onnxDir = path.join(out, 'beit', '1', 'model.onnx');
    assert.ok((await stat(onnxDir)).isDirectory());
    assert.deepEqual((await readdir(onnxDir)).sort(), ['model.onnx', WEIGHTS_FILE]);
    const linked = await stat(path.join(onnxDir, WEIGHTS_FILE));
    assert.equal(linked.ino, (await stat(path.join(own, WEIGHTS_FILE))).ino);
    assert.ok(linked.size > 0);
    assert.equal(result.weights, 'hard-linked');
    // The graph is the folder's classify graph byte for byte; its weights are external (what the directory form is for).
    assert.deepEqual(await readFile(path.join(onnxDir, 'model.onnx')), await readFile(path.join(own, LOGITS_MODEL_FILE)));
    const decoded = onnx.ModelProto.decode(await readFile(path.join(onnxDir, 'model.onnx')));
    assert.ok(decoded.graph!.initializer!.some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL));

    const second = await secondImagePixels(own);
    const local = await runBatchOfTwo(path.join(own, LOGITS_MODEL_FILE), second);
    // The source folder gone: the repository's graph must find its weights inside model.onnx/.
    await rm(own, { recursive: true, force: true });
    const exported = await runBatchOfTwo(path.join(onnxDir, 'model.onnx'), second);
    assert.equal(maxAbsDiff(exported.logits, local.logits), 0);
    assert.equal(maxAbsDiff(exported.pooled, local.pooled), 0);
    const d0 = maxAbsDiff(exported.logits.subarray(0, 10), expected.raw_input_check.logits);
    const d1 = maxAbsDiff(exported.logits.subarray(10, 20), expected.images[1].logits);
    const e0 = maxAbsDiff(exported.pooled.subarray(0, 32), expected.raw_input_check.pooled_output);
    assert.ok(d0 <= 1e-4 && d1 <= 1e-4 && e0 <= 1e-4, `vs PyTorch: logits ${d0}, ${d1}; pooled ${e0}`);
  });

  it('writes a KServe InferenceService (v1beta1, Triton model format, protocol v2) that parses as YAML', async () => {
    const gpu = await exportTo({ name: 'BEiT_Base.v2' });
    const manifest = parseYaml(await readFile(path.join(gpu.out, KSERVE_MANIFEST_FILE), 'utf8'));
    assert.equal(manifest.apiVersion, 'serving.kserve.io/v1beta1');
    assert.equal(manifest.kind, 'InferenceService');
    // metadata.name is a DNS-1035 label: Triton's name may hold upper case, '_' and '.'.
    assert.equal(manifest.metadata.name, 'beit-base-v2');
    assert.match(manifest.metadata.name, /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    assert.equal(manifest.metadata.annotations['beit-lens/triton-model-name'], 'BEiT_Base.v2');
    const model = manifest.spec.predictor.model;
    assert.deepEqual(model.modelFormat, { name: 'triton' });
    assert.equal(model.protocolVersion, 'v2');
    assert.equal(model.runtime, 'kserve-tritonserver');
    assert.equal(typeof model.storageUri, 'string');
    assert.match(model.storageUri, /^s3:\/\//);
    assert.deepEqual(model.resources, { limits: { 'nvidia.com/gpu': '1' } });
    const cpu = await exportTo({ kind: 'cpu' });
    assert.equal(parseYaml(await readFile(path.join(cpu.out, KSERVE_MANIFEST_FILE), 'utf8')).spec.predictor.model.resources, undefined);
  });

  it("writes a README with the tritonserver command line, the container image, kubectl apply and BEiT Lens's --endpoint line", async () => {
    const { out } = await exportTo({ name: 'beit22k' });
    const readme = await readFile(path.join(out, 'README.md'), 'utf8');
    assert.match(readme, /docker run --rm --gpus all -p8000:8000 .*-v "\$PWD":\/models nvcr\.io\/nvidia\/tritonserver:\d\d\.\d\d-py3 tritonserver --model-repository=\/models/);
    assert.match(readme, /kubectl apply -f kserve-inferenceservice\.yaml/);
    assert.match(readme, /beit-lens classify --model DIR --endpoint http:\/\/HOST:8000 --remote-model beit22k IMAGE/);
    assert.match(readme, /`pixel_values`: TYPE_FP32, dims \[3, 224, 224\]/);
  });

  it('--dtype fp16 from an fp32 folder: the converter\'s fp16 pass, float32 interface in config and graph, same logits as `convert --dtype fp16`', async () => {
    const { out, result } = await exportTo({ dtype: 'fp16' });
    assert.equal(result.weights, 'rewritten');
    assert.equal(result.dtype, 'fp16');
    const graphFile = path.join(out, 'beit', '1', 'model.onnx', 'model.onnx');
    const config = await parseConfig(path.join(out, 'beit', 'config.pbtxt'));
    const graph = await graphInterface(graphFile);
    // convert's fp16 graphs keep a float32 interface (Casts inside): the config says what the graph takes.
    assert.deepEqual(graph.inputs.map(([n, t]) => [n, t]), [['pixel_values', 'TYPE_FP32']]);
    assert.deepEqual([config.input[0].data_type, ...config.output.map((o: Parsed) => o.data_type)], ['TYPE_FP32', 'TYPE_FP32', 'TYPE_FP32']);
    for (const o of config.output) assert.equal(graph.outputs.find(([n]) => n === o.name)![1], o.data_type);
    const decoded = onnx.ModelProto.decode(await readFile(graphFile));
    assert.ok(decoded.graph!.initializer!.some((t) => t.dataType === D.FLOAT16 && t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL));

    const fp16Folder = await tempDir('beit-triton-fp16-src-');
    await convertModel({ from: FIXTURE_DIR, out: fp16Folder, dtype: 'fp16' });
    const second = await secondImagePixels(fp16Folder);
    const converted = await runBatchOfTwo(path.join(fp16Folder, LOGITS_MODEL_FILE), second);
    const exported = await runBatchOfTwo(graphFile, second);
    assert.equal(maxAbsDiff(exported.logits, converted.logits), 0);
    const tol = fp16LogitTolerance(expected.raw_input_check.logits);
    const d = maxAbsDiff(exported.logits.subarray(0, 10), expected.raw_input_check.logits);
    assert.ok(d <= tol, `fp16 logits vs PyTorch ${d} > ${tol}`);

    // An fp16 folder exports as fp16 by default, its weights linked.
    const again = await exportTritonRepository({ model: fp16Folder, out: path.join(await tempDir('beit-triton-fp16-'), 'repo') });
    assert.deepEqual([again.dtype, again.weights], ['fp16', 'hard-linked']);
    await rejectsWith(exportTritonRepository({ model: fp16Folder, out: path.join(await tempDir('beit-triton-fp16-'), 'repo'), dtype: 'fp32' }), /holds an fp16 model; --dtype fp32 needs a folder converted .* --dtype fp32/);
  });

  it('refuses a folder that is not a converted model, a graph without the embedding output, and a label with a line break', async () => {
    const out = path.join(await tempDir('beit-triton-bad-'), 'repo');
    await rejectsWith(exportTritonRepository({ model: path.join(out, 'missing'), out }), /model folder not found/);
    // A Hugging Face folder (config.json, weights) that was never converted.
    await rejectsWith(exportTritonRepository({ model: FIXTURE_DIR, out }), /no model\.onnx in the model folder \(run `beit-lens convert` first\)/);
    const plain = await tempDir('beit-triton-plain-');
    await convertModel({ from: FIXTURE_DIR, out: plain, plain: true });
    await rejectsWith(exportTritonRepository({ model: plain, out }), /has no pooled_output \(embedding\) output.*--plain/);

    const badLabels = await tempDir('beit-triton-labels-');
    await cp(source, badLabels, { recursive: true });
    const configFile = path.join(badLabels, 'config.json');
    const json = JSON.parse(await readFile(configFile, 'utf8'));
    json.id2label['4'] = 'glacier\nlily';
    json.label2id = Object.fromEntries(Object.entries(json.id2label as Record<string, string>).map(([k, v]) => [v, Number(k)]));
    await writeFile(configFile, JSON.stringify(json));
    await rejectsWith(exportTritonRepository({ model: badLabels, out }), /config\.json: label 4 \("glacier\\nlily"\) contains a line break; Triton's label file has one label a line/);
    // Nothing was written for a refused export.
    assert.equal(await stat(out).catch(() => undefined), undefined);
  });

  it('refuses bad options by name: model names Triton cannot serve, --max-batch < 0, --instances < 1, TensorRT on CPU, an fp16 request the folder cannot give', async () => {
    const out = path.join(await tempDir('beit-triton-opts-'), 'repo');
    for (const name of ['a/b', '..', '.', 'a b', '', 'ünï', 'x'.repeat(201)]) {
      await rejectsWith(exportTritonRepository({ model: source, out, name }), /invalid Triton model name .*letters, digits, "_", "-" and "\."/);
    }
    await rejectsWith(exportTritonRepository({ model: source, out, maxBatch: -1 }), /--max-batch must be an integer >= 0 \(0: no batching\), got -1/);
    await rejectsWith(exportTritonRepository({ model: source, out, maxBatch: 1.5 }), /--max-batch must be an integer/);
    await rejectsWith(exportTritonRepository({ model: source, out, instances: 0 }), /--instances must be an integer >= 1, got 0/);
    await rejectsWith(exportTritonRepository({ model: source, out, kind: 'cpu', tensorrtFp16: true }), /--tensorrt-fp16 needs --kind gpu/);
    const int8 = await tempDir('beit-triton-int8-');
    await convertModel({ from: FIXTURE_DIR, out: int8, dtype: 'int8' });
    await rejectsWith(exportTritonRepository({ model: int8, out, dtype: 'fp16' }), /holds an int8 model; --dtype fp16 needs .*leave --dtype out to export the int8 model/);
    assert.equal(await stat(out).catch(() => undefined), undefined);
  });

  it('refuses a graph whose external weights point outside its folder, and stops when cancelled, writing nothing', async () => {
    const escaping = await tempDir('beit-triton-escape-');
    await cp(source, escaping, { recursive: true });
    const graphFile = path.join(escaping, LOGITS_MODEL_FILE);
    const model = onnx.ModelProto.decode(await readFile(graphFile));
    const tensor = model.graph!.initializer!.find((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)!;
    tensor.externalData!.find((e) => e.key === 'location')!.value = '../model.weights';
    await writeFile(graphFile, onnx.ModelProto.encode(model).finish());
    const out = path.join(await tempDir('beit-triton-escape-out-'), 'repo');
    await rejectsWith(exportTritonRepository({ model: escaping, out }), new RegExp(`initializer ${tensor.name} keeps its data at "\\.\\./model\\.weights", not in a file beside the graph`));
    await rejectsWith(exportTritonRepository({ model: escaping, out, dtype: 'fp16' }), /not in a file beside the graph/);
    assert.equal(await stat(out).catch(() => undefined), undefined);

    const controller = new AbortController();
    controller.abort();
    const cancelledOut = path.join(await tempDir('beit-triton-cancel-'), 'repo');
    await assert.rejects(exportTritonRepository({ model: source, out: cancelledOut, signal: controller.signal }), (err: unknown) => err instanceof BeitLensError && err.code === 'CANCELLED');
    assert.equal(await stat(cancelledOut).catch(() => undefined), undefined);
    // Cancelled half way (after the fp16 pass has logged): what was written is removed, the other models stay.
    const { out: busy } = await exportTo({ name: 'other' });
    const midway = new AbortController();
    await assert.rejects(
      exportTritonRepository({ model: source, out: busy, name: 'half', dtype: 'fp16', force: true, signal: midway.signal, onLog: () => midway.abort() }),
      (err: unknown) => err instanceof BeitLensError && err.code === 'CANCELLED',
    );
    assert.deepEqual((await readdir(busy)).sort(), ['README.md', KSERVE_MANIFEST_FILE, 'other'].sort());
  });

  it('refuses a non-empty --out unless --force, which replaces the model and leaves other models alone', async () => {
    const { out } = await exportTo({ name: 'first' });
    await rejectsWith(exportTritonRepository({ model: source, out, name: 'second' }), /--out is not empty \(README\.md, first, kserve-inferenceservice\.yaml\); .*--force/);
    const stale = path.join(out, 'first', '1', 'model.onnx', 'stale.bin');
    await writeFile(stale, 'x');
    await exportTritonRepository({ model: source, out, name: 'first', force: true, maxBatch: 4 });
    assert.equal(await stat(stale).catch(() => undefined), undefined);
    assert.equal((await parseConfig(path.join(out, 'first', 'config.pbtxt'))).max_batch_size, 4);
    await exportTritonRepository({ model: source, out, name: 'second', force: true });
    assert.deepEqual((await readdir(out)).sort(), ['README.md', 'first', KSERVE_MANIFEST_FILE, 'second'].sort());
    const file = path.join(await tempDir('beit-triton-file-'), 'f');
    await writeFile(file, '');
    await rejectsWith(exportTritonRepository({ model: source, out: file }), /--out is a file/);
  });
});

describe('export-triton CLI', () => {
  const cli = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts'), ...args], { timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  it('exports with the flags the issue names and prints what it wrote; argument errors are one line', async () => {
    const source = await tempDir('beit-triton-cli-src-');
    await convertModel({ from: FIXTURE_DIR, out: source });
    const out = path.join(await tempDir('beit-triton-cli-'), 'repo');
    const r = await cli(['export-triton', '--model', source, '--out', out, '--name', 'tiny', '--max-batch', '16', '--instances', '2', '--kind', 'gpu', '--dtype', 'fp32', '--tensorrt-fp16']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^exported .* as model tiny \(fp32, weights hard-linked\): tiny\/config\.pbtxt, tiny\/labels\.txt, tiny\/1\/model\.onnx\/model\.onnx/m);
    const config = await parseConfig(path.join(out, 'tiny', 'config.pbtxt'));
    assert.equal(config.max_batch_size, 16);
    assert.deepEqual(config.instance_group, [{ count: 2, kind: 'KIND_GPU' }]);
    assert.equal(config.optimization.execution_accelerators.gpu_execution_accelerator[0].name, 'tensorrt');

    const bad = await cli(['export-triton', '--model', source, '--out', path.join(out, 'x'), '--max-batch', '-1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^beit-lens: .*--max-batch must be an integer >= 0; see `beit-lens export-triton --help`\n$/);
    const name = await cli(['export-triton', '--model', source, '--out', path.join(out, 'y'), '--name', 'a/b']);
    assert.equal(name.code, 1);
    assert.match(name.stderr, /^beit-lens: invalid Triton model name "a\/b"/);
  });
});

describe('protobuf text format writer', () => {
  it('escapes strings as protobuf does (octal for non-ASCII and controls), and protobuf parses them back exactly', async () => {
    assert.equal(quote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(quote('é\n'), '"\\303\\251\\012"');
    const dir = await tempDir('beit-triton-text-');
    const file = path.join(dir, 'config.pbtxt');
    const name = 'tab\there "quoted" \\ back, crème, 猫, \u0001';
    await writeFile(file, toTextFormat({ name, max_batch_size: 3, input: [{ name: 'x', dims: [-1, 2] }], parameters: [{ key: 'k', value: { string_value: 'v\nw' } }] }));
    const parsed = await parseConfig(file);
    assert.equal(parsed.name, name);
    assert.deepEqual(parsed.input, [{ name: 'x', dims: ['-1', '2'] }]);
    assert.deepEqual(parsed.parameters, { k: { string_value: 'v\nw' } });
  });

  it('picks preferred batch sizes no larger than max_batch_size, the maximum always among them', () => {
    assert.deepEqual(preferredBatchSizes(1), [1]);
    assert.deepEqual(preferredBatchSizes(4), [4]);
    assert.deepEqual(preferredBatchSizes(6), [4, 6]);
    assert.deepEqual(preferredBatchSizes(64), [8, 16, 32, 64]);
  });
});
