import { createHash } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { convertModel, ConvertOptions, ConvertResult } from './convert';
import { downloadModel, DownloadProgress } from './hub';
import { MANIFEST_FILE } from './modelDirectory';
import type { WeightType } from './onnx/beitGraph';

export const OFFICIAL_MODEL_ID = 'microsoft/beit-base-patch16-224-pt22k-ft22k';

export interface EnsureModelOptions {
  cacheDir: string;
  modelId?: string;
  revision?: string;
  dtype?: WeightType;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  onLog?: (message: string) => void;
}

export function convertedModelDir(cacheDir: string, modelId: string, revision: string, dtype: WeightType): string {
  return path.join(cacheDir, 'converted', modelId.replace('/', '--'), `${revision.replace(/[^\w.-]/g, '_')}-${dtype}`);
}

/**
 * The converted model for an id and revision: from the cache when a finished conversion is there
 * (its manifest is written last), else downloaded, converted into a temporary folder and renamed
 * into place so a cancelled or crashed run never leaves a half-converted model behind.
 */
export async function ensureModel(options: EnsureModelOptions): Promise<string> {
  const modelId = options.modelId ?? OFFICIAL_MODEL_ID;
  const revision = options.revision ?? 'main';
  const dtype = options.dtype ?? 'fp32';
  const target = convertedModelDir(options.cacheDir, modelId, revision, dtype);
  if (await isFile(path.join(target, MANIFEST_FILE))) return target;

  const log = options.onLog ?? (() => undefined);
  log(`model ${modelId}@${revision} is not converted yet: downloading from the hub`);
  const downloaded = await downloadModel({ modelId, revision, cacheDir: options.cacheDir, onProgress: options.onProgress, signal: options.signal });
  log(`converting ${downloaded.dir} (${dtype})`);
  await convertInto(target, { from: downloaded.dir, dtype, source: { modelId, revision, commit: downloaded.commit }, onLog: log, signal: options.signal });
  return target;
}

/** Where a Hugging Face folder on disk is converted to: one folder per source path, so converting it again replaces it. */
export function localConvertedModelDir(cacheDir: string, from: string): string {
  const absolute = path.resolve(from);
  const name = path.basename(absolute).replace(/[^\w.-]/g, '_') || 'model';
  return path.join(cacheDir, 'converted', 'local', `${name}-${createHash('sha256').update(absolute).digest('hex').slice(0, 12)}`);
}

/**
 * Converts a Hugging Face folder someone downloaded elsewhere (config.json, preprocessor_config.json and
 * the weights) into the cache, the way a download is converted: fp32, into a temporary folder renamed into place.
 */
export async function convertLocalModel(options: { from: string; cacheDir: string; signal?: AbortSignal; onLog?: (message: string) => void }): Promise<ConvertResult> {
  const target = localConvertedModelDir(options.cacheDir, options.from);
  return convertInto(target, { from: options.from, source: { modelId: path.basename(path.resolve(options.from)) }, onLog: options.onLog, signal: options.signal });
}

/** A cancelled or crashed conversion never leaves a half-converted model at `target`. */
async function convertInto(target: string, options: Omit<ConvertOptions, 'out'>): Promise<ConvertResult> {
  const tmp = `${target}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(path.dirname(target), { recursive: true });
  try {
    const result = await convertModel({ ...options, out: tmp });
    await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
    return { ...result, dir: target };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}
