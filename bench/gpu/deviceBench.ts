/**
 * GPU check for the device machine (see bench/gpu/run-device.sh): makes the random BEiT-base,
 * converts it, and measures onnxruntime-node's GPU providers (WebGPU over Vulkan; CUDA where its
 * provider library can be found) against the CPU, printing one JSON line per figure. The fp16 model
 * (fp16 compute, `convert --dtype fp16`) is measured on each GPU provider too, with its max logit
 * difference from the fp32 graph on the same provider.
 * PyTorch on the same GPU and weights is measured by torch_peer.py.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ModelSession, ExecutionProviderName } from '../../src/core/backend/onnxRuntime';
import { convertModel } from '../../src/core/convert';
import { writeRandomBeit } from '../../src/core/randomModel';

const work = process.argv[2] ?? '/tmp/beit-gpu';
const hf = path.join(work, 'hf-base');

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(provider: ExecutionProviderName, model: string, label: string, reference?: Float32Array): Promise<Float32Array | undefined> {
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
  // Deterministic input so logits can be compared with PyTorch's on the same tensor.
  const one = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.001));
  const b1 = await timeRuns(session, one, 1, 20);
  const logits = (await session.run(one, [1, 3, 224, 224], ['logits'])).logits.data;
  const batch = new Float32Array(64 * one.length);
  for (let i = 0; i < 64; i++) batch.set(one, i * one.length);
  const b64 = await timeRuns(session, batch, 64, 5);
  const maxLogitDiff = reference ? logits.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i])), 0) : undefined;
  console.log(JSON.stringify({ label, provider, createMs, batch1Ms: b1, batch64Ms: b64, imagesPerSecond: 64000 / b64, logitsFirst5: Array.from(logits.slice(0, 5)), maxLogitDiff }));
  await session.release();
  return logits;
}

async function timeRuns(session: ModelSession, x: Float32Array, n: number, reps: number): Promise<number> {
  for (let i = 0; i < 3; i++) await session.run(x, [n, 3, 224, 224], ['logits']);
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
  for (const provider of (process.env.DEVBENCH_PROVIDERS ?? "cuda,webgpu").split(",") as ("cuda"|"webgpu")[]) {
    const fp32Logits = await measure(provider, logitsGraph, 'ours fused fp32');
    await measure(provider, plainGraph, 'plain fp32');
    await measure(provider, fp16Graph, 'ours fused fp16', fp32Logits);
  }
  await measure('cpu', logitsGraph, 'ours fused fp32 (16 cores)');
})();
