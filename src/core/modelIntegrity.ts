/**
 * Checks a converted folder against the sha256s its manifest lists before anything runs on it: a same-size
 * damaged `model.weights`, a replaced graph or a manifest with wrong hashes would otherwise load and give wrong
 * scores, and results cached under the manifest's model id would then be served to the good model.
 *
 * Hashing a BEiT-base folder reads 430 MB, so a verified file is recorded with its size, mtime, ctime and
 * inode (the scan cache's test for "unchanged", resultStore.ts) and a later load of the unchanged folder only
 * stats it. The records live beside the caches (default `<BEIT_LENS_CACHE or ~/.cache/beit-lens>/verified-models`),
 * not in the model folder, which may be read-only (a shared or packaged model); one small JSON file per folder,
 * keyed by the folder's real path. A record that cannot be written only means the next load verifies again.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { BeitLensError, errorMessage } from './errors';
import { defaultCacheDir } from './hub';
import { MANIFEST_FILE, ModelDirectory } from './modelDirectory';
import { sameSignature } from './scan/resultStore';
import { signatureOf, type FileSignature } from './scan/walk';

export type ModelIntegrity =
  /** Every file the manifest lists has its sha256. `hashed`: the files read in this check (the rest were unchanged since a recorded check). */
  | { state: 'verified'; files: string[]; hashed: string[]; record: string; recordError?: string }
  /** No manifest: no hashes to check the files against. */
  | { state: 'nothing-to-verify'; reason: string }
  /** The caller chose not to verify (benchmarks); such a model's results are never cached. */
  | { state: 'unverified' };

export interface ModelVerifierOptions {
  /** Where verification records are kept (default: `verified-models` in the default cache folder). */
  recordDir?: string;
  /** sha256 (hex) of a file's content; tests count the calls. Must not hold the file in memory. */
  hashFile?: (file: string) => Promise<string>;
}

const RECORD_VERSION = 1;

interface RecordEntry extends FileSignature {
  sha256: string;
}

interface VerificationRecord {
  beitLensVerified: number;
  dir: string;
  files: Record<string, RecordEntry>;
}

/** Streamed, so memory stays bounded whatever the file's size. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function defaultVerificationRecordDir(): string {
  return path.join(defaultCacheDir(), 'verified-models');
}

export class ModelVerifier {
  readonly recordDir: string;
  private readonly hashFile: (file: string) => Promise<string>;

  constructor(options: ModelVerifierOptions = {}) {
    this.recordDir = options.recordDir ?? defaultVerificationRecordDir();
    this.hashFile = options.hashFile ?? sha256File;
  }

  /**
   * Verifies every file the manifest lists (graphs and the weights file) against its size and sha256;
   * throws INTEGRITY naming the first file that differs. Files unchanged since a recorded check are not read.
   */
  async verify(directory: Pick<ModelDirectory, 'dir' | 'manifest'>): Promise<ModelIntegrity> {
    const manifest = directory.manifest;
    if (!manifest) return { state: 'nothing-to-verify', reason: `no ${MANIFEST_FILE} (a folder not written by beit-lens convert): no sha256s to check its files against` };
    const listed: Array<{ name: string; bytes: number; sha256: string }> = Object.entries(manifest.files).map(([name, f]) => ({ name, bytes: f.bytes, sha256: f.sha256 }));
    if (manifest.weights) listed.push({ name: manifest.weights.file, bytes: manifest.weights.bytes, sha256: manifest.weights.sha256 });
    const manifestFile = path.join(directory.dir, MANIFEST_FILE);
    const realDir = await realpath(directory.dir);
    const recordFile = path.join(this.recordDir, `${createHash('sha256').update(realDir).digest('hex').slice(0, 32)}.json`);
    const previous = await readRecord(recordFile, realDir);
    const verified: Record<string, RecordEntry> = {};
    const hashed: string[] = [];
    for (const f of listed) {
      // The manifest is JSON from anywhere: a name must stay inside the folder.
      if (path.basename(f.name) !== f.name || f.name === MANIFEST_FILE) {
        throw new BeitLensError('INTEGRITY', `lists "${f.name}", which is not a file of the model folder`, manifestFile);
      }
      const file = path.join(directory.dir, f.name);
      const before = await stat(file).catch(() => undefined);
      if (!before?.isFile()) throw new BeitLensError('INTEGRITY', `is missing, but ${MANIFEST_FILE} lists it (convert the model again)`, file);
      if (before.size !== f.bytes) {
        throw new BeitLensError('INTEGRITY', `is ${before.size} bytes, ${MANIFEST_FILE} says ${f.bytes} (cut short or replaced; convert the model again)`, file);
      }
      const signature = signatureOf(before);
      const known = previous?.files[f.name];
      if (known && known.sha256 === f.sha256 && sameSignature(known, signature)) {
        verified[f.name] = known;
        continue;
      }
      let actual: string;
      try {
        actual = await this.hashFile(file);
      } catch (err) {
        throw new BeitLensError('FILE_UNREADABLE', `cannot read it to verify its sha256: ${errorMessage(err)}`, file);
      }
      hashed.push(f.name);
      if (actual !== f.sha256) {
        throw new BeitLensError('INTEGRITY', `differs from ${MANIFEST_FILE}: sha256 ${actual.slice(0, 12)}…, the manifest says ${f.sha256.slice(0, 12)}… (damaged or replaced, or the manifest is wrong; convert the model again)`, file);
      }
      // Recorded only if nothing touched the file while it was read; otherwise the next load checks it again.
      const after = await stat(file).catch(() => undefined);
      if (after && sameSignature(signature, signatureOf(after))) verified[f.name] = { ...signature, sha256: f.sha256 };
    }
    const files = listed.map((f) => f.name);
    const unchanged = previous !== undefined && hashed.length === 0 && Object.keys(previous.files).length === files.length;
    let recordError: string | undefined;
    if (!unchanged) recordError = await writeRecord(recordFile, { beitLensVerified: RECORD_VERSION, dir: realDir, files: verified });
    return { state: 'verified', files, hashed, record: recordFile, ...(recordError ? { recordError } : {}) };
  }
}

async function readRecord(file: string, dir: string): Promise<VerificationRecord | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  const r = parsed as Partial<VerificationRecord> | null;
  if (!r || r.beitLensVerified !== RECORD_VERSION || r.dir !== dir || typeof r.files !== 'object' || r.files === null) return undefined;
  const files: Record<string, RecordEntry> = {};
  for (const [name, e] of Object.entries(r.files)) {
    const ok = e && typeof e.sha256 === 'string' && [e.size, e.mtimeMs, e.ctimeMs, e.ino].every((v) => typeof v === 'number');
    if (ok) files[name] = { size: e.size, mtimeMs: e.mtimeMs, ctimeMs: e.ctimeMs, ino: e.ino, sha256: e.sha256 };
  }
  return { beitLensVerified: RECORD_VERSION, dir, files };
}

/** Written atomically (two loads of one folder may race); returns why it could not be, if so. */
async function writeRecord(file: string, record: VerificationRecord): Promise<string | undefined> {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(tmp, JSON.stringify(record) + '\n');
    await rename(tmp, file);
    return undefined;
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    return `verification record not saved (${errorMessage(err)}): the next load verifies again`;
  }
}

/** One line for `doctor`. */
export function describeIntegrity(integrity: ModelIntegrity): string {
  switch (integrity.state) {
    case 'verified': {
      const reused = integrity.files.filter((f) => !integrity.hashed.includes(f));
      const how = [integrity.hashed.length ? `hashed now: ${integrity.hashed.join(', ')}` : '', reused.length ? `unchanged since verified: ${reused.join(', ')}` : ''].filter(Boolean).join('; ');
      return `integrity: verified, sha256 as in ${MANIFEST_FILE} (${how})${integrity.recordError ? `; ${integrity.recordError}` : ''}`;
    }
    case 'nothing-to-verify':
      return `integrity: nothing to verify: ${integrity.reason}`;
    case 'unverified':
      return 'integrity: not verified';
  }
}
