/**
 * `train-head --export-hf`: the trained head as a Hugging Face folder that `BeitForImageClassification
 * .from_pretrained` loads: the base checkpoint's tensors with `classifier.weight`/`classifier.bias` replaced, and
 * config.json with the new labels. A converted folder keeps no PyTorch-layout weights (its graphs fold and fuse
 * them), so the base's own Hugging Face folder is read; its parameter count must be the one the base's manifest
 * recorded, so a folder of another checkpoint is refused instead of exported with the wrong backbone.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { checkpointParameters, writeAtomically } from '../convert';
import { BeitLensError } from '../errors';
import { readJsonFile } from '../modelConfig';
import { serializeSafetensors } from '../weights/safetensors';
import { loadStateDict } from '../weights/stateDict';
import type { LogisticModel } from './logisticRegression';

export interface HuggingFaceExportOptions {
  /** The Hugging Face folder the base model was converted from. */
  hfBase: string;
  out: string;
  classNames: readonly string[];
  head: LogisticModel;
  /** The base manifest's `parameters`, when it recorded them. */
  baseParameters?: number;
}

export async function exportHuggingFaceHead(options: HuggingFaceExportOptions): Promise<{ dir: string; files: string[] }> {
  const { hfBase, out, head, classNames } = options;
  if (path.resolve(out) === path.resolve(hfBase)) throw new BeitLensError('CONFIG_INVALID', '--export-hf is the base Hugging Face folder; give a new folder', out);
  const { stateDict, source } = await loadStateDict(hfBase);
  const old = stateDict.get('classifier.weight');
  if (!old || old.shape.length !== 2) throw new BeitLensError('WEIGHTS_INVALID', 'has no classifier.weight [labels, hidden]: not an image-classification checkpoint', source);
  if (old.shape[1] !== head.columns) {
    throw new BeitLensError('WEIGHTS_INVALID', `classifier.weight takes ${old.shape[1]} features but the base model's embedding has ${head.columns}: not the checkpoint the base model was converted from`, source);
  }
  const parameters = checkpointParameters(stateDict);
  if (options.baseParameters !== undefined && parameters !== options.baseParameters) {
    throw new BeitLensError('WEIGHTS_INVALID', `has ${parameters} parameters, the base model's manifest records ${options.baseParameters}: not the checkpoint the base model was converted from`, source);
  }
  const k = head.classCount;
  stateDict.set('classifier.weight', { dtype: 'float32', shape: [k, head.columns], data: Float32Array.from(head.weights) });
  stateDict.set('classifier.bias', { dtype: 'float32', shape: [k], data: Float32Array.from(head.bias) });
  await mkdir(out, { recursive: true });
  await writeAtomically(path.join(out, 'model.safetensors'), serializeSafetensors(stateDict, { format: 'pt' }));
  const config = (await readJsonFile(path.join(hfBase, 'config.json'))) as Record<string, unknown>;
  const id2label = Object.fromEntries(classNames.map((name, i) => [String(i), name]));
  const label2id = Object.fromEntries(classNames.map((name, i) => [name, i]));
  await writeAtomically(path.join(out, 'config.json'), Buffer.from(JSON.stringify({ ...config, id2label, label2id, num_labels: k }, null, 2) + '\n'));
  await copyFile(path.join(hfBase, 'preprocessor_config.json'), path.join(out, 'preprocessor_config.json'));
  return { dir: out, files: ['config.json', 'preprocessor_config.json', 'model.safetensors'] };
}
