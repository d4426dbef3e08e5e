import { readFile } from 'node:fs/promises';
import { BeitLensError, errorMessage } from './errors';
import { parseModelConfig } from './models/registry';
import type { VisionConfig } from './models/visionConfig';

/** A parsed config.json of any supported family (models/registry.ts chooses the family). */
export type BeitConfig = VisionConfig;

/** config.json of any supported family; an unknown model_type or an unsupported option is refused by name. */
export function parseBeitConfig(json: unknown, file = 'config.json'): BeitConfig {
  return parseModelConfig(json, file);
}

export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BeitLensError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', code === 'ENOENT' ? 'file not found' : errorMessage(err), file);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BeitLensError('CONFIG_INVALID', `invalid JSON (${errorMessage(err)})`, file);
  }
}

export async function loadBeitConfig(file: string): Promise<BeitConfig> {
  return parseBeitConfig(await readJsonFile(file), file);
}
