/**
 * A generated ImageFolder dataset with every awkward case the scanner must handle, built at test time in a temp
 * folder, plus model wrappers for counting and slowing down inference.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { encodePng } from '../../src/core/image';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { decodeFileName } from '../../src/core/scan/fileNames';
import type { ScanModel } from '../../src/core/scan/scanner';
import type { PreprocessorConfig } from '../../src/core/preprocessorConfig';

export const CLASSES = ['tabby', 'river_otters', 'balloon', 'xyz'] as const;
export const PER_CLASS = 50;

export interface ScanFixture {
  root: string;
  /** Every path the scan must report (as `path.join(root, relative)`), decodable-name form. */
  expected: string[];
  /** Files that must become error rows, with a pattern their reason must match. */
  errors: Record<string, RegExp>;
  /** Files that must not be reported (gitignored, excluded, behind a link loop). */
  hidden: string[];
  /** Misfiled images: path -> the class they really belong to. */
  misfiled: Record<string, string>;
  nonUtf8: string;
  longName: string;
}

/** Pure-byte name: "caf\xe9_\xff.png" (Latin-1 é and a stray 0xff), which is not UTF-8. */
const NON_UTF8_NAME = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from('_'), Buffer.from([0xff]), Buffer.from('.png')]);

export async function makeScanFixture(root: string): Promise<ScanFixture> {
  const files = await writeSyntheticDataset(root, { classes: CLASSES, perClass: PER_CLASS, width: 40, height: 30 });
  const expected = [...files];
  const errors: Record<string, RegExp> = {};
  const hidden: string[] = [];
  const misfiled: Record<string, string> = {};
  const png = (seed: number) => {
    const rgb = new Uint8Array(24 * 18 * 3).map((_, i) => (i * (seed + 3) + seed * 17) & 255);
    return encodePng(rgb, 24, 18, 3);
  };

  // Misfiled: river otter images (a different pattern family) sitting in the tabby folder.
  for (let i = 0; i < 3; i++) {
    const file = path.join(root, 'tabby', `misfiled_${i}.png`);
    await writeFile(file, await png(100 + i));
    expected.push(file);
    misfiled[file] = 'river_otters';
  }

  // Bad input: each must be one error row with its reason.
  const valid = await readFile(files[0]);
  const bad: Array<[string, Buffer | string, RegExp]> = [
    ['tabby/truncated.png', valid.subarray(0, Math.floor(valid.length / 2)), /decode|truncat|premature|end|corrupt/i],
    ['balloon/empty.jpg', Buffer.alloc(0), /empty \(0 bytes\)/],
    ['xyz/notes.png', 'these are not pixels\n', /not a recognised image/],
    ['river_otters/vector.png', '<svg xmlns="http://www.w3.org/2000/svg"/>', /SVG.*not supported/],
  ];
  for (const [rel, content, reason] of bad) {
    const file = path.join(root, rel);
    await writeFile(file, content);
    expected.push(file);
    errors[file] = reason;
  }
  const dangling = path.join(root, 'balloon', 'dangling.jpg');
  symlinkSync(path.join(root, 'no-such-file.jpg'), dangling);
  expected.push(dangling);
  errors[dangling] = /not found|broken symbolic link/;
  const fifo = path.join(root, 'xyz', 'pipe.png');
  execFileSync('mkfifo', [fifo]);
  expected.push(fifo);
  errors[fifo] = /named pipe/;

  // Odd names: not UTF-8, and 220 characters.
  const nonUtf8Bytes = Buffer.concat([Buffer.from(path.join(root, 'xyz') + path.sep), NON_UTF8_NAME]);
  writeFileSync(nonUtf8Bytes, await png(7));
  const nonUtf8 = decodeFileName(nonUtf8Bytes);
  expected.push(nonUtf8);
  const longName = path.join(root, 'river_otters', `${'long_'.repeat(43)}name.png`);
  await writeFile(longName, await png(8));
  expected.push(longName);

  // Ignored by a nested .gitignore (folder rule, and a pattern with a negation), and a link loop.
  await writeFile(path.join(root, '.gitignore'), 'scratch/\n');
  mkdirSync(path.join(root, 'scratch'));
  for (let i = 0; i < 3; i++) {
    const file = path.join(root, 'scratch', `s${i}.png`);
    await writeFile(file, await png(200 + i));
    hidden.push(file);
  }
  await writeFile(path.join(root, 'balloon', '.gitignore'), '*.tmp.png\n!keep.tmp.png\n');
  for (const name of ['drop.tmp.png', 'keep.tmp.png']) {
    const file = path.join(root, 'balloon', name);
    await writeFile(file, await png(name.length));
    (name === 'keep.tmp.png' ? expected : hidden).push(file);
  }
  symlinkSync('..', path.join(root, 'tabby', 'loop'));
  hidden.push(path.join(root, 'tabby', 'loop', 'tabby', 'tabby_00000.png'));
  // Not an image extension at all: never listed.
  await writeFile(path.join(root, 'xyz', 'readme.txt'), 'hello');
  return { root, expected, errors, hidden, misfiled, nonUtf8, longName };
}

/**
 * Wraps a model: counts images sent to it, optionally waits before each batch. `embed`: also passes the model's
 * embedding fetch through (counted the same way), so the scan stores embeddings.
 */
export function countingModel(model: ScanModel, options: { delayMs?: number; modelId?: string; embed?: boolean } = {}): ScanModel & { images: number; batches: number } {
  const count = async (n: number) => {
    wrapper.images += n;
    wrapper.batches++;
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
  };
  const wrapper: ScanModel & { images: number; batches: number } = {
    images: 0,
    batches: 0,
    modelId: options.modelId ?? model.modelId,
    labels: model.labels,
    directory: model.directory,
    async logits(pixelValues: Float32Array, n: number): Promise<Float32Array> {
      await count(n);
      return model.logits(pixelValues, n);
    },
  };
  if (options.embed) {
    const { logitsAndEmbeddings } = model;
    if (!model.canEmbed || !logitsAndEmbeddings) throw new Error('countingModel: this model cannot embed');
    Object.assign(wrapper, {
      canEmbed: true,
      embeddingSize: model.embeddingSize,
      async logitsAndEmbeddings(pixelValues: Float32Array, n: number) {
        await count(n);
        return logitsAndEmbeddings.call(model, pixelValues, n);
      },
    });
  }
  return wrapper;
}

/** A model that answers instantly: logits derived from a few input values, so different images differ. */
export function fakeModel(preprocessor: PreprocessorConfig, labels: readonly string[], modelId = 'fake-model@1'): ScanModel & { images: number } {
  const wrapper = {
    images: 0,
    modelId,
    labels,
    directory: { preprocessor },
    async logits(pixelValues: Float32Array, n: number): Promise<Float32Array> {
      wrapper.images += n;
      const per = pixelValues.length / n;
      const out = new Float32Array(n * labels.length);
      for (let i = 0; i < n; i++) for (let c = 0; c < labels.length; c++) out[i * labels.length + c] = pixelValues[i * per + ((c * 7919) % per)];
      return out;
    },
  };
  return wrapper;
}

export async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}
