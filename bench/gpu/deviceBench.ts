/**
 * GPU check for the device machine (bench/gpu/run-device.sh): makes the random BEiT-base, converts it, and
 * measures onnxruntime-node's GPU providers (WebGPU over Vulkan; CUDA where its provider library can be found)
 * against the CPU, printing one JSON line per figure. Every GPU figure carries its max logit difference and
 * top-1 agreement with the CPU's fp32 logits over the same 256 distinct images.
 *
 * `node deviceBench.js WORK` (the product path, through ModelSession): fp32, plain and fp16 graphs, batch sizes,
 * the embedding output's cost and drift, a 196-image batch (one image's occlusion map), and the tiny family
 * fixtures on CPU and WebGPU (their outputs go to WORK/families/ for hf_crosscheck.py).
 * `node deviceBench.js WORK experiments`: what issue 19 asks to try, on raw onnxruntime sessions because each one
 * needs a session option the product does not set: the fused MultiHeadAttention kernel, outputs left on the GPU
 * (IO binding), validation off, graph capture, and onnxruntime's profile by op type.
 * torch_peer.py measures PyTorch on the same GPU, weights and inputs (WORK/inputs.bin).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
// The experiments need session options ModelSession does not expose (see the module comment).
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { ModelSession, ExecutionProviderName } from '../../src/core/backend/onnxRuntime';
import { convertModel } from '../../src/core/convert';
import { decodeModel } from '../../src/core/onnx/decodeModel';
import { inlineExternalData } from '../../src/core/onnx/externalWeights';
import { withExplicitAttention } from '../../src/core/onnx/explicitAttention';
import { convertModelToFloat16 } from '../../src/core/onnx/float16';
import { writeRandomBeit } from '../../src/core/randomModel';

const work = process.argv[2] ?? '/tmp/beit-gpu';
const mode = process.argv[3] ?? 'main';
const hf = path.join(work, 'hf-base');
const familiesDir = process.env.DEVBENCH_FAMILIES ?? path.resolve('test/fixtures/families');

/** Batch size, images compared and repetitions: 64/256 on the GPU machine; smaller to try the script on a software Vulkan. */
const BATCH = Number(process.env.DEVBENCH_BATCH ?? 64);
const IMAGES = Number(process.env.DEVBENCH_IMAGES ?? 256);
const REPS = Number(process.env.DEVBENCH_REPS ?? 0);
const IMAGE = 3 * 224 * 224;
/** Set from the model's config.json: 21,841 and 768 for base (DEVBENCH_SIZE=tiny tries the script quickly). */
let LABELS = 21841;
let HIDDEN = 768;
const SIZE = (process.env.DEVBENCH_SIZE ?? 'base') as 'base' | 'tiny';

function emit(row: Record<string, unknown>): void {
  console.log(JSON.stringify(row));
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Deterministic inputs. Image 0 is the sine ramp torch_peer.py used before it read inputs.bin; the others differ
 * in phase and contrast so agreement figures are over distinct images.
 */
function inputs(n: number): Float32Array {
  const x = new Float32Array(n * IMAGE);
  for (let i = 0; i < n; i++) {
    const gain = i === 0 ? 1 : 0.4 + 0.6 * Math.abs(Math.cos(i * 1.7));
    for (let j = 0; j < IMAGE; j++) x[i * IMAGE + j] = gain * Math.sin(j * 0.001 * (i === 0 ? 1 : 1 + (i % 7) * 0.37) + i * 0.9);
  }
  return x;
}

interface Agreement {
  maxLogitDiff: number;
  top1Agreement: number;
}

function argmax(v: Float32Array, from: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (v[from + j] > v[from + best]) best = j;
  return best;
}

function agreement(logits: Float32Array, reference: Float32Array, labels = LABELS): Agreement {
  let maxLogitDiff = 0;
  let same = 0;
  const n = Math.min(reference.length, logits.length) / labels;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < labels; j++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(logits[i * labels + j] - reference[i * labels + j]));
    if (argmax(logits, i * labels, labels) === argmax(reference, i * labels, labels)) same++;
  }
  return { maxLogitDiff, top1Agreement: same / n };
}

/** Lowest and mean cosine between rows, and the max abs difference: how the embedding drifts. */
function embeddingDrift(a: Float32Array, b: Float32Array, width: number): Record<string, number> {
  let minCos = 1;
  let sumCos = 0;
  let maxAbs = 0;
  const n = Math.min(a.length, b.length) / width;
  for (let i = 0; i < n; i++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = 0; j < width; j++) {
      const x = a[i * width + j];
      const y = b[i * width + j];
      dot += x * y;
      na += x * x;
      nb += y * y;
      maxAbs = Math.max(maxAbs, Math.abs(x - y));
    }
    const cos = dot / Math.sqrt(na * nb);
    minCos = Math.min(minCos, cos);
    sumCos += cos;
  }
  return { minCosine: minCos, meanCosine: sumCos / n, maxAbs };
}

/** Anything that runs a batch and returns named float outputs: a ModelSession, or a raw session in the experiments. */
type Runner = (x: Float32Array, n: number, outputs: string[]) => Promise<Record<string, Float32Array>>;

function sessionRunner(session: ModelSession): Runner {
  return async (x, n, outputs) => {
    const r = await session.run(x, [n, 3, 224, 224], outputs);
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data]));
  };
}

async function timeRuns(run: Runner, x: Float32Array, n: number, reps: number, outputs = ['logits']): Promise<number> {
  for (let i = 0; i < Math.min(3, reps); i++) await run(x.subarray(0, n * IMAGE), n, outputs);
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await run(x.subarray(0, n * IMAGE), n, outputs);
    t.push(performance.now() - s);
  }
  return median(t);
}

/** Every image of `x` through `run` in batches, one output concatenated. */
async function runAll(run: Runner, x: Float32Array, output: string, width: number): Promise<Float32Array> {
  const n = x.length / IMAGE;
  const out = new Float32Array(n * width);
  for (let i = 0; i < n; i += BATCH) {
    const m = Math.min(BATCH, n - i);
    out.set((await run(x.subarray(i * IMAGE, (i + m) * IMAGE), m, [output]))[output], i * width);
  }
  return out;
}

async function openSession(label: string, provider: ExecutionProviderName, model: string | Uint8Array): Promise<ModelSession | undefined> {
  try {
    const session = await ModelSession.create(model, { provider });
    if (session.provider === provider) return session;
    emit({ label, provider, error: `fell back to ${session.provider}`, attempts: session.attempts });
    await session.release();
  } catch (err) {
    emit({ label, provider, error: String(err).slice(0, 400) });
  }
  return undefined;
}

/** Times batch 1 and BATCH, then compares every image's logits with the references. Returns the logits. */
async function measure(label: string, provider: string, run: Runner, x: Float32Array, references: Record<string, Float32Array | undefined>, extra: Record<string, unknown> = {}): Promise<Float32Array | undefined> {
  try {
    const b1 = await timeRuns(run, x, 1, REPS || 20);
    const bN = await timeRuns(run, x, BATCH, REPS || 5);
    const logits = await runAll(run, x, 'logits', LABELS);
    const compared = Object.fromEntries(Object.entries(references).flatMap(([name, ref]) => (ref ? [[name, agreement(logits, ref)]] : [])));
    emit({ label, provider, batch1Ms: b1, batch: BATCH, batchMs: bN, imagesPerSecond: (BATCH * 1000) / bN, images: x.length / IMAGE, logitsFirst5: Array.from(logits.slice(0, 5)), ...compared, ...extra });
    return logits;
  } catch (err) {
    emit({ label, provider, error: String(err).slice(0, 400) });
    return undefined;
  }
}

async function prepare(): Promise<{ fp32: string; fp16: string; plain: string }> {
  if (!existsSync(path.join(hf, 'model.safetensors'))) await writeRandomBeit(hf, SIZE);
  const config = JSON.parse(readFileSync(path.join(hf, 'config.json'), 'utf8'));
  LABELS = Object.keys(config.id2label).length;
  HIDDEN = config.hidden_size;
  // 'fp16-compute': a folder from before fp16 compute (fp16 weights, fp32 math) must not be reused.
  for (const [dir, opts] of [['fp32', {}], ['fp16-compute', { dtype: 'fp16' as const }], ['plain', { plain: true }]] as const) {
    const out = path.join(work, dir);
    if (!existsSync(path.join(out, 'beit-lens.json'))) await convertModel({ from: hf, out, ...opts });
  }
  return { fp32: path.join(work, 'fp32', 'model.logits.onnx'), fp16: path.join(work, 'fp16-compute', 'model.logits.onnx'), plain: path.join(work, 'plain', 'model.onnx') };
}

/** The fp32 logits graph with every product in fp16, the classifier's too (the product keeps that one in fp32). */
async function fullFloat16(fp32Graph: string): Promise<Uint8Array> {
  const model = decodeModel(readFileSync(fp32Graph));
  await inlineExternalData(model, fp32Graph);
  convertModelToFloat16(model, { keepFloat32Ops: ['ReduceMean'] });
  return onnx.ModelProto.encode(model).finish();
}

function readFloats(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function writeFloats(file: string, v: Float32Array): void {
  writeFileSync(file, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
}

async function main(): Promise<void> {
  const graphs = await prepare();
  const x = inputs(IMAGES);
  writeFloats(path.join(work, 'inputs.bin'), x);

  // The CPU's fp32 logits and embeddings are what every GPU figure is compared with.
  const cpuSession = await ModelSession.create(graphs.fp32, { provider: 'cpu' });
  const cpuRun = sessionRunner(cpuSession);
  const cpuB1 = await timeRuns(cpuRun, x, 1, 5);
  const cpuBN = await timeRuns(cpuRun, x, BATCH, 2);
  const cpu = new Float32Array(IMAGES * LABELS);
  const cpuPooled = new Float32Array(IMAGES * HIDDEN);
  for (let i = 0; i < IMAGES; i += BATCH) {
    const m = Math.min(BATCH, IMAGES - i);
    const r = await cpuRun(x.subarray(i * IMAGE, (i + m) * IMAGE), m, ['logits', 'pooled_output']);
    cpu.set(r.logits, i * LABELS);
    cpuPooled.set(r.pooled_output, i * HIDDEN);
  }
  await cpuSession.release();
  writeFloats(path.join(work, 'cpu-logits.bin'), cpu);
  writeFloats(path.join(work, 'cpu-pooled.bin'), cpuPooled);
  emit({ label: 'ours fused fp32 (CPU, all cores)', provider: 'cpu', batch1Ms: cpuB1, batch: BATCH, batchMs: cpuBN, imagesPerSecond: (BATCH * 1000) / cpuBN, logitsFirst5: Array.from(cpu.slice(0, 5)) });

  for (const provider of (process.env.DEVBENCH_PROVIDERS ?? 'webgpu').split(',') as ExecutionProviderName[]) {
    let fp32: Float32Array | undefined;
    for (const [label, model] of [['ours fused fp32', graphs.fp32], ['plain fp32', graphs.plain]] as const) {
      const session = await openSession(label, provider, model);
      if (!session) continue;
      const logits = await measure(label, provider, sessionRunner(session), x, { vsCpuFp32: cpu }, session.attempts.find((a) => a.ok)?.adapted ? { adapted: true } : {});
      if (label === 'ours fused fp32') fp32 = logits;
      await session.release();
    }

    const fp16 = await openSession('ours fused fp16', provider, graphs.fp16);
    if (fp16) {
      const run = sessionRunner(fp16);
      await measure('ours fused fp16 (classifier product fp32)', provider, run, x, { vsCpuFp32: cpu, vsSameProviderFp32: fp32 });
      for (const n of [1, 8, 16, 32, 64, 128, 256].filter((b) => b <= IMAGES)) {
        const ms = await timeRuns(run, x, n, REPS || (n <= 16 ? 20 : 5));
        emit({ label: 'ours fused fp16 batch size', provider, batch: n, batchMs: ms, imagesPerSecond: (n * 1000) / ms });
      }
      // The embedding is on the logits' path: asking for it as well should cost only its copy back.
      const alone: number[] = [];
      const both: number[] = [];
      for (let i = 0; i < (REPS || 10); i++) {
        alone.push(await timeRuns(run, x, BATCH, 1, ['logits']));
        both.push(await timeRuns(run, x, BATCH, 1, ['logits', 'pooled_output']));
      }
      const pooled = await runAll(run, x, 'pooled_output', HIDDEN);
      emit({ label: 'embedding output (fp16)', provider, batch: BATCH, logitsMs: median(alone), logitsAndEmbeddingMs: median(both), cost: median(both) / median(alone) - 1, vsCpuFp32: embeddingDrift(pooled, cpuPooled, HIDDEN) });
      if (IMAGES >= 196) {
        // One image's occlusion map at 224/16 is 196 masked copies through the classification graph.
        const ms = await timeRuns(run, x, 196, REPS || 5);
        emit({ label: 'occlusion (196 masked copies of one image, fp16)', provider, batch: 196, batchMs: ms, mapsPerSecond: 1000 / ms });
      }
      await fp16.release();
    }
    const fp32Embedding = await openSession('embedding fp32', provider, graphs.fp32);
    if (fp32Embedding) {
      const pooled = await runAll(sessionRunner(fp32Embedding), x, 'pooled_output', HIDDEN);
      emit({ label: 'embedding output (fp32)', provider, vsCpuFp32: embeddingDrift(pooled, cpuPooled, HIDDEN) });
      await fp32Embedding.release();
    }

    const full = await openSession('ours fp16, classifier product fp16 too', provider, await fullFloat16(graphs.fp32));
    if (full) {
      await measure('ours fp16, classifier product fp16 too', provider, sessionRunner(full), x, { vsCpuFp32: cpu, vsSameProviderFp32: fp32 });
      await full.release();
    }
    await families(provider);
  }
}

/** The tiny family fixtures through our converter on CPU and `provider`; hf_crosscheck.py compares them with HF's classes. */
async function families(provider: ExecutionProviderName): Promise<void> {
  if (!existsSync(familiesDir)) return emit({ label: 'families', error: `no ${familiesDir}` });
  const outDir = path.join(work, 'families');
  mkdirSync(outDir, { recursive: true });
  for (const name of readdirSync(familiesDir).filter((d) => existsSync(path.join(familiesDir, d, 'config.json')))) {
    try {
      const from = path.join(familiesDir, name);
      const out = path.join(work, 'converted', name);
      if (!existsSync(path.join(out, 'beit-lens.json'))) await convertModel({ from, out });
      const expected = JSON.parse(readFileSync(path.join(from, 'expected.json'), 'utf8'));
      const dims: number[] = expected.raw_input_check.shape;
      const pixels = readFloats(path.join(from, 'pixel_values.bin'));
      const result: Record<string, unknown> = { family: name };
      for (const p of ['cpu', provider] as const) {
        const session = await ModelSession.create(path.join(out, 'model.logits.onnx'), { provider: p });
        const r = await session.run(pixels, dims, ['logits', 'pooled_output']);
        result[p] = { provider: session.provider, logits: Array.from(r.logits.data), pooled: Array.from(r.pooled_output.data) };
        await session.release();
      }
      writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(result));
      const gpu = result[provider] as { logits: number[]; provider: string };
      emit({ label: 'family on GPU vs fixture (HF 4.57 CPU)', family: name, provider: gpu.provider, maxLogitDiff: Math.max(...gpu.logits.map((v, i) => Math.abs(v - expected.raw_input_check.logits[i]))) });
    } catch (err) {
      emit({ label: 'family', family: name, error: String(err).slice(0, 400) });
    }
  }
}

/** A raw WebGPU session over in-memory graph bytes whose weights sit beside `graphFile`. */
async function rawSession(bytes: Uint8Array, graphFile: string, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  const extra = (options.extra ?? {}) as Record<string, Record<string, unknown>>;
  return ort.InferenceSession.create(bytes, {
    executionProviders: [{ name: 'webgpu', preferredLayout: 'NCHW', ...((options.executionProviders?.[0] as object) ?? {}) } as ort.InferenceSession.ExecutionProviderConfig],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...options,
    extra: { ...extra, session: { ...(extra.session ?? {}), model_external_initializers_file_folder_path: path.dirname(graphFile) } },
  } as ort.InferenceSession.SessionOptions);
}

function rawRunner(session: ort.InferenceSession, download = true): Runner {
  return async (x, n, outputs) => {
    const r = await session.run({ pixel_values: new ort.Tensor('float32', x, [n, 3, 224, 224]) }, outputs);
    const out: Record<string, Float32Array> = {};
    for (const name of outputs) {
      const t = r[name] as ort.Tensor;
      if (t.location === 'gpu-buffer') {
        if (download) out[name] = (await t.getData(true)) as Float32Array;
        else t.dispose();
      } else out[name] = t.data as Float32Array;
    }
    return out;
  };
}

async function experiments(): Promise<void> {
  const graphs = await prepare();
  const x = readFloats(path.join(work, 'inputs.bin')).subarray(0, BATCH * IMAGE);
  const cpu = readFloats(path.join(work, 'cpu-logits.bin')).subarray(0, BATCH * LABELS);
  const fp16Bytes = readFileSync(graphs.fp16);
  const expanded16 = withExplicitAttention(fp16Bytes) ?? fp16Bytes;
  const tries: [string, () => Promise<void>][] = [];
  const attempt = (label: string, bytes: Uint8Array, graph: string, options: ort.InferenceSession.SessionOptions = {}, download = true) =>
    tries.push([
      label,
      async () => {
        const session = await rawSession(bytes, graph, options);
        try {
          const run = rawRunner(session, download);
          const b1 = await timeRuns(run, x, 1, REPS || 20);
          const bN = await timeRuns(run, x, BATCH, REPS || 5);
          const check = download ? agreement((await run(x, BATCH, ['logits'])).logits, cpu) : agreement((await rawRunner(session)(x, BATCH, ['logits'])).logits, cpu);
          emit({ label, provider: 'webgpu', batch1Ms: b1, batch: BATCH, batchMs: bN, imagesPerSecond: (BATCH * 1000) / bN, vsCpuFp32: check });
        } finally {
          await session.release();
        }
      },
    ]);
  attempt('fp16, fused MultiHeadAttention kernel (not expanded)', fp16Bytes, graphs.fp16);
  const fp32Bytes = readFileSync(graphs.fp32);
  attempt('fp32, fused MultiHeadAttention kernel (not expanded)', fp32Bytes, graphs.fp32);
  attempt('fp16 expanded, validationMode disabled', expanded16, graphs.fp16, { executionProviders: [{ name: 'webgpu', validationMode: 'disabled' } as ort.InferenceSession.ExecutionProviderConfig] });
  attempt('fp16 expanded, outputs left on the GPU (IO binding, not read back)', expanded16, graphs.fp16, { preferredOutputLocation: 'gpu-buffer' }, false);
  attempt('fp16 expanded, outputs on the GPU, read back', expanded16, graphs.fp16, { preferredOutputLocation: 'gpu-buffer' });
  attempt('fp16 expanded, graph capture', expanded16, graphs.fp16, { preferredOutputLocation: 'gpu-buffer', extra: { ep: { webgpuexecutionprovider: { enableGraphCapture: '1' } } } } as ort.InferenceSession.SessionOptions);
  tries.push(['profile', () => profile(expanded16, graphs.fp16, x)]);
  const only = process.argv[4];
  if (only !== undefined) {
    const [label, fn] = tries[Number(only)];
    try {
      await fn();
    } catch (err) {
      emit({ label, provider: 'webgpu', error: String(err).slice(0, 400) });
    }
    return;
  }
  // Each in its own process: a native abort (outputs on the GPU aborted the process on lavapipe) or a hang
  // then costs only that experiment's row.
  for (let i = 0; i < tries.length; i++) {
    const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], work, 'experiments', String(i)], { encoding: 'utf8', timeout: Number(process.env.DEVBENCH_EXPERIMENT_TIMEOUT_MS ?? 45000) });
    process.stdout.write(child.stdout ?? '');
    if (child.status !== 0) emit({ label: tries[i][0], provider: 'webgpu', error: `process ended with ${child.signal ?? `status ${child.status}`}${child.error ? ` (${child.error.message})` : ''}`, stderr: (child.stderr ?? '').split('\n').filter((l) => l && !/artificially reduced/.test(l)).join('\n').slice(-400) });
  }
}

/** onnxruntime's own profile of PROFILE_RUNS batch runs, summed by op (summariseProfile): where the time goes. */
async function profile(bytes: Uint8Array, graph: string, x: Float32Array): Promise<void> {
  const prefix = path.join(work, 'ort-profile');
  try {
    const session = await rawSession(bytes, graph, { enableProfiling: true, profileFilePrefix: prefix });
    const run = rawRunner(session);
    for (let i = 0; i < PROFILE_RUNS; i++) await run(x, BATCH, ['logits']);
    session.endProfiling();
    await session.release();
    const file = readdirSync(work).filter((f) => f.startsWith('ort-profile')).sort().pop();
    if (!file) return emit({ label: 'profile', error: 'no profile file written' });
    emit({ label: 'profile fp16 expanded, per batch', batch: BATCH, file, ...summariseProfile(JSON.parse(readFileSync(path.join(work, file), 'utf8')), PROFILE_RUNS) });
  } catch (err) {
    emit({ label: 'profile', error: String(err).slice(0, 400) });
  }
}

const PROFILE_RUNS = 4;

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; provider?: string; shapes?: string };
}

/**
 * The WebGPU provider's GPU timestamps are the profile's `Api` events, named `node&OpType&Program`; its `Node`
 * events time only the CPU's side of each dispatch (the GPU work is asynchronous). The first half of the runs is
 * left out as warm-up (shader compilation). Per batch: GPU time by op and program, and the MatMul shapes.
 */
export function summariseProfile(events: ProfileEvent[], runs: number): Record<string, unknown> {
  const gpu = events.filter((e) => e.cat === 'Api');
  const warm = gpu.slice(Math.floor(gpu.length / runs) * Math.floor(runs / 2));
  const counted = runs - Math.floor(runs / 2);
  const sum = (key: (e: ProfileEvent) => string) => {
    const by = new Map<string, { us: number; count: number }>();
    for (const e of warm) {
      const s = by.get(key(e)) ?? { us: 0, count: 0 };
      s.us += e.dur;
      s.count++;
      by.set(key(e), s);
    }
    return by;
  };
  const total = warm.reduce((t, e) => t + e.dur, 0);
  const rows = (by: Map<string, { us: number; count: number }>, n: number) =>
    [...by.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, n).map(([key, s]) => ({ key, ms: s.us / 1000 / counted, share: s.us / total, count: s.count / counted }));
  const program = (e: ProfileEvent) => e.name.split('&').slice(1).join('/');
  return {
    gpuMsPerRun: total / 1000 / counted,
    modelRunMs: events.filter((e) => e.name === 'model_run').map((e) => e.dur / 1000),
    byProgram: rows(sum(program), 15),
    matMulShapes: rows(new Map([...sum((e) => `${program(e)} ${e.args?.shapes ?? ''}`)].filter(([k]) => k.startsWith('MatMul'))), 8),
  };
}

(mode === 'experiments' ? experiments() : mode === 'summarise' ? Promise.resolve(emit({ label: 'profile fp16 expanded, per batch', file: process.argv[4], ...summariseProfile(JSON.parse(readFileSync(process.argv[4], 'utf8')), PROFILE_RUNS) })) : main()).catch((err) => {
  emit({ label: 'fatal', mode, error: String(err?.stack ?? err).slice(0, 1000) });
  process.exitCode = 1;
});
