import { copyFile, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { convertModel } from '../../src/core/convert';
import { FIXTURE_DIR, tempDir } from './fixtures';

/**
 * The tiny fixture with id2label key 3 missing (keys 0-2, 4-10), as the official checkpoint skips 9205 and 15027:
 * label index 3 has key 4 from there on. Converted into `out` (a new temp folder by default).
 */
export async function gappedTinyModel(out?: string): Promise<string> {
  const hf = await tempDir('beit-gapped-hf-');
  for (const f of ['preprocessor_config.json', 'model.safetensors']) await copyFile(path.join(FIXTURE_DIR, f), path.join(hf, f));
  const config = JSON.parse(await readFile(path.join(FIXTURE_DIR, 'config.json'), 'utf8'));
  const labels = Object.keys(config.id2label)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => config.id2label[k] as string);
  config.id2label = Object.fromEntries(labels.map((l, i) => [String(i < 3 ? i : i + 1), l]));
  config.label2id = Object.fromEntries(Object.entries(config.id2label).map(([k, v]) => [v, Number(k)]));
  await writeFile(path.join(hf, 'config.json'), JSON.stringify(config));
  const dir = out ?? (await tempDir('beit-gapped-model-'));
  await convertModel({ from: hf, out: dir });
  return dir;
}
