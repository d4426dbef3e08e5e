import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { BeitLensError, errorMessage } from '../errors';
import { withExplicitAttention } from '../onnx/explicitAttention';

/**
 * The only module that imports onnxruntime-node (as transformers.js keeps it in backends/onnx):
 * everything else talks to `ModelSession`, so tests and the extension's worker share one path.
 */

// Failures are reported through exceptions and ProviderAttempt; onnxruntime's own stderr logging of
// an absent CUDA or Vulkan would only alarm users of a CPU machine.
ort.env.logLevel = 'fatal';

export const EXECUTION_PROVIDERS = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'] as const;
export type ExecutionProviderName = (typeof EXECUTION_PROVIDERS)[number];
export type ProviderPreference = 'auto' | ExecutionProviderName;

export interface ProviderAttempt {
  provider: ExecutionProviderName;
  ok: boolean;
  reason?: string;
  millis: number;
  /** How the graph was adapted for this provider before loading, if it was. */
  adapted?: string;
}

export interface ModelSessionOptions {
  provider?: ProviderPreference;
  /** 0 lets onnxruntime choose (one thread per physical core). */
  intraOpThreads?: number;
  /**
   * Where onnxruntime may save the optimised graph so later session creation skips optimisation. It must be in
   * the model's folder when the model keeps its weights in an external file: the saved graph refers to it relatively.
   */
  optimizedModelPath?: string;
}

export interface OutputTensor {
  data: Float32Array;
  dims: number[];
}

/** What `providerCandidates` looks at on the machine; tests pass their own. */
export interface ProviderProbe {
  /** Whether a file or device node exists. */
  exists(file: string): boolean;
  /** Entry names in a directory, or none where it cannot be read. */
  list(dir: string): string[];
  env: NodeJS.ProcessEnv;
  /** Backends this onnxruntime-node build knows (bundled or installable). */
  backends(): ReadonlySet<string>;
}

const machineProbe: ProviderProbe = {
  exists: existsSync,
  list: (dir) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
  env: process.env,
  backends: () => new Set(ort.listSupportedBackends().map((b) => b.name)),
};

/** Providers worth trying on this platform, best first. Names only: no option can name a library. */
export function providerCandidates(platform: NodeJS.Platform = process.platform, arch: string = process.arch, probe: ProviderProbe = machineProbe): ExecutionProviderName[] {
  return providerChoice(platform, arch, probe).candidates;
}

/** The candidates for 'auto', and why any provider this platform could have was left out (for `doctor`). */
export function providerChoice(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
  probe: ProviderProbe = machineProbe,
): { candidates: ExecutionProviderName[]; skipped: { provider: ExecutionProviderName; reason: string }[] } {
  const bundled = probe.backends();
  const wanted: ExecutionProviderName[] =
    platform === 'win32' ? ['dml', 'webgpu', 'cpu'] : platform === 'darwin' ? ['coreml', 'webgpu', 'cpu'] : arch === 'x64' ? ['cuda', 'webgpu', 'cpu'] : ['webgpu', 'cpu'];
  const skipped: { provider: ExecutionProviderName; reason: string }[] = [];
  const candidates = wanted.filter((p) => {
    // CUDA's binaries are not in the npm package: they exist only where the user installed them
    // (ONNXRUNTIME_NODE_INSTALL=cuda12). listSupportedBackends() reports it either way, so keep it
    // and let session creation tell us.
    if (p === 'cpu' || p === 'cuda') return true;
    if (!bundled.has(p)) {
      skipped.push({ provider: p, reason: 'not in this onnxruntime-node build' });
      return false;
    }
    if (p === 'webgpu' && platform === 'linux') {
      const why = linuxWebGpuObstacle(probe);
      if (why) skipped.push({ provider: p, reason: why });
      return !why;
    }
    return true;
  });
  return { candidates, skipped };
}

/**
 * On Linux, WebGPU (Dawn) runs on Vulkan. Without a loader it can only fail, after printing a warning
 * on stderr that no option silences. Without a GPU device node the only Vulkan device left is a
 * software one (Mesa's lavapipe, installed with mesa-vulkan-drivers on most desktops), which Dawn
 * accepts and which runs the model many times slower than onnxruntime's CPU provider; an explicit
 * `--provider webgpu` still reaches it.
 */
function linuxWebGpuObstacle(probe: ProviderProbe): string | undefined {
  const libDirs = [...(probe.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
  if (!libDirs.some((d) => probe.exists(path.join(d, 'libvulkan.so.1')))) return 'no Vulkan loader (libvulkan.so.1; Debian/Ubuntu: apt-get install libvulkan1)';
  const gpuNode =
    probe.list('/dev/dri').some((name) => name.startsWith('renderD')) ||
    probe.list('/dev').some((name) => /^nvidia\d+$/.test(name)) ||
    probe.exists('/dev/dxg');
  if (!gpuNode) return 'no GPU device (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg): Vulkan could only offer a software renderer, slower than the CPU provider; --provider webgpu still tries it';
  return undefined;
}

function providerConfig(provider: ExecutionProviderName): ort.InferenceSession.ExecutionProviderConfig {
  switch (provider) {
    case 'cuda':
      // onnxruntime-node (1.30) hands CUDA only deviceId. The rest stays at onnxruntime's defaults, which suit
      // this model: cudnn_conv_algo_search EXHAUSTIVE runs once for the single patch-embedding Conv, whose shape
      // is fixed; enable_cuda_graph (off) has no setting here, and batches of varying size could not reuse a graph.
      return { name: 'cuda', deviceId: 0 };
    case 'dml':
      return { name: 'dml', deviceId: 0 };
    case 'coreml':
      // MLProgram runs on the GPU and Neural Engine; the older NeuralNetwork format lacks ops we use.
      return { name: 'coreml', coreMlFlags: 0x010 };
    case 'webgpu':
      return { name: 'webgpu', preferredLayout: 'NCHW' };
    case 'cpu':
      return 'cpu';
  }
}

export class ModelSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** The model file, or a label for an in-memory model; used in error messages. */
    readonly file: string,
    readonly provider: ExecutionProviderName,
    readonly attempts: ProviderAttempt[],
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Element type and shape the graph declares for an input (symbolic dimensions as strings), if it is a tensor. */
  inputTensor(name: string): { type: string; shape: ReadonlyArray<number | string> } | undefined {
    const meta = this.session.inputMetadata.find((m) => m.name === name);
    return meta?.isTensor ? { type: meta.type, shape: meta.shape } : undefined;
  }

  /**
   * Tries providers in order and falls back to CPU, recording why each one failed so `doctor`
   * can say it. An explicit preference other than 'auto' is tried first, then CPU.
   */
  static async create(model: string | Uint8Array, options: ModelSessionOptions = {}): Promise<ModelSession> {
    const file = typeof model === 'string' ? model : '(in-memory model)';
    const preference = options.provider ?? 'auto';
    // The preference crosses process and settings boundaries as a plain string: only these names may reach
    // onnxruntime, each mapped to a fixed configuration, so no value can name a library to load.
    if (preference !== 'auto' && !(EXECUTION_PROVIDERS as readonly string[]).includes(preference)) {
      throw new BeitLensError('CONFIG_INVALID', `unknown execution provider ${JSON.stringify(preference)}; use auto, ${EXECUTION_PROVIDERS.join(', ')}`);
    }
    const order: ExecutionProviderName[] = preference === 'auto' ? providerCandidates() : preference === 'cpu' ? ['cpu'] : [preference, 'cpu'];
    const attempts: ProviderAttempt[] = [];
    for (const provider of order) {
      const started = Date.now();
      try {
        const sessionOptions: ort.InferenceSession.SessionOptions = {
          executionProviders: [providerConfig(provider)],
          graphOptimizationLevel: 'all',
          intraOpNumThreads: options.intraOpThreads ?? 0,
          // A provider that is absent logs its failure natively; we record the reason ourselves.
          logSeverityLevel: 3,
          ...(provider === 'cpu' && options.optimizedModelPath ? { optimizedModelFilePath: options.optimizedModelPath } : {}),
        };
        const { source, adapted } = await graphFor(provider, model);
        // A graph rewritten in memory still finds its external weights file beside the original.
        if (typeof source !== 'string' && typeof model === 'string') sessionOptions.extra = { session: { model_external_initializers_file_folder_path: path.dirname(path.resolve(model)) } };
        const session = typeof source === 'string' ? await ort.InferenceSession.create(source, sessionOptions) : await ort.InferenceSession.create(source, sessionOptions);
        attempts.push({ provider, ok: true, millis: Date.now() - started, ...(adapted ? { adapted } : {}) });
        return new ModelSession(session, file, provider, attempts);
      } catch (err) {
        attempts.push({ provider, ok: false, reason: explainProviderFailure(provider, errorMessage(err)), millis: Date.now() - started });
      }
    }
    const last = attempts[attempts.length - 1];
    throw new BeitLensError('MODEL_INVALID', `onnxruntime could not load the model (${last?.reason ?? 'no provider'})`, file);
  }

  /** Runs a batch `[n, 3, size, size]` and returns the requested float outputs. */
  async run(pixelValues: Float32Array, dims: number[], outputs: readonly string[]): Promise<Record<string, OutputTensor>> {
    const feeds = { pixel_values: new ort.Tensor('float32', pixelValues, dims) };
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = await this.session.run(feeds, outputs as string[]);
    } catch (err) {
      throw new BeitLensError('INTERNAL', `inference failed: ${firstLine(errorMessage(err))}`, this.file);
    }
    const out: Record<string, OutputTensor> = {};
    for (const name of outputs) {
      const tensor = results[name] as ort.Tensor;
      out[name] = { data: tensor.data as Float32Array, dims: [...tensor.dims] };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** WebGPU gets standard ops in place of MultiHeadAttention; onnx/explicitAttention.ts says why. */
async function graphFor(provider: ExecutionProviderName, model: string | Uint8Array): Promise<{ source: string | Uint8Array; adapted?: string }> {
  if (provider !== 'webgpu') return { source: model };
  const bytes = typeof model === 'string' ? await readFile(model) : model;
  // A byte search is far cheaper than decoding hundreds of MB to find nothing to change.
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf('MultiHeadAttention') < 0) return { source: model };
  const expanded = withExplicitAttention(bytes);
  return expanded ? { source: expanded, adapted: 'MultiHeadAttention expanded to MatMul/Softmax (its WebGPU kernel is not exact on every adapter)' } : { source: model };
}

export function runtimeVersions(): Record<string, string> {
  return { 'onnxruntime-node': ort.env.versions.node ?? 'unknown', 'onnxruntime-common': ort.env.versions.common };
}

export function bundledBackends(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

function explainProviderFailure(provider: ExecutionProviderName, message: string): string {
  const reason = firstLine(message);
  const missingWeights = /External data path does not exist: "([^"]+)"/.exec(message);
  if (missingWeights) return `its weights file ${path.basename(missingWeights[1])} is missing (${missingWeights[1]}; convert the model again)`;
  if (provider === 'cuda' && /load shared library/i.test(reason)) {
    return `${reason} (CUDA provider not installed: reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12, needs CUDA 12 and cuDNN 9)`;
  }
  if (provider === 'webgpu' && /adapter/i.test(reason)) return `no WebGPU adapter (${reason.replace(/^.*?(Failed to get)/, '$1')})`;
  return reason;
}

function firstLine(text: string): string {
  return text.split('\n')[0].slice(0, 300);
}
