/**
 * GPU check for the device machine (see bench/gpu/run-device.sh): makes the random BEiT-base,
 * converts it, and measures onnxruntime-node's GPU providers (WebGPU over Vulkan; CUDA where its
 * provider library can be found) against the CPU, printing one JSON line per figure. The fp16 model
 * (fp16 compute, `convert --dtype fp16`) is measured on each GPU provider too. Every GPU figure carries its
 * max logit difference and top-1 agreement with the CPU's fp32 logits over the same batch of distinct
 * images (fp16 also against fp32 on the same provider).
 * PyTorch on the same GPU and weights is measured by torch_peer.py.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ModelSession, ExecutionProviderName } from '../../src/core/backend/onnxRuntime';
import { convertModel } from '../../src/core/convert';
import { writeRandomBeit } from '../../src/core/randomModel';

const work = process.argv[2] ?? '/tmp/beit-gpu';
const hf = path.join(work, 'hf-base');

/** Batch size and repetitions: 64 and 20/5 on the GPU machine; smaller to try the script on a software Vulkan. */
const BATCH = Number(process.env.DEVBENCH_BATCH ?? 64);
const REPS = Number(process.env.DEVBENCH_REPS ?? 0);
const IMAGE = 3 * 224 * 224;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Deterministic inputs. Image 0 is the one torch_peer.py feeds, so `logitsFirst5` can be compared with
 * PyTorch's; the others differ in phase and contrast so agreement figures are over distinct images.
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

function agreement(logits: Float32Array, reference: Float32Array, labels: number): Agreement {
  let maxLogitDiff = 0;
  let same = 0;
  const n = reference.length / labels;
  for (let i = 0; i < n; i++) {
    let a = 0;
    let b = 0;
    for (let j = 0; j < labels; j++) {
      const k = i * labels + j;
      maxLogitDiff = Math.max(maxLogitDiff, Math.abs(logits[k] - reference[k]));
      if (logits[k] > logits[i * labels + a]) a = j;
      if (reference[k] > reference[i * labels + b]) b = j;
    }
    if (a === b) same++;
  }
  return { maxLogitDiff, top1Agreement: same / n };
}

/** Times one provider on one graph; returns its batch logits. `references` are compared with them (same images). */
async function measure(provider: ExecutionProviderName, model: string, label: string, references: Record<string, Float32Array | undefined> = {}): Promise<Float32Array | undefined> {
  const t0 = performance.now();
  let session: ModelSession;
  try {
    session = await ModelSession.create(model, { provider });
  } catch (err) {
    console.log(JSON.stringify({ label, provider, error: String(err).slice(0, 300) }));
    return undefined;
  }
  const createMs = performance.now() - t0;
  if (session.provider !== provider) {
    console.log(JSON.stringify({ label, provider, error: `fell back to ${session.provider}`, attempts: session.attempts }));
    await session.release();
    return undefined;
  }
  const batch = inputs(BATCH);
  const one = batch.subarray(0, IMAGE);
  const b1 = await timeRuns(session, one, 1, REPS || 20);
  const bN = await timeRuns(session, batch, BATCH, REPS || 5);
  const logits = (await session.run(batch, [BATCH, 3, 224, 224], ['logits'])).logits.data;
  const labels = logits.length / BATCH;
  const compared = Object.fromEntries(Object.entries(references).flatMap(([name, ref]) => (ref ? [[name, agreement(logits, ref, labels)]] : [])));
  const adapted = session.attempts.find((a) => a.ok)?.adapted;
  console.log(JSON.stringify({ label, provider, createMs, batch1Ms: b1, batch: BATCH, batchMs: bN, imagesPerSecond: (BATCH * 1000) / bN, logitsFirst5: Array.from(logits.slice(0, 5)), ...compared, ...(adapted ? { adapted } : {}) }));
  await session.release();
  return logits;
}

async function timeRuns(session: ModelSession, x: Float32Array, n: number, reps: number): Promise<number> {
  for (let i = 0; i < Math.min(3, reps); i++) await session.run(x, [n, 3, 224, 224], ['logits']);
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await session.run(x, [n, 3, 224, 224], ['logits']);
    t.push(performance.now() - s);
  }
  return median(t);
}

(async () => {
  if (!existsSync(path.join(hf, 'model.safetensors'))) await writeRandomBeit(hf, 'base');
  // 'fp16-compute': a folder from before fp16 compute (fp16 weights, fp32 math) must not be reused.
  for (const [dir, opts] of [['fp32', {}], ['fp16-compute', { dtype: 'fp16' as const }], ['plain', { plain: true }]] as const) {
    const out = path.join(work, dir);
    if (!existsSync(path.join(out, 'beit-lens.json'))) await convertModel({ from: hf, out, ...opts });
  }
  const logitsGraph = path.join(work, 'fp32', 'model.logits.onnx');
  const plainGraph = path.join(work, 'plain', 'model.onnx');
  const fp16Graph = path.join(work, 'fp16-compute', 'model.logits.onnx');
  // The CPU's fp32 logits are the reference every GPU figure is compared with, over the same images.
  const cpu = await measure('cpu', logitsGraph, 'ours fused fp32 (CPU, all cores)');
  for (const provider of (process.env.DEVBENCH_PROVIDERS ?? 'cuda,webgpu').split(',') as ('cuda' | 'webgpu')[]) {
    const fp32 = await measure(provider, logitsGraph, 'ours fused fp32', { vsCpuFp32: cpu });
    await measure(provider, plainGraph, 'plain fp32', { vsCpuFp32: cpu });
    await measure(provider, fp16Graph, 'ours fused fp16', { vsCpuFp32: cpu, vsSameProviderFp32: fp32 });
  }
})();
