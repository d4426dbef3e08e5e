import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { ModelSession, ProviderProbe, providerCandidates, providerChoice } from '../../src/core/backend/onnxRuntime';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { runDoctor } from '../../src/core/doctor';
import { expected, FIXTURE_DIR, FIXTURE_IMAGES, FP16_U, fp16LogitTolerance, maxAbsDiff, rawPixelValues, tempDir } from '../helpers/fixtures';

const T = 197;
/** The fp16 tolerances are float16.test.ts's, derived there. */
const U = FP16_U;
const logitTolerance = fp16LogitTolerance;

/** A machine with these files and directory entries; its onnxruntime build has the backends of its platform. */
function probe(files: string[], dirs: Record<string, string[]> = {}, env: NodeJS.ProcessEnv = {}, backends = ['cpu', 'webgpu', 'cuda']): ProviderProbe {
  return { exists: (f) => files.includes(f), list: (d) => dirs[d] ?? [], env, backends: () => new Set(backends) };
}

describe('which providers auto tries', () => {
  const loader = '/usr/lib/x86_64-linux-gnu/libvulkan.so.1';

  it('Linux: WebGPU only with a Vulkan loader and a GPU device node; a software-only Vulkan is left out', () => {
    assert.deepEqual(providerCandidates('linux', 'x64', probe([loader], { '/dev/dri': ['card0', 'renderD128'] })), ['cuda', 'webgpu', 'cpu']);
    assert.deepEqual(providerCandidates('linux', 'x64', probe([loader], { '/dev': ['null', 'nvidiactl', 'nvidia0'] })), ['cuda', 'webgpu', 'cpu']);
    assert.deepEqual(providerCandidates('linux', 'x64', probe([loader, '/dev/dxg'])), ['cuda', 'webgpu', 'cpu']);
    assert.deepEqual(providerCandidates('linux', 'arm64', probe(['/opt/vk/libvulkan.so.1'], { '/dev/dri': ['renderD129'] }, { LD_LIBRARY_PATH: '/opt/vk' })), ['webgpu', 'cpu']);

    // nvidiactl alone (no GPU) and card0 without a render node are not GPUs Vulkan can compute on.
    const software = providerChoice('linux', 'x64', probe([loader], { '/dev': ['nvidiactl'], '/dev/dri': ['card0'] }));
    assert.deepEqual(software.candidates, ['cuda', 'cpu']);
    assert.equal(software.skipped.length, 1);
    assert.equal(software.skipped[0].provider, 'webgpu');
    assert.match(software.skipped[0].reason, /no GPU device .*software renderer.*--provider webgpu still tries it/);

    const noLoader = providerChoice('linux', 'x64', probe([], { '/dev/dri': ['renderD128'] }));
    assert.deepEqual(noLoader.candidates, ['cuda', 'cpu']);
    assert.match(noLoader.skipped[0].reason, /no Vulkan loader \(libvulkan\.so\.1/);
  });

  it('Windows and macOS try their native GPU provider, then WebGPU, with no Linux probe; a backend the build lacks is left out', () => {
    assert.deepEqual(providerCandidates('win32', 'x64', probe([], {}, {}, ['cpu', 'dml', 'webgpu'])), ['dml', 'webgpu', 'cpu']);
    assert.deepEqual(providerCandidates('darwin', 'arm64', probe([], {}, {}, ['cpu', 'coreml', 'webgpu'])), ['coreml', 'webgpu', 'cpu']);
    const old = providerChoice('darwin', 'x64', probe([], {}, {}, ['cpu', 'coreml']));
    assert.deepEqual(old.candidates, ['coreml', 'cpu']);
    assert.deepEqual(old.skipped, [{ provider: 'webgpu', reason: 'not in this onnxruntime-node build' }]);
  });
});

/**
 * The WebGPU provider (Dawn over Vulkan) on whatever adapter this machine has. CI has no GPU:
 * scripts/install-system-deps.sh installs Mesa's lavapipe, a Vulkan implementation on the CPU, so the
 * same WGSL kernels a GPU would run (fused attention with bias, fp16 matrix products) are checked
 * against the PyTorch reference here. Speed on lavapipe means nothing; bench/gpu measures real GPUs.
 */
describe('WebGPU provider on the tiny fixture', () => {
  let dir32: string;
  let dir16: string;
  let dirPlain: string;

  before(async () => {
    [dir32, dir16, dirPlain] = await Promise.all([tempDir('beit-webgpu32-'), tempDir('beit-webgpu16-'), tempDir('beit-webgpu-plain-')]);
    await convertModel({ from: FIXTURE_DIR, out: dir32 });
    await convertModel({ from: FIXTURE_DIR, out: dir16, dtype: 'fp16' });
    await convertModel({ from: FIXTURE_DIR, out: dirPlain, plain: true });
  });

  async function runOnWebGpu(file: string) {
    const session = await ModelSession.create(file, { provider: 'webgpu' });
    try {
      assert.equal(
        session.provider,
        'webgpu',
        `no WebGPU adapter (${session.attempts.map((a) => `${a.provider}: ${a.reason ?? 'ok'}`).join('; ')}); ` +
          'this test needs a Vulkan device: bash scripts/install-system-deps.sh installs Mesa lavapipe (mesa-vulkan-drivers >= 23) and libvulkan1',
      );
      const out = await session.run(rawPixelValues(), [1, 3, 224, 224], session.outputNames);
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data]));
    } finally {
      await session.release();
    }
  }

  it('fp32 fused graph: logits, pooled output, attentions of every head, patch logits match PyTorch as on the CPU', async () => {
    const out = await runOnWebGpu(path.join(dir32, 'model.onnx'));
    const raw = expected.raw_input_check;
    const image0 = expected.images[0];
    assert.ok(maxAbsDiff(out.logits, raw.logits) <= 1e-4, `logits ${maxAbsDiff(out.logits, raw.logits)}`);
    assert.equal(out.logits.indexOf(Math.max(...out.logits)), raw.argmax);
    assert.ok(maxAbsDiff(out.attentions.subarray(0, T), image0.attention_layer0_head0_cls_row) <= 1e-5);
    image0.attentions.forEach((layer: { heads: Record<string, number | number[]>[] }, l: number) => {
      layer.heads.forEach((ref, h) => {
        const plane = (l * 4 + h) * T * T;
        assert.ok(maxAbsDiff(out.attentions.subarray(plane, plane + 8), ref.cls_row_first8 as number[]) <= 1e-5, `layer ${l} head ${h} cls row`);
        assert.ok(maxAbsDiff(out.attentions.subarray(plane + T, plane + T + 8), ref.patch0_row_first8 as number[]) <= 1e-5, `layer ${l} head ${h} patch0 row`);
        let max = 0;
        for (let i = 0; i < T * T; i++) max = Math.max(max, out.attentions[plane + i]);
        assert.ok(Math.abs(max - (ref.max as number)) <= 1e-5, `layer ${l} head ${h} max`);
      });
    });
    assert.ok(maxAbsDiff(out.patch_logits.subarray(0, 10), image0.per_patch.patch0_logits) <= 1e-4);
    const logitsOnly = await runOnWebGpu(path.join(dir32, 'model.logits.onnx'));
    assert.ok(maxAbsDiff(logitsOnly.logits, raw.logits) <= 1e-4);
  });

  it('fp32 plain graph (standard ops) matches PyTorch', async () => {
    const out = await runOnWebGpu(path.join(dirPlain, 'model.onnx'));
    assert.ok(maxAbsDiff(out.logits, expected.raw_input_check.logits) <= 1e-4, `logits ${maxAbsDiff(out.logits, expected.raw_input_check.logits)}`);
  });

  it('fp16-compute graph: logits within 10 u * range of PyTorch with the same top-1 and top-5, attentions within 4 u', async () => {
    const ref: number[] = expected.raw_input_check.logits;
    const tol = logitTolerance(ref);
    const fp32 = await runOnWebGpu(path.join(dir32, 'model.logits.onnx'));
    for (const file of ['model.onnx', 'model.logits.onnx']) {
      const logits = (await runOnWebGpu(path.join(dir16, file))).logits;
      const diff = maxAbsDiff(logits, ref);
      assert.ok(diff <= tol, `${file}: max |fp16 - torch| ${diff} > ${tol}`);
      // The GPU kernels really ran in fp16: our fp32 graph on the same adapter agrees with torch to ~1e-6.
      assert.ok(maxAbsDiff(logits, fp32.logits) >= 1e-4, `${file}: fp16 vs fp32 only ${maxAbsDiff(logits, fp32.logits)}`);
      const top = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 5);
      assert.deepEqual(top, expected.raw_input_check.top5.map((p: { index: number }) => p.index), `${file}: top-5`);
      // eslint-disable-next-line no-console
      console.log(`# WebGPU fp16 ${file}: max |logit - torch| ${diff.toExponential(2)} (tolerance ${tol.toExponential(2)})`);
    }
    // WebGPU's fp16 softmax keeps its statistics in fp16 (the CPU kernel keeps them in fp32): the row sum
    // over 197 keys takes up to ceil(log2 197) = 8 roundings in a tree reduction, so attentions and their
    // row sums are allowed 8 u here against 4 u and u on the CPU (measured on lavapipe: 4.4 u and 2.8 u).
    const full = await runOnWebGpu(path.join(dir16, 'model.onnx'));
    const cpu32 = await ModelSession.create(path.join(dir32, 'model.onnx'), { provider: 'cpu' });
    const reference = (await cpu32.run(rawPixelValues(), [1, 3, 224, 224], ['attentions'])).attentions.data;
    await cpu32.release();
    const image0 = expected.images[0];
    assert.ok(maxAbsDiff(full.attentions.subarray(0, T), image0.attention_layer0_head0_cls_row) <= 8 * U);
    assert.ok(maxAbsDiff(full.attentions, reference) <= 8 * U, `attentions vs fp32 ${maxAbsDiff(full.attentions, reference)}`);
    let rowSumDev = 0;
    for (let row = 0; row < 2 * 4 * T; row++) rowSumDev = Math.max(rowSumDev, Math.abs(full.attentions.subarray(row * T, (row + 1) * T).reduce((a, b) => a + b, 0) - 1));
    assert.ok(rowSumDev <= 8 * U, `row sums off by ${rowSumDev}`);
  });

  it('classify and explain through BeitModel on WebGPU give the reference top-5 for every fixture image', async () => {
    const model = await BeitModel.load(dir32, { provider: 'webgpu' });
    const cpu = await BeitModel.load(dir32, { provider: 'cpu' });
    try {
      assert.equal(model.provider, 'webgpu');
      const files = expected.images.map((img: { file: string }) => path.join(FIXTURE_DIR, img.file));
      // One batch of all six: the WebGPU kernels see batch > 1 too.
      const batch = await model.classifyFiles(files, { topK: 5, batchSize: files.length });
      for (const [i, img] of (expected.images as any[]).entries()) {
        const ref = img.variants?.exif_transposed ?? img.variants?.scaled_16bit_to_8bit ?? img;
        const result = batch[i];
        assert.ok(result.top, `${img.file}: ${result.error}`);
        assert.deepEqual(result.top.map((p) => p.index), ref.top5.map((p: { index: number }) => p.index), img.file);
        assert.ok(maxAbsDiff(result.top.map((p) => p.score), ref.top5.map((p: { prob: number }) => p.prob)) <= 1e-5, img.file);
      }
      const image = path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg');
      const [gpu, reference] = [await model.explain(image), await cpu.explain(image)];
      assert.ok(maxAbsDiff(gpu.rollout, reference.rollout) <= 1e-4);
      assert.deepEqual(Array.from(gpu.patchArgmax), Array.from(reference.patchArgmax));
    } finally {
      await model.dispose();
      await cpu.dispose();
    }
  });

  it('doctor reports the provider asked for and where the model ran', async () => {
    const report = await runDoctor({ modelDir: dir16, cacheDir: await tempDir('beit-doctor-'), provider: 'webgpu' });
    assert.equal(report.model?.provider, 'webgpu');
    assert.match(report.text, /providers tried in order \(--provider webgpu\): webgpu > cpu/);
    assert.match(report.text, /running on: webgpu \(computes in fp16\)/);
    assert.equal(report.model?.note, undefined);
  });
});
