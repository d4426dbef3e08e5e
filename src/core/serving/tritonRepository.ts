import { copyFile, link, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { stringify as yamlStringify } from 'yaml';
import { BEIT_FLOAT16_OPTIONS, writeAtomically } from '../convert';
import { BeitLensError } from '../errors';
import { computePrecision, loadModelDirectory, ModelDirectory, WEIGHTS_FILE } from '../modelDirectory';
import { EMBEDDING_OUTPUT } from '../onnx/beitGraph';
import { decodeModel } from '../onnx/decodeModel';
import { ExternalWeightsFile, externalDataFiles, inlineExternalData } from '../onnx/externalWeights';
import { convertModelToFloat16 } from '../onnx/float16';
import { ProtoEnum, ProtoMessage, toTextFormat } from './protobufText';

/**
 * `beit-lens export-triton`: a converted model folder as an NVIDIA Triton Inference Server model repository for
 * its onnxruntime backend, with a KServe InferenceService manifest for the same repository. Layout (Triton's
 * model repository documentation):
 *
 *   REPO/NAME/config.pbtxt            the model configuration (text-format ModelConfig)
 *   REPO/NAME/labels.txt              one label a line, in logit order (label_filename of `logits`)
 *   REPO/NAME/1/model.onnx/model.onnx the classify graph; an ONNX model with external weights is a folder
 *   REPO/NAME/1/model.onnx/model.weights   named model.onnx holding the graph (also model.onnx) and its weights
 *   REPO/kserve-inferenceservice.yaml
 *   REPO/README.md
 */

export const TRITON_INPUT = 'pixel_values';
export const TRITON_LOGITS = 'logits';
export const TRITON_EMBEDDING = EMBEDDING_OUTPUT;
export const TRITON_LABELS_FILE = 'labels.txt';
export const TRITON_CONFIG_FILE = 'config.pbtxt';
export const KSERVE_MANIFEST_FILE = 'kserve-inferenceservice.yaml';
export const TRITON_MODEL_VERSION = '1';
/** What Triton's onnxruntime backend loads by default, both as the folder name and as the graph inside it. */
export const TRITON_ONNX_NAME = 'model.onnx';
/** The Triton release the README's command lines name; any recent one with the onnxruntime backend serves the graph. */
export const TRITON_IMAGE = 'nvcr.io/nvidia/tritonserver:24.08-py3';
export const DEFAULT_TRITON_MODEL_NAME = 'beit';
export const DEFAULT_MAX_BATCH = 32;
export const DEFAULT_QUEUE_DELAY_MICROSECONDS = 100;

export type TritonInstanceKind = 'gpu' | 'cpu';
export type TritonDtype = 'fp32' | 'fp16';

export interface TritonExportOptions {
  /** A converted model folder (what `beit-lens convert` writes). */
  model: string;
  /** The model repository: created, or an empty folder (any folder with `force`). */
  out: string;
  name?: string;
  /** Triton's max_batch_size; 0 turns batching off (then every dims includes the batch dimension). */
  maxBatch?: number;
  instances?: number;
  kind?: TritonInstanceKind;
  /** Default: the folder's own precision. fp16 from an fp32 folder runs the converter's fp16 pass on the graph. */
  dtype?: TritonDtype;
  /** For `kind: 'gpu'`: ask the onnxruntime backend for its TensorRT execution provider in FP16. */
  tensorrtFp16?: boolean;
  queueDelayMicroseconds?: number;
  /** Write into a folder that is not empty, replacing REPO/NAME and the repository's README and manifest. */
  force?: boolean;
  onLog?: (message: string) => void;
  signal?: AbortSignal;
}

export interface TritonTensorConfig {
  name: string;
  dataType: 'TYPE_FP32' | 'TYPE_FP16';
  dims: number[];
}

export interface TritonExportResult {
  repository: string;
  modelName: string;
  modelDir: string;
  files: string[];
  /** How the external weights reached the repository: a hard link to the folder's file, a copy (another file system), a new file (fp16 pass), or none (weights in the graph). */
  weights: 'hard-linked' | 'copied' | 'rewritten' | 'none';
  dtype: TritonDtype | 'int8';
  input: TritonTensorConfig;
  outputs: TritonTensorConfig[];
}

/**
 * Model names Triton serves everywhere: the name is a folder of the repository and a segment of the v2 URLs
 * (`/v2/models/NAME`), so letters, digits, underscore, hyphen and period only, which need no escaping in either.
 */
const MODEL_NAME = /^[A-Za-z0-9_.-]+$/;

export function checkTritonModelName(name: string): void {
  if (!MODEL_NAME.test(name) || name === '.' || name === '..' || name.length > 200) {
    throw new BeitLensError('CONFIG_INVALID', `invalid Triton model name ${JSON.stringify(name)}: use letters, digits, "_", "-" and "." (not "." or "..", at most 200 characters)`);
  }
}

/**
 * Batch sizes the dynamic batcher waits a little to fill: powers of two from 4 below the maximum, and the maximum
 * itself (the size a saturated server runs). Four at most: the batcher tries them largest first.
 */
export function preferredBatchSizes(maxBatch: number): number[] {
  const sizes: number[] = [];
  for (let p = 4; p < maxBatch; p *= 2) sizes.push(p);
  sizes.push(maxBatch);
  return sizes.slice(-4);
}

const ELEM_TO_TRITON: Partial<Record<number, TritonTensorConfig['dataType']>> = {
  [onnx.TensorProto.DataType.FLOAT]: 'TYPE_FP32',
  [onnx.TensorProto.DataType.FLOAT16]: 'TYPE_FP16',
};

/** A graph input or output as Triton sees it: its element type, and its dims with a symbolic dimension as -1. */
function tensorOf(values: onnx.IValueInfoProto[] | null | undefined, name: string, kind: 'input' | 'output', graphFile: string): { dataType: TritonTensorConfig['dataType']; dims: number[]; batchSymbolic: boolean } {
  const value = values?.find((v) => v.name === name);
  if (!value) throw new BeitLensError('MODEL_INVALID', `the graph has no ${kind} ${name} (convert the model again with this version of beit-lens)`, graphFile);
  const tensorType = value.type?.tensorType;
  const elemType = tensorType?.elemType ?? 0;
  const dataType = ELEM_TO_TRITON[elemType];
  if (!dataType) throw new BeitLensError('MODEL_INVALID', `${kind} ${name} has ONNX element type ${elemType}; only float32 and float16 tensors are exported`, graphFile);
  const dims = (tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? -1 : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : -1));
  if (dims.length < 2) throw new BeitLensError('MODEL_INVALID', `${kind} ${name} has ${dims.length} dimensions; a batch dimension and at least one more are expected`, graphFile);
  const first = tensorType?.shape?.dim?.[0];
  return { dataType, dims, batchSymbolic: !!first?.dimParam || first?.dimValue === undefined || first?.dimValue === null };
}

/** Labels as Triton's label file holds them: one a line, so a label with a line break would shift every later one. */
export function tritonLabelsText(labels: readonly string[], file: string): string {
  labels.forEach((label, i) => {
    if (/[\r\n]/.test(label)) {
      throw new BeitLensError('CONFIG_INVALID', `label ${i} (${JSON.stringify(label.slice(0, 40))}) contains a line break; Triton's label file has one label a line, so it cannot hold it (edit id2label)`, file);
    }
  });
  return labels.join('\n') + '\n';
}

/** A Kubernetes resource name (DNS-1035 label) from a Triton model name: lower case, `-` for anything else. */
export function kubernetesName(modelName: string): string {
  const name = modelName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return name || 'beit-lens';
}

async function folderEntries(dir: string): Promise<string[] | undefined> {
  const info = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!info) return undefined;
  if (!info.isDirectory()) throw new BeitLensError('CONFIG_INVALID', '--out is a file; it must name a model repository folder (new or empty)', dir);
  return readdir(dir);
}

/** Hard link where it can (the weights are hundreds of MB and never change in place), a copy across file systems. */
async function linkOrCopy(from: string, to: string): Promise<'hard-linked' | 'copied'> {
  try {
    await link(from, to);
    return 'hard-linked';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK' && code !== 'EACCES') throw err;
    await copyFile(from, to);
    return 'copied';
  }
}

export async function exportTritonRepository(options: TritonExportOptions): Promise<TritonExportResult> {
  const log = options.onLog ?? (() => undefined);
  const name = options.name ?? DEFAULT_TRITON_MODEL_NAME;
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  const instances = options.instances ?? 1;
  const kind = options.kind ?? 'gpu';
  const queueDelay = options.queueDelayMicroseconds ?? DEFAULT_QUEUE_DELAY_MICROSECONDS;
  checkTritonModelName(name);
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 0) throw new BeitLensError('CONFIG_INVALID', `--max-batch must be an integer >= 0 (0: no batching), got ${maxBatch}`);
  if (!Number.isSafeInteger(instances) || instances < 1) throw new BeitLensError('CONFIG_INVALID', `--instances must be an integer >= 1, got ${instances}`);
  if (!Number.isSafeInteger(queueDelay) || queueDelay < 0) throw new BeitLensError('CONFIG_INVALID', `--queue-delay must be an integer number of microseconds >= 0, got ${queueDelay}`);
  if (kind !== 'gpu' && kind !== 'cpu') throw new BeitLensError('CONFIG_INVALID', `--kind must be gpu or cpu, got ${JSON.stringify(kind)}`);
  if (options.tensorrtFp16 && kind !== 'gpu') throw new BeitLensError('CONFIG_INVALID', '--tensorrt-fp16 needs --kind gpu: TensorRT runs on GPU instances only');
  const cancelled = () => {
    if (options.signal?.aborted) throw new BeitLensError('CANCELLED', `exporting ${options.model} cancelled`);
  };

  const directory = await loadModelDirectory(options.model);
  const { dtype, convertToFp16 } = chooseDtype(directory, options.dtype);
  const graphFile = directory.classifyModel;
  const model = decodeModel(await readFile(graphFile));
  const graph = model.graph;
  const input = tensorOf(graph?.input, TRITON_INPUT, 'input', graphFile);
  const logits = tensorOf(graph?.output, TRITON_LOGITS, 'output', graphFile);
  if (!graph?.output?.some((o) => o.name === TRITON_EMBEDDING)) {
    throw new BeitLensError('MODEL_INVALID', `the graph has no ${TRITON_EMBEDDING} (embedding) output: the folder was converted with --plain or before embeddings existed; convert it again without --plain`, graphFile);
  }
  const embedding = tensorOf(graph.output, TRITON_EMBEDDING, 'output', graphFile);
  const { imageSize, numLabels, hiddenSize } = directory.config;
  const expectDims = (what: string, got: number[], want: number[]) => {
    if (got.length !== want.length + 1 || want.some((d, i) => got[i + 1] !== d)) {
      throw new BeitLensError('MODEL_INVALID', `${what} has dims [${got.join(', ')}] but config.json implies [batch, ${want.join(', ')}]`, graphFile);
    }
  };
  expectDims(`input ${TRITON_INPUT}`, input.dims, [3, imageSize, imageSize]);
  expectDims(`output ${TRITON_LOGITS}`, logits.dims, [numLabels]);
  expectDims(`output ${TRITON_EMBEDDING}`, embedding.dims, [hiddenSize]);
  // Triton's max_batch_size > 0 means it adds the batch dimension itself, which must then be free in the graph.
  for (const [what, t] of [[`input ${TRITON_INPUT}`, input], [`output ${TRITON_LOGITS}`, logits], [`output ${TRITON_EMBEDDING}`, embedding]] as const) {
    if (maxBatch > 0 && !t.batchSymbolic) throw new BeitLensError('MODEL_INVALID', `${what} has a fixed batch dimension ${t.dims[0]}; export it with --max-batch 0`, graphFile);
  }
  // Checked before anything is written: a graph may only name weights files beside itself.
  const weightFiles = externalDataFiles(model, graphFile);
  const labelsText = tritonLabelsText(directory.config.labels.labels, path.join(directory.dir, 'config.json'));

  const entries = await folderEntries(options.out);
  if (entries && entries.length > 0 && !options.force) {
    const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? `, and ${entries.length - 3} more` : '');
    throw new BeitLensError('CONFIG_INVALID', `--out is not empty (${shown}); choose a new folder, or pass --force to replace the model ${name} and the repository's README.md and ${KSERVE_MANIFEST_FILE} in it`, options.out);
  }
  cancelled();

  const modelDir = path.join(options.out, name);
  const onnxDir = path.join(modelDir, TRITON_MODEL_VERSION, TRITON_ONNX_NAME);
  await rm(modelDir, { recursive: true, force: true });
  let weights: TritonExportResult['weights'] = 'none';
  let outDtypes = { input: input.dataType, logits: logits.dataType, embedding: embedding.dataType };
  try {
    await mkdir(onnxDir, { recursive: true });
    const graphOut = path.join(onnxDir, TRITON_ONNX_NAME);
    if (convertToFp16) {
      // The converter's fp16 pass (convert --dtype fp16) needs the weights in the graph; they go to a new file.
      await inlineExternalData(model, graphFile);
      cancelled();
      const report = convertModelToFloat16(model, BEIT_FLOAT16_OPTIONS);
      log(`fp16 compute: ${report.values} weights in ${report.tensors} tensors (${report.subnormal} subnormal, ${report.flushedToZero} flushed to zero), ${report.float32Ops} ops kept in fp32`);
      const weightsFile = await ExternalWeightsFile.create(path.join(onnxDir, WEIGHTS_FILE));
      try {
        await weightsFile.externalize(model);
        await weightsFile.finish();
      } catch (err) {
        await weightsFile.abandon();
        throw err;
      }
      weights = 'rewritten';
      const converted = model.graph!;
      outDtypes = {
        input: tensorOf(converted.input, TRITON_INPUT, 'input', graphFile).dataType,
        logits: tensorOf(converted.output, TRITON_LOGITS, 'output', graphFile).dataType,
        embedding: tensorOf(converted.output, TRITON_EMBEDDING, 'output', graphFile).dataType,
      };
      await writeAtomically(graphOut, onnx.ModelProto.encode(model).finish());
    } else {
      for (const location of weightFiles) {
        weights = await linkOrCopy(path.join(path.dirname(graphFile), location), path.join(onnxDir, location));
        log(`${location}: ${weights} into ${onnxDir}`);
      }
      // The graph's bytes unchanged: its external data names files by base name, which are now beside it.
      await copyFile(graphFile, graphOut);
    }
    cancelled();

    const batched = maxBatch > 0;
    const dims = (t: { dims: number[] }) => (batched ? t.dims.slice(1) : [-1, ...t.dims.slice(1)]);
    const tensors = {
      input: { name: TRITON_INPUT, dataType: outDtypes.input, dims: dims(input) },
      outputs: [
        { name: TRITON_LOGITS, dataType: outDtypes.logits, dims: dims(logits) },
        { name: TRITON_EMBEDDING, dataType: outDtypes.embedding, dims: dims(embedding) },
      ],
    };
    const config: ProtoMessage = {
      name,
      platform: 'onnxruntime_onnx',
      max_batch_size: maxBatch,
      input: [{ name: tensors.input.name, data_type: new ProtoEnum(tensors.input.dataType), dims: tensors.input.dims }],
      output: tensors.outputs.map((o) => ({
        name: o.name,
        data_type: new ProtoEnum(o.dataType),
        dims: o.dims,
        // Triton's classification extension (`classification` in a request's outputs) reads labels from here.
        ...(o.name === TRITON_LOGITS ? { label_filename: TRITON_LABELS_FILE } : {}),
      })),
      instance_group: [{ count: instances, kind: new ProtoEnum(kind === 'gpu' ? 'KIND_GPU' : 'KIND_CPU') }],
      // The dynamic batcher needs batching (max_batch_size > 0); without it each request runs as sent.
      dynamic_batching: batched ? { preferred_batch_size: preferredBatchSizes(maxBatch), max_queue_delay_microseconds: queueDelay } : undefined,
      optimization: options.tensorrtFp16
        ? { execution_accelerators: { gpu_execution_accelerator: [{ name: 'tensorrt', parameters: [{ key: 'precision_mode', value: 'FP16' }] }] } }
        : undefined,
    };
    await writeFile(path.join(modelDir, TRITON_CONFIG_FILE), toTextFormat(config));
    await writeFile(path.join(modelDir, TRITON_LABELS_FILE), labelsText);
    await writeFile(path.join(options.out, KSERVE_MANIFEST_FILE), kserveManifest(name, kind));
    await writeFile(path.join(options.out, 'README.md'), repositoryReadme({ name, kind, maxBatch, imageSize, numLabels, hiddenSize, dtype, tensors }));
    return {
      repository: options.out,
      modelName: name,
      modelDir,
      files: [
        path.join(name, TRITON_CONFIG_FILE),
        path.join(name, TRITON_LABELS_FILE),
        path.join(name, TRITON_MODEL_VERSION, TRITON_ONNX_NAME, TRITON_ONNX_NAME),
        ...(weights === 'none' ? [] : [path.join(name, TRITON_MODEL_VERSION, TRITON_ONNX_NAME, WEIGHTS_FILE)]),
        KSERVE_MANIFEST_FILE,
        'README.md',
      ],
      weights,
      dtype,
      ...tensors,
    };
  } catch (err) {
    // A half-written model would be loaded (and fail) by a Triton polling the repository.
    await rm(entries === undefined ? options.out : modelDir, { recursive: true, force: true });
    throw err;
  }
}

function chooseDtype(directory: ModelDirectory, requested: TritonDtype | undefined): { dtype: TritonDtype | 'int8'; convertToFp16: boolean } {
  const stored = directory.manifest?.dtype === 'int8' ? 'int8' : computePrecision(directory);
  if (requested === undefined || requested === stored) return { dtype: stored, convertToFp16: false };
  if (stored === 'fp32' && requested === 'fp16') return { dtype: 'fp16', convertToFp16: true };
  throw new BeitLensError(
    'CONFIG_INVALID',
    `the folder holds an ${stored} model; --dtype ${requested} needs a folder converted from the Hugging Face weights with \`beit-lens convert --dtype ${requested === 'fp16' ? 'fp32' : requested}\`${stored === 'int8' ? ' (or leave --dtype out to export the int8 model)' : ''}`,
    directory.dir,
  );
}

/**
 * KServe's InferenceService for the repository on its Triton serving runtime (kserve-tritonserver), which runs
 * `tritonserver --model-repository=/mnt/models` on what storageUri names and speaks the v2 protocol.
 */
export function kserveManifest(modelName: string, kind: TritonInstanceKind): string {
  const manifest = {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: kubernetesName(modelName), annotations: { 'beit-lens/triton-model-name': modelName } },
    spec: {
      predictor: {
        model: {
          modelFormat: { name: 'triton' },
          protocolVersion: 'v2',
          runtime: 'kserve-tritonserver',
          // Placeholder: upload the repository folder (the one holding this file) and name it here.
          storageUri: 's3://YOUR-BUCKET/PATH/TO/THIS/REPOSITORY',
          ...(kind === 'gpu' ? { resources: { limits: { 'nvidia.com/gpu': '1' } } } : {}),
        },
      },
    },
  };
  return '# Generated by beit-lens export-triton. Replace storageUri with where this repository is uploaded.\n' + yamlStringify(manifest);
}

function repositoryReadme(o: {
  name: string;
  kind: TritonInstanceKind;
  maxBatch: number;
  imageSize: number;
  numLabels: number;
  hiddenSize: number;
  dtype: string;
  tensors: { input: TritonTensorConfig; outputs: TritonTensorConfig[] };
}): string {
  const gpus = o.kind === 'gpu' ? '--gpus all ' : '';
  const tensorLine = (t: TritonTensorConfig) => `- \`${t.name}\`: ${t.dataType}, dims [${t.dims.join(', ')}]`;
  return `# Triton model repository: ${o.name}

Written by \`beit-lens export-triton\` (${o.dtype} model, ${o.numLabels} labels, ${o.imageSize}x${o.imageSize} input, ${o.hiddenSize}-float embedding).

- \`${o.name}/${TRITON_CONFIG_FILE}\`: the model configuration (onnxruntime backend, ${o.maxBatch > 0 ? `max_batch_size ${o.maxBatch}, dynamic batching` : 'no batching'}, ${o.kind.toUpperCase()} instances).
- \`${o.name}/${TRITON_LABELS_FILE}\`: the labels in logit order; Triton's classification extension returns them.
- \`${o.name}/${TRITON_MODEL_VERSION}/${TRITON_ONNX_NAME}/\`: version ${TRITON_MODEL_VERSION}, the ONNX graph and its external weights.
- \`${KSERVE_MANIFEST_FILE}\`: a KServe InferenceService for this repository.

Tensors${o.maxBatch > 0 ? ' (Triton adds the batch dimension)' : ''}:

${tensorLine(o.tensors.input)}
${o.tensors.outputs.map(tensorLine).join('\n')}

## Start Triton

    docker run --rm ${gpus}-p8000:8000 -p8001:8001 -p8002:8002 -v "$PWD":/models ${TRITON_IMAGE} tritonserver --model-repository=/models

(run in this folder; any recent Triton release with the onnxruntime backend will do). Check it with
\`curl localhost:8000/v2/health/ready\` and \`curl localhost:8000/v2/models/${o.name}\`.

## KServe

Upload this folder to object storage, set \`storageUri\` in \`${KSERVE_MANIFEST_FILE}\` to it, then

    kubectl apply -f ${KSERVE_MANIFEST_FILE}

## Classify through it with BEiT Lens

Preprocessing, labels and configuration stay local: \`--model\` still names the converted folder this was exported from.

    beit-lens classify --model DIR --endpoint http://HOST:8000 --remote-model ${o.name} IMAGE...
`;
}
