/**
 * Writes a trained head as a converted model folder of its own: the base folder's graphs with their classifier
 * initializers replaced by the probe, the base's weights file shared (hard-linked where the file system allows,
 * else copied), config.json with the new id2label, and a manifest that lists the new graphs' sha256s (so the folder
 * passes the same integrity check as any converted one) and records where the head came from.
 *
 * Only initializers change: the classifier is `MatMul(pooled, classifier_wT) + classifier_b` in every graph style
 * and dtype the converter writes (beitGraph.ts), and the per-patch classifier of the explanation graph reads the
 * same head, so `explain` shows the new classes. Nothing in a graph depends on the label count but those tensors,
 * the outputs' last dimension and one metadata entry.
 */
import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, readFile, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { writeAtomically } from '../convert';
import { BeitLensError, errorMessage } from '../errors';
import { toFloat16 } from '../halfFloat';
import { readJsonFile } from '../modelConfig';
import { MANIFEST_FILE, type ModelDirectory, type ModelManifest } from '../modelDirectory';
import { CLASSIFIER_WEIGHT, quantizePerColumn } from '../onnx/beitGraph';
import { decodeModel } from '../onnx/decodeModel';
import type { LogisticModel } from './logisticRegression';

export type HeadProvenance = NonNullable<ModelManifest['probe']>;

export interface TrainedFolderOptions {
  base: Pick<ModelDirectory, 'dir' | 'manifest' | 'config' | 'modelId'>;
  out: string;
  classNames: readonly string[];
  /** classCount × hidden weights on raw embeddings, and the bias. */
  head: LogisticModel;
  provenance: HeadProvenance;
}

export interface TrainedFolder {
  dir: string;
  manifest: ModelManifest;
  /** How the weights file got there. */
  weights: 'linked' | 'copied' | 'none';
}

const D = onnx.TensorProto.DataType;

/** sha256 over the sorted (content sha256, class name) pairs: the same images with the same labels give the same hash. */
export function datasetContentHash(hashes: readonly string[], labels: ArrayLike<number>, classNames: readonly string[]): string {
  const pairs = hashes.map((h, i) => JSON.stringify([h, classNames[labels[i]]]));
  pairs.sort();
  return createHash('sha256').update(pairs.join('\n')).digest('hex');
}

export async function writeTrainedModelFolder(options: TrainedFolderOptions): Promise<TrainedFolder> {
  const { base, out, head, classNames } = options;
  const manifest = base.manifest;
  if (!manifest) throw new BeitLensError('MODEL_INVALID', `has no ${MANIFEST_FILE}: train-head needs a folder written by \`beit-lens convert\` or \`download\``, base.dir);
  if (path.resolve(out) === path.resolve(base.dir)) throw new BeitLensError('CONFIG_INVALID', '--out is the base model folder; give a new folder for the trained model', out);
  const hidden = base.config.hiddenSize;
  if (head.columns !== hidden) throw new BeitLensError('INTERNAL', `the head takes ${head.columns} features but the model's embedding has ${hidden}`);
  if (head.classCount !== classNames.length) throw new BeitLensError('INTERNAL', `the head has ${head.classCount} classes for ${classNames.length} names`);
  const k = head.classCount;
  const wT = new Float32Array(hidden * k);
  for (let c = 0; c < k; c++) for (let j = 0; j < hidden; j++) wT[j * k + c] = head.weights[c * hidden + j];
  const bias = Float32Array.from(head.bias);

  await mkdir(out, { recursive: true });
  const files: ModelManifest['files'] = {};
  for (const [file, entry] of Object.entries(manifest.files)) {
    const source = path.join(base.dir, file);
    const model = decodeModel(await readFile(source));
    const graph = model.graph;
    if (!graph) throw new BeitLensError('MODEL_INVALID', 'has no graph', source);
    replaceInitializer(graph, CLASSIFIER_WEIGHT, wT, [hidden, k], source);
    replaceInitializer(graph, 'classifier_b', bias, [k], source);
    if (entry.outputs === 'full') {
      if (graph.initializer?.some((t) => t.name === 'patch_classifier_w_int8')) {
        const q = quantizePerColumn(wT, hidden, k);
        replaceInitializer(graph, 'patch_classifier_w_int8', q.values, [hidden, k], source);
        replaceInitializer(graph, 'patch_classifier_w_scale', q.scales, [k], source);
      } else {
        replaceInitializer(graph, 'patch_classifier_wT', wT, [hidden, k], source);
      }
      replaceInitializer(graph, 'patch_classifier_b', bias, [k], source);
    }
    for (const output of graph.output ?? []) {
      if (output.name !== 'logits' && output.name !== 'patch_logits') continue;
      const dims = output.type?.tensorType?.shape?.dim;
      if (!dims?.length) continue;
      dims[dims.length - 1] = { dimValue: k };
    }
    for (const p of model.metadataProps ?? []) if (p.key === 'beit_lens.num_labels') p.value = String(k);
    const bytes = onnx.ModelProto.encode(model).finish();
    await writeAtomically(path.join(out, file), bytes);
    files[file] = { bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), outputs: entry.outputs };
  }

  let weights: TrainedFolder['weights'] = 'none';
  if (manifest.weights) {
    const from = path.join(base.dir, manifest.weights.file);
    const to = path.join(out, manifest.weights.file);
    await unlink(to).catch(() => undefined);
    try {
      // A hard link shares the bytes safely: convert replaces a weights file by rename, never in place.
      await link(from, to);
      weights = 'linked';
    } catch {
      try {
        await copyFile(from, to);
      } catch (err) {
        throw new BeitLensError('FILE_UNREADABLE', `cannot link or copy the base model's weights: ${errorMessage(err)}`, from);
      }
      weights = 'copied';
    }
  }

  const config = (await readJsonFile(path.join(base.dir, 'config.json'))) as Record<string, unknown>;
  const id2label = Object.fromEntries(classNames.map((name, i) => [String(i), name]));
  const label2id = Object.fromEntries(classNames.map((name, i) => [name, i]));
  await writeAtomically(path.join(out, 'config.json'), Buffer.from(JSON.stringify({ ...config, id2label, label2id, num_labels: k }, null, 2) + '\n'));
  await copyFile(path.join(base.dir, 'preprocessor_config.json'), path.join(out, 'preprocessor_config.json'));

  const primary = Object.keys(files).includes('model.logits.onnx') ? files['model.logits.onnx'] : Object.values(files)[0];
  const idHash = createHash('sha256').update(manifest.weights ? `${primary.sha256}:${manifest.weights.sha256}` : primary.sha256).digest('hex').slice(0, 16);
  const baseName = base.modelId.replace(/@[0-9a-f]+$/, '');
  const oldLabels = manifest.numLabels;
  const written: ModelManifest = {
    ...manifest,
    modelId: `${baseName}+head@${idHash}`,
    numLabels: k,
    missingLabelKeys: [],
    ...(manifest.parameters !== undefined ? { parameters: manifest.parameters - oldLabels * (hidden + 1) + k * (hidden + 1) } : {}),
    files,
    probe: options.provenance,
  };
  await writeAtomically(path.join(out, MANIFEST_FILE), Buffer.from(JSON.stringify(written, null, 2) + '\n'));
  return { dir: out, manifest: written, weights };
}

/** Replaces an initializer's values in place, in the element type the graph stores it in; stored in the graph itself. */
function replaceInitializer(graph: onnx.IGraphProto, name: string, data: Float32Array | Int8Array, dims: number[], file: string): void {
  const tensor = graph.initializer?.find((t) => t.name === name);
  if (!tensor) throw new BeitLensError('MODEL_INVALID', `has no ${name} initializer (not a graph beit-lens convert wrote, or an older one; convert the base model again)`, file);
  let raw: Uint8Array;
  if (data instanceof Int8Array) {
    if (tensor.dataType !== D.INT8) throw new BeitLensError('MODEL_INVALID', `${name} is not int8 (element type ${tensor.dataType})`, file);
    raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else if (tensor.dataType === D.FLOAT16) {
    const half = toFloat16(data);
    raw = new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
  } else if (tensor.dataType === D.FLOAT) {
    raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else {
    throw new BeitLensError('MODEL_INVALID', `${name} has element type ${tensor.dataType}, expected float or float16`, file);
  }
  tensor.dims = dims;
  tensor.rawData = Uint8Array.from(raw);
  tensor.floatData = [];
  tensor.int32Data = [];
  tensor.externalData = [];
  tensor.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
}
