/**
 * What the Model view shows about a loaded model, the things a graph viewer such as Netron does not say: the
 * BEiT configuration, both graphs' inputs and outputs, the parameter count, precision, the provider actually in
 * use, file sizes and every label with its index (and the id2label keys the checkpoint skips). Plain data, so it
 * crosses the worker boundary and reaches a webview as it is.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { BeitModel } from './beitModel';
import { computePrecision, MANIFEST_FILE } from './modelDirectory';
import { familyById } from './models/registry';
import { decodeModel } from './onnx/decodeModel';
import type { ModelInfoDto as ModelInfo, TensorInfoDto as TensorInfo } from '../shared/protocol';

export type { ModelInfoDto as ModelInfo, TensorInfoDto as TensorInfo } from '../shared/protocol';
type GraphInfo = ModelInfo['graphs'][number];

const ELEMENT_TYPES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16' };

function tensorInfo(v: onnx.IValueInfoProto): TensorInfo {
  const t = v.type?.tensorType;
  return {
    name: v.name ?? '',
    type: ELEMENT_TYPES[t?.elemType ?? 0] ?? `type ${t?.elemType ?? '?'}`,
    shape: (t?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0))),
  };
}

/** A graph file's inputs (initializers left out) and outputs, read from the graph alone: its weights are external. */
export async function graphInterface(file: string): Promise<{ inputs: TensorInfo[]; outputs: TensorInfo[] }> {
  const proto = decodeModel(await readFile(file));
  const initializers = new Set((proto.graph?.initializer ?? []).map((t) => t.name));
  return {
    inputs: (proto.graph?.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map(tensorInfo),
    outputs: (proto.graph?.output ?? []).map(tensorInfo),
  };
}

export async function describeModel(model: BeitModel): Promise<ModelInfo> {
  const d = model.directory;
  const graphFiles: { file: string; role: GraphInfo['role'] }[] = [{ file: d.classifyModel, role: d.fullModel === d.classifyModel ? 'explain' : 'classify' }];
  if (d.fullModel && d.fullModel !== d.classifyModel) graphFiles.push({ file: d.fullModel, role: 'explain' });
  const graphs: GraphInfo[] = [];
  for (const g of graphFiles) {
    // The graphs keep their weights in model.weights (external data), so decoding one reads kilobytes, not the weights.
    graphs.push({ file: path.basename(g.file), role: g.role, ...(await graphInterface(g.file)) });
  }
  const files: ModelInfo['files'] = [];
  const names = ['config.json', 'preprocessor_config.json', MANIFEST_FILE, ...graphFiles.map((g) => path.basename(g.file)), ...(d.manifest?.weights ? [d.manifest.weights.file] : [])];
  for (const name of names) {
    const s = await stat(path.join(d.dir, name)).catch(() => undefined);
    if (s?.isFile()) files.push({ name, bytes: s.size });
  }
  const c = d.config;
  const family = familyById(c.architecture.family);
  return {
    dir: d.dir,
    modelId: d.modelId,
    family: family.displayName,
    architecture: family.classifierClass,
    config: { hiddenSize: c.hiddenSize, numLayers: c.numLayers, numHeads: c.numHeads, headDim: c.headDim, intermediateSize: c.intermediateSize, imageSize: c.imageSize, patchSize: c.patchSize, gridSize: c.gridSize, numTokens: c.numTokens, leadingTokens: c.architecture.leadingTokens, pooling: c.architecture.pooling, layerNormEps: c.layerNormEps },
    graphs,
    parameters: d.manifest?.parameters ?? null,
    dtype: d.manifest?.dtype ?? 'fp32',
    compute: computePrecision(d),
    provider: model.provider,
    files,
    labels: [...c.labels.labels],
    missingLabelKeys: [...c.labels.missingKeys],
  };
}
