import { createHash } from 'node:crypto';
import { copyFile, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { BeitLensError } from './errors';
import { describeLabelGaps } from './labels';
import { BeitConfig, loadBeitConfig } from './modelConfig';
import { checkInputSizesAgree, MANIFEST_FILE, ModelManifest, FULL_MODEL_FILE, LOGITS_MODEL_FILE, WEIGHTS_FILE } from './modelDirectory';
import { decodeModel } from './onnx/decodeModel';
import { buildBeitGraph, CLASSIFIER_WEIGHT, GraphStyle, WeightLookup, WeightType } from './onnx/beitGraph';
import { ExternalWeightsFile } from './onnx/externalWeights';
import { ComputePrecision, convertModelToFloat16, Float16Options } from './onnx/float16';
import { relativePositionIndex } from './models/beit/relativePosition';
import { loadPreprocessorConfig } from './preprocessorConfig';
import { getFloat, loadStateDict, StateDict } from './weights/stateDict';

/**
 * What stays fp32 in an fp16-compute BEiT: the mean pooling (float16.ts says why) and the logits classifier's
 * product. GPU kernels (WebGPU's, at least) accumulate fp16 products in fp16; over the classifier's 768 inputs
 * that alone put the logits of the random BEiT-base 2.6e-2 off fp32 on WebGPU, and 7.5e-3 with that one
 * product in fp32 (all products in fp32: 4.9e-3). It is a matrix-vector product per image, ~0.1% of the work.
 */
export const BEIT_FLOAT16_OPTIONS: Float16Options = { keepFloat32Ops: ['ReduceMean'], keepFloat32Inputs: [CLASSIFIER_WEIGHT] };

export interface ConvertOptions {
  from: string;
  out: string;
  /** fp16: weights and all float math in fp16 (for GPUs); the interface stays float32. */
  dtype?: WeightType;
  /** A PyTorch-export-like graph (standard ops, logits only): the benchmark's peer, not for users. */
  plain?: boolean;
  source?: { modelId?: string; revision?: string; commit?: string };
  onLog?: (message: string) => void;
  /** Checked between the slow steps (reading weights, each graph); an abort throws CANCELLED. */
  signal?: AbortSignal;
}

export interface ConvertResult {
  dir: string;
  files: string[];
  warnings: string[];
  manifest: ModelManifest;
}

/** What `--from` must hold, said when it does not (a converted folder or a random folder passed by mistake). */
const HF_FOLDER_CONTENTS = 'config.json, preprocessor_config.json and model.safetensors or pytorch_model.bin';

/**
 * "config.json: file not found" reads as a broken model; the usual cause is the wrong folder (its parent, a
 * checkout of something else), so that is what is said. A folder with config.json but no weights is worded by
 * loadStateDict.
 */
async function checkHuggingFaceFolder(from: string): Promise<void> {
  const stats = await stat(from).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new BeitLensError('FILE_NOT_FOUND', 'folder not found', from);
    throw e;
  });
  if (!stats.isDirectory()) throw new BeitLensError('MODEL_INVALID', `is not a folder; --from takes a Hugging Face model folder (${HF_FOLDER_CONTENTS})`, from);
  const hasConfig = await stat(path.join(from, 'config.json')).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!hasConfig) throw new BeitLensError('MODEL_INVALID', `not a Hugging Face model folder: it has no config.json (one holds ${HF_FOLDER_CONTENTS})`, from);
}

/**
 * The checkpoint's parameter count as PyTorch's `sum(p.numel() for p in model.parameters())` gives it: every float
 * tensor (buffers such as relative_position_index are int64). Counted here, from the source, because the graphs
 * cannot say it: they hold the relative position bias expanded per layer and the layer scales folded into weights.
 */
export function checkpointParameters(stateDict: StateDict): number {
  let total = 0;
  for (const t of stateDict.values()) if (t.dtype === 'float32') total += t.shape.reduce((n, d) => n * d, 1);
  return total;
}

export async function convertModel(options: ConvertOptions): Promise<ConvertResult> {
  const log = options.onLog ?? (() => undefined);
  const dtype = options.dtype ?? 'fp32';
  const configFile = path.join(options.from, 'config.json');
  const preprocessorFile = path.join(options.from, 'preprocessor_config.json');
  await checkHuggingFaceFolder(options.from);
  const config = await loadBeitConfig(configFile);
  // Validates both before the slow part.
  checkInputSizesAgree(config, await loadPreprocessorConfig(preprocessorFile), preprocessorFile);
  const warnings: string[] = [];
  const gaps = describeLabelGaps(config.labels, configFile);
  if (gaps) warnings.push(gaps);

  const cancelled = () => {
    if (options.signal?.aborted) throw new BeitLensError('CANCELLED', `converting ${options.from} cancelled`);
  };
  cancelled();
  const { stateDict, source } = await loadStateDict(options.from);
  cancelled();
  log(`read ${stateDict.size} tensors from ${source}`);
  checkRelativePositionIndexBuffers(stateDict, config, source);
  // A NaN or infinite weight would make every score NaN (or one class 100%) in a model that loads fine; each
  // tensor is checked once, though both graphs read it.
  const finite = new Set<string>();
  const weight: WeightLookup = (name, shape) => {
    const data = getFloat(stateDict, name, shape, source);
    if (!finite.has(name)) {
      checkFiniteWeights(name, data, source);
      finite.add(name);
    }
    return data;
  };
  const classifierRows = stateDict.get('classifier.weight')?.shape[0];
  if (classifierRows !== undefined && classifierRows !== config.numLabels) {
    throw new BeitLensError('WEIGHTS_INVALID', `classifier.weight has ${classifierRows} rows but config.json has ${config.numLabels} labels`, source);
  }

  await mkdir(options.out, { recursive: true });
  const style: GraphStyle = options.plain ? 'plain' : 'optimized';
  const graphs: { file: string; outputs: 'full' | 'logits' }[] = options.plain
    ? [{ file: FULL_MODEL_FILE, outputs: 'logits' }]
    : [
        { file: FULL_MODEL_FILE, outputs: 'full' },
        { file: LOGITS_MODEL_FILE, outputs: 'logits' },
      ];
  const files: ModelManifest['files'] = {};
  // fp16 compute: the fp32 graph, then every float tensor in it made fp16 (src/core/onnx/float16.ts).
  const compute: ComputePrecision = dtype === 'fp16' ? 'fp16' : 'fp32';
  // Our graphs keep their weights in one shared file (onnx/externalWeights.ts says why); the plain graph stays
  // one self-contained file, as a PyTorch export of a model this size is.
  const weightsFile = style === 'optimized' ? await ExternalWeightsFile.create(path.join(options.out, WEIGHTS_FILE)) : undefined;
  let weights: ModelManifest['weights'];
  try {
    for (const graph of graphs) {
      cancelled();
      let bytes = buildBeitGraph(config, weight, { outputs: graph.outputs, style, weightType: dtype === 'int8' ? 'int8' : 'fp32' });
      if (compute === 'fp16' || weightsFile) {
        // Both passes work on the decoded graph: decoded and encoded once however many run.
        const model = decodeModel(bytes);
        if (compute === 'fp16') {
          const r = convertModelToFloat16(model, BEIT_FLOAT16_OPTIONS);
          log(`${graph.file}: fp16 compute: ${r.values} weights in ${r.tensors} tensors (${r.subnormal} subnormal, ${r.flushedToZero} flushed to zero), ${r.float32Ops} ops kept in fp32`);
        }
        if (weightsFile) {
          const { moved, shared } = await weightsFile.externalize(model);
          log(`${graph.file}: ${moved} tensors moved to ${WEIGHTS_FILE}, ${shared} shared with an earlier graph`);
        }
        bytes = onnx.ModelProto.encode(model).finish();
      }
      await writeAtomically(path.join(options.out, graph.file), bytes);
      files[graph.file] = { bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), outputs: graph.outputs };
      log(`wrote ${graph.file} (${(bytes.byteLength / 1e6).toFixed(1)} MB, ${graph.outputs} outputs, ${style}, ${dtype})`);
    }
    if (weightsFile) {
      const summary = await weightsFile.finish();
      weights = { ...summary, file: WEIGHTS_FILE };
      log(`wrote ${WEIGHTS_FILE} (${(summary.bytes / 1e6).toFixed(1)} MB)`);
    }
  } catch (err) {
    await weightsFile?.abandon();
    throw err;
  }
  await copyFile(configFile, path.join(options.out, 'config.json'));
  await copyFile(preprocessorFile, path.join(options.out, 'preprocessor_config.json'));

  const primary = files[LOGITS_MODEL_FILE] ?? files[FULL_MODEL_FILE];
  const manifest: ModelManifest = {
    formatVersion: 1,
    // Identifies graph and weights: with external weights the graph file alone says nothing of their values.
    modelId: `${options.source?.modelId ?? path.basename(path.resolve(options.from))}@${(weights ? createHash('sha256').update(`${primary.sha256}:${weights.sha256}`).digest('hex') : primary.sha256).slice(0, 16)}`,
    source: { ...options.source, weights: path.basename(source) },
    dtype,
    compute,
    style,
    numLabels: config.numLabels,
    missingLabelKeys: config.labels.missingKeys,
    parameters: checkpointParameters(stateDict),
    files,
    ...(weights ? { weights } : {}),
  };
  await writeAtomically(path.join(options.out, MANIFEST_FILE), Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  return { dir: options.out, files: [...Object.keys(files), ...(weights ? [weights.file] : []), 'config.json', 'preprocessor_config.json', MANIFEST_FILE], warnings, manifest };
}

function checkFiniteWeights(name: string, data: Float32Array, file: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new BeitLensError('WEIGHTS_INVALID', `tensor ${name} has a non-finite value (${data[i]} at element ${i}); refusing to convert it`, file);
  }
}

/**
 * The official 2021 checkpoint stores each layer's relative_position_index. We compute the index
 * ourselves, so a stored one that differs means the weights expect another layout: refuse them.
 */
function checkRelativePositionIndexBuffers(stateDict: StateDict, config: BeitConfig, file: string): void {
  // Computed only once a stored index of the right shape exists, so its size is one the file itself holds.
  let expected: Int32Array | undefined;
  for (const [name, tensor] of stateDict) {
    if (!name.endsWith('relative_position_index')) continue;
    const t = config.numTokens;
    if (tensor.dtype !== 'int64' || tensor.shape.length !== 2 || tensor.shape[0] !== t || tensor.shape[1] !== t) {
      throw new BeitLensError('WEIGHTS_INVALID', `${name} should be int64 [${t},${t}], got ${tensor.dtype} [${tensor.shape.join(',')}]`, file);
    }
    expected ??= relativePositionIndex(config.gridSize);
    const data = tensor.data as BigInt64Array;
    for (let i = 0; i < expected.length; i++) {
      if (data[i] !== BigInt(expected[i])) {
        throw new BeitLensError('WEIGHTS_INVALID', `${name} differs from BEiT's relative position layout at entry ${i}`, file);
      }
    }
  }
}

export async function writeAtomically(file: string, data: Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}
