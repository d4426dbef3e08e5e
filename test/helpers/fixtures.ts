import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, mkdir, rm } from 'node:fs/promises';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { convertModel } from '../../src/core/convert';

export const FIXTURE_DIR = path.resolve(__dirname, '..', 'fixtures', 'beit-tiny');
export const FIXTURE_IMAGES = path.join(FIXTURE_DIR, 'images');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const expected: any = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'expected.json'), 'utf8'));

export function rawPixelValues(): Float32Array {
  const bytes = readFileSync(path.join(FIXTURE_DIR, 'pixel_values_0.bin'));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export async function tempDir(prefix = 'beit-lens-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** A tempDir maker whose folders are removed when the calling test file's tests end. */
export function removedAfterTests(): (prefix: string) => Promise<string> {
  const made: string[] = [];
  after(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));
  return async (prefix) => {
    const dir = await tempDir(prefix);
    made.push(dir);
    return dir;
  };
}

/** An HF folder holding only the weights file given, so conversion must read that one. */
export async function hfFolderWith(weights: 'model.safetensors' | 'pytorch_model.bin'): Promise<string> {
  const dir = await tempDir('beit-hf-');
  await mkdir(dir, { recursive: true });
  for (const f of ['config.json', 'preprocessor_config.json', weights]) await copyFile(path.join(FIXTURE_DIR, f), path.join(dir, f));
  return dir;
}

let converted: Promise<string> | undefined;
/** The fixture converted once per test process (fp32, optimized graphs). */
export function convertedTinyModel(): Promise<string> {
  converted ??= (async () => {
    const out = await tempDir('beit-tiny-model-');
    await convertModel({ from: FIXTURE_DIR, out });
    return out;
  })();
  return converted;
}

/** fp16 unit roundoff (11-bit significand). */
export const FP16_U = 2 ** -11;
/** fp16 logit tolerance: 10 u times the reference's logit range (float16.test.ts derives it). */
export function fp16LogitTolerance(reference: number[]): number {
  return 10 * FP16_U * (Math.max(...reference) - Math.min(...reference));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A valid 1x1 24-bit BMP: a refusal of it is about the format, never a damaged file. */
export function bmpBytes(): Buffer {
  const b = Buffer.alloc(58);
  b.write('BM');
  b.writeUInt32LE(58, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(1, 18);
  b.writeInt32LE(1, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  return b;
}
