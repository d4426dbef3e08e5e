/**
 * GPU check for the device machine (see bench/gpu/run-device.sh): makes the random BEiT-base,
 * converts it, and measures onnxruntime-node's GPU providers (WebGPU over Vulkan; CUDA where its
 * provider library can be found) against the CPU, printing one JSON line per figure.
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

async function measure(provider: ExecutionProviderName, model: string, label: string): Promise<void> {
  const t0 = performance.now();
  let session: ModelSession;
  try {
    session = await ModelSession.create(model, { provider });
  } catch (err) {
    console.log(JSON.stringify({ label, provider, error: String(err).slice(0, 300) }));
    return;
  }
  const createMs = performance.now() - t0;
  if (session.provider !== provider) {
    console.log(JSON.stringify({ label, provider, error: `fell back to ${session.provider}`, attempts: session.attempts }));
    await session.release();
    return;
  }
  // Deterministic input so logits can be compared with PyTorch's on the same tensor.
  const one = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.001));
  const b1 = await timeRuns(session, one, 1, 20);
  const logits = (await session.run(one, [1, 3, 224, 224], ['logits'])).logits.data;
  const batch = new Float32Array(64 * one.length);
  for (let i = 0; i < 64; i++) batch.set(one, i * one.length);
  const b64 = await timeRuns(session, batch, 64, 5);
  console.log(JSON.stringify({ label, provider, createMs, batch1Ms: b1, batch64Ms: b64, imagesPerSecond: 64000 / b64, logitsFirst5: Array.from(logits.slice(0, 5)) }));
  await session.release();
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
  for (const [dir, opts] of [['fp32', {}], ['fp16', { dtype: 'fp16' as const }], ['plain', { plain: true }]] as const) {
    const out = path.join(work, dir);
    if (!existsSync(path.join(out, 'beit-lens.json'))) await convertModel({ from: hf, out, ...opts });
  }
  const logitsGraph = path.join(work, 'fp32', 'model.logits.onnx');
  const plainGraph = path.join(work, 'plain', 'model.onnx');
  for (const provider of (process.env.DEVBENCH_PROVIDERS ?? "cuda,webgpu").split(",") as ("cuda"|"webgpu")[]) {
    await measure(provider, logitsGraph, 'ours fused fp32');
    await measure(provider, plainGraph, 'plain fp32');
  }
  await measure('cpu', logitsGraph, 'ours fused fp32 (16 cores)');
})();
