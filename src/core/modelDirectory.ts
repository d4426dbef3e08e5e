import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { BeitLensError } from './errors';
import { BeitConfig, loadBeitConfig, readJsonFile } from './modelConfig';
import { loadPreprocessorConfig, modelInputSize, PreprocessorConfig } from './preprocessorConfig';

export const FULL_MODEL_FILE = 'model.onnx';
export const LOGITS_MODEL_FILE = 'model.logits.onnx';
export const MANIFEST_FILE = 'beit-lens.json';
/** The weights both graphs of an optimized model refer to (ONNX external data, src/core/onnx/externalWeights.ts). */
export const WEIGHTS_FILE = 'model.weights';

const ManifestSchema = z.object({
  formatVersion: z.literal(1),
  modelId: z.string().min(1).max(300),
  source: z.object({ modelId: z.string().optional(), revision: z.string().optional(), commit: z.string().optional(), weights: z.string().optional() }),
  dtype: z.enum(['fp32', 'fp16', 'int8']),
  /** What the graphs compute in. Absent in folders converted before fp16 compute existed: those stored fp16 weights but computed in fp32. */
  compute: z.enum(['fp32', 'fp16']).optional(),
  style: z.enum(['optimized', 'plain']),
  numLabels: z.number().int().positive(),
  missingLabelKeys: z.array(z.number().int().nonnegative()),
  /** The checkpoint's parameter count (PyTorch's). Absent in folders converted before it was recorded. */
  parameters: z.number().int().nonnegative().optional(),
  files: z.record(z.string(), z.object({ bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/), outputs: z.enum(['full', 'logits']) })),
  /** The external weights file of the graphs. Absent for the plain style and for folders converted before it existed (weights in-line). */
  weights: z.object({ file: z.literal(WEIGHTS_FILE), bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  /** Present in folders written by `train-head`: the backbone's model and the data the head was trained on. */
  probe: z
    .object({
      baseModelId: z.string().min(1).max(300),
      /** sha256 over the sorted (content sha256, class name) pairs of the images trained and evaluated on. */
      datasetSha256: z.string().regex(/^[0-9a-f]{64}$/),
      images: z.number().int().nonnegative(),
      /** Null when trained without a holdout. */
      holdoutAccuracy: z.number().min(0).max(1).nullable(),
      holdoutImages: z.number().int().nonnegative(),
      l2: z.number().positive(),
      seed: z.number().int(),
      /** ISO 8601. */
      trainedAt: z.string(),
    })
    .optional(),
});
export type ModelManifest = z.infer<typeof ManifestSchema>;

/** A converted model folder: what `convert` writes and what every consumer loads. */
export interface ModelDirectory {
  dir: string;
  config: BeitConfig;
  preprocessor: PreprocessorConfig;
  /** Logits, attentions and patch logits (explanations). Absent for a plain logits-only export. */
  fullModel?: string;
  /** The cheapest graph that yields logits: the logits-only graph when there is one. */
  classifyModel: string;
  manifest?: ModelManifest;
  /** Identifies weights and graph for result caches; changes when the model file changes. */
  modelId: string;
}

export function computePrecision(directory: Pick<ModelDirectory, 'manifest'>): 'fp32' | 'fp16' {
  return directory.manifest?.compute ?? 'fp32';
}

export async function loadModelDirectory(dir: string): Promise<ModelDirectory> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new BeitLensError('FILE_NOT_FOUND', 'model folder not found', dir);
  if (!info.isDirectory()) throw new BeitLensError('MODEL_INVALID', 'not a folder (expected a converted model folder with model.onnx)', dir);
  const config = await loadBeitConfig(path.join(dir, 'config.json'));
  const preprocessor = await loadPreprocessorConfig(path.join(dir, 'preprocessor_config.json'));
  checkInputSizesAgree(config, preprocessor, path.join(dir, 'preprocessor_config.json'));
  const manifestFile = path.join(dir, MANIFEST_FILE);
  let manifest: ModelManifest | undefined;
  if (await exists(manifestFile)) {
    const parsed = ManifestSchema.safeParse(await readJsonFile(manifestFile));
    if (!parsed.success) throw new BeitLensError('MODEL_INVALID', `invalid manifest: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`, manifestFile);
    manifest = parsed.data;
    if (manifest.numLabels !== config.numLabels) {
      throw new BeitLensError('MODEL_INVALID', `manifest says ${manifest.numLabels} labels but config.json has ${config.numLabels}`, manifestFile);
    }
  }
  const full = path.join(dir, FULL_MODEL_FILE);
  const logits = path.join(dir, LOGITS_MODEL_FILE);
  const hasFull = await exists(full);
  const hasLogits = await exists(logits);
  if (!hasFull && !hasLogits) {
    throw new BeitLensError('MODEL_INVALID', `no ${FULL_MODEL_FILE} in the model folder (run \`beit-lens convert\` first)`, dir);
  }
  if (manifest?.weights) {
    // Checked here so a missing or cut-short weights file is named, instead of surfacing as onnxruntime's load error.
    const weightsPath = path.join(dir, manifest.weights.file);
    const size = (await stat(weightsPath).catch(() => undefined))?.size;
    if (size === undefined) throw new BeitLensError('MODEL_INVALID', `${manifest.weights.file} is missing: the graphs keep their weights there (convert the model again)`, weightsPath);
    if (size !== manifest.weights.bytes) {
      throw new BeitLensError('MODEL_INVALID', `${manifest.weights.file} is ${size} bytes, the manifest says ${manifest.weights.bytes} (cut short or replaced; convert the model again)`, weightsPath);
    }
  }
  const fullIsLogitsOnly = manifest?.files[FULL_MODEL_FILE]?.outputs === 'logits';
  const classifyModel = hasLogits ? logits : full;
  return {
    dir,
    config,
    preprocessor,
    fullModel: hasFull && !fullIsLogitsOnly ? full : undefined,
    classifyModel,
    manifest,
    modelId: manifest?.modelId ?? `${path.basename(path.resolve(dir))}@${await quickFileId(classifyModel)}`,
  };
}

/**
 * The processor must produce exactly the model's input: otherwise every batch would be assembled from
 * wrongly sized images (a RangeError or silently zero-padded input) instead of failing once, up front.
 */
export function checkInputSizesAgree(config: BeitConfig, preprocessor: PreprocessorConfig, file: string): void {
  const { width, height } = modelInputSize(preprocessor);
  if (width !== config.imageSize || height !== config.imageSize) {
    throw new BeitLensError('CONFIG_INVALID', `produces ${width}x${height} model inputs but config.json has image_size ${config.imageSize}`, file);
  }
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}

/** Without a manifest, size plus the hash of the first and last MiB is enough to key caches. */
async function quickFileId(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const hash = createHash('sha256').update(String(size));
    const chunk = Buffer.alloc(Math.min(size, 1 << 20));
    await handle.read(chunk, 0, chunk.length, 0);
    hash.update(chunk);
    await handle.read(chunk, 0, chunk.length, Math.max(0, size - chunk.length));
    hash.update(chunk);
    return hash.digest('hex').slice(0, 16);
  } finally {
    await handle.close();
  }
}
