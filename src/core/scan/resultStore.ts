/**
 * The persistent scan cache: an append-only log of checksummed JSON lines, so a crash or a kill at any moment
 * loses at most the record being written, and that torn record is recognised and cut off on the next open.
 *
 * Two kinds of records:
 *  - file:       path + size + mtime + ctime + inode -> sha256 of the content. Lets a re-scan skip reading and
 *                hashing unchanged files. Trade-off: a file rewritten with identical size and timestamps would
 *                be missed; including ctime (which no user tool can set back, unlike mtime with `touch -d` or
 *                `rsync -t`) and the inode makes that practically impossible short of clock tampering. Any
 *                doubt costs only a re-hash: predictions are keyed by content, never by path.
 *  - prediction: (sha256, model key) -> top-K (index, score) pairs, or a decode error that the same bytes
 *                would always produce again (corrupt or unsupported images are not re-decoded on every scan).
 *  - quality:    (sha256, measure revision) -> image-quality measures (quality/measures.ts). Keyed by content
 *                only: they do not depend on the model, so a scan with another model reuses them.
 *  - embedding:  (sha256, model key) -> the model's pooled output as float16, little-endian, base64 in the
 *                JSON: 768 floats take 2,048 characters, a record about 2.2 kB (JSON numbers would take ~7 kB).
 *                In the log rather than in a binary file beside it, so it shares the log's checksum, torn-tail
 *                recovery, compaction and lock: a damaged record fails its checksum and is missing, never a
 *                wrong vector. A separate record from the prediction, so a prediction lookup stays small.
 *
 * Line format: 8 hex digits of the payload's sha256, a space, the JSON payload, '\n'. The first line is a
 * header naming the format, so `--cache` pointed at some other file is refused instead of truncated.
 *
 * Memory: the in-memory index maps keys to a record's position in the file (one number each), never to
 * results; a lookup reads the record back (from the page cache, in practice) and re-verifies its checksum.
 * A later record for the same key wins. {@link ResultStore.compact} rewrites the log with live records only.
 *
 * One writer at a time: a `<file>.lock` holding the writer's pid, created atomically with its pid in it (see
 * acquireLock). A store opened while another live process holds the lock is read-only (lookups work, nothing is
 * written), so a second scan still benefits and never blocks; a lock left by a killed process is taken over at
 * once, by exactly one of the processes that find it. A pid in the lock rather than a heartbeat (what
 * proper-lockfile does: an mtime refreshed every few seconds, stale after 2-10 s) is what lets a re-run take over
 * straight after a kill, and a busy event loop never makes a live writer look dead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fdatasync, writeSync } from 'node:fs';
import { link, mkdir, open, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { BeitLensError, errorMessage, type ErrorCode } from '../errors';
import { parseQualityMeasures, type QualityMeasures } from '../quality/measures';
import { finiteFromFloat16 } from '../halfFloat';
import type { FileSignature } from './walk';

const HEADER = { beitLensScanCache: 1 };
const READ_CHUNK = 1 << 20;
/** Positions are packed as offset * 2^21 + length into one double: records up to 2 MiB, logs up to 4 GiB. */
const LENGTH_BITS = 2 ** 21;
const MAX_OFFSET = 2 ** 32;
const SYNC_INTERVAL_MS = 2000;

export type CachedPrediction =
  | { kind: 'top'; k: number; top: ReadonlyArray<readonly [index: number, score: number]> }
  | { kind: 'error'; code: ErrorCode; error: string };

interface FileRecord {
  f: string;
  s: number;
  m: number;
  c: number;
  i: number;
  h: string;
}

interface EmbeddingRecord {
  e: string;
  model: string;
  /** Floats. */
  d: number;
  /** float16 little-endian, base64. */
  v: string;
}

interface PredictionRecord {
  p: string;
  model: string;
  k?: number;
  top?: Array<[number, number]>;
  code?: ErrorCode;
  error?: string;
}

interface QualityRecord {
  q: string;
  v: string;
  m: QualityMeasures;
}

export interface StoreStats {
  /** Valid records indexed when the store was opened. */
  records: number;
  /** Records skipped on open because their checksum or JSON was bad (not at the tail). */
  corrupt: number;
  /** Bytes cut off the end on open: a record torn by a crash. */
  truncatedBytes: number;
  readOnly: boolean;
  /** Live keys: files and predictions. */
  files: number;
  predictions: number;
  embeddings: number;
}

export interface ResultStoreOptions {
  /** Open without writing even when the lock is free (inspection, tests). */
  readOnly?: boolean;
  /** Called when the store falls back to read-only because another process writes it. */
  onWarning?: (message: string) => void;
}

function checksum(payload: Buffer | string): string {
  return createHash('sha256').update(payload).digest('hex').slice(0, 8);
}

function encodeRecord(payload: object): Buffer {
  const json = JSON.stringify(payload);
  return Buffer.from(`${checksum(json)} ${json}\n`, 'utf8');
}

/** The payload of one line (without '\n'), or undefined when the line is damaged. */
function decodeRecord(line: Buffer): unknown {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const body = line.subarray(9);
  if (checksum(body) !== line.toString('latin1', 0, 8)) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Log files held open for writing by this process: a second writer in-process must not interleave. */
const openForWriting = new Set<string>();

export class ResultStore {
  private readonly files = new Map<string, number>();
  private readonly predictions = new Map<string, number>();
  private readonly qualities = new Map<string, number>();
  private readonly embeddings = new Map<string, number>();
  private readonly modelNumbers = new Map<string, number>();
  private end: number;
  private closed = false;
  private compacting = false;
  private dirty = false;
  private syncTimer?: NodeJS.Timeout;

  private constructor(
    readonly file: string,
    private handle: FileHandle,
    private readonly writable: boolean,
    private readonly lock: { file: string; id: string } | undefined,
    private readonly openStats: { records: number; corrupt: number; truncatedBytes: number },
    end: number,
  ) {
    this.end = end;
  }

  static async open(file: string, options: ResultStoreOptions = {}): Promise<ResultStore> {
    const absolute = path.resolve(file);
    await mkdir(path.dirname(absolute), { recursive: true });
    // Claimed before the first await: two opens racing in this process must not both take the lock.
    let writable = !options.readOnly && !openForWriting.has(absolute);
    if (writable) openForWriting.add(absolute);
    let lock: { file: string; id: string } | undefined;
    const release = async () => {
      if (writable) openForWriting.delete(absolute);
      if (lock) await releaseLock(lock.file, lock.id);
    };
    if (writable) {
      const lockFile = `${absolute}.lock`;
      let id: string | undefined;
      try {
        id = await acquireLock(lockFile);
      } catch (err) {
        openForWriting.delete(absolute);
        throw err;
      }
      if (id) lock = { file: lockFile, id };
      else {
        openForWriting.delete(absolute);
        writable = false;
        options.onWarning?.(`scan cache ${file} is being written by another process; using it read-only`);
      }
    }
    let handle: FileHandle;
    try {
      // Not writable only because another store (here or in another process) writes it, which may not have
      // created the log yet: 'a+' creates it empty, and nothing is written through this handle.
      handle = await open(absolute, writable || !options.readOnly ? 'a+' : 'r');
    } catch (err) {
      await release();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BeitLensError('FILE_NOT_FOUND', 'scan cache not found', file);
      throw new BeitLensError('FILE_UNREADABLE', `cannot open scan cache: ${errorMessage(err)}`, file);
    }
    try {
      const store = new ResultStore(absolute, handle, writable, lock, { records: 0, corrupt: 0, truncatedBytes: 0 }, 0);
      await store.load();
      return store;
    } catch (err) {
      await handle.close();
      await release();
      throw err;
    }
  }

  private async load(): Promise<void> {
    const { size } = await this.handle.stat();
    let position = 0;
    let lastGoodEnd = 0;
    let pendingCorrupt = 0;
    let carry = Buffer.alloc(0);
    let first = true;
    while (position < size) {
      const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - position));
      const { bytesRead } = await this.handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      const data = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const dataStart = position - carry.length;
      position += bytesRead;
      let lineStart = 0;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, lineStart)) {
        const line = data.subarray(lineStart, nl);
        const offset = dataStart + lineStart;
        const payload = decodeRecord(line);
        if (first) {
          first = false;
          if (!isHeader(payload)) throw this.notACache();
        } else if (payload === undefined || !this.index(payload, offset, nl + 1 - lineStart)) {
          pendingCorrupt++;
          lineStart = nl + 1;
          continue;
        } else {
          this.openStats.records++;
        }
        this.openStats.corrupt += pendingCorrupt;
        pendingCorrupt = 0;
        lastGoodEnd = dataStart + nl + 1;
        lineStart = nl + 1;
      }
      carry = Buffer.from(data.subarray(lineStart));
    }
    if (first && carry.length > 0 && !encodeRecord(HEADER).subarray(0, carry.length).equals(carry)) throw this.notACache();
    // Whatever follows the last good record is the torn tail of an interrupted write (an incomplete line, or
    // lines that fail their checksum with nothing valid after them): drop it so appends start clean.
    this.openStats.truncatedBytes = size - lastGoodEnd;
    this.end = lastGoodEnd;
    if (this.writable) {
      if (lastGoodEnd < size) await this.handle.truncate(lastGoodEnd);
      if (lastGoodEnd === 0) this.write([encodeRecord(HEADER)]);
    }
  }

  private notACache(): BeitLensError {
    return new BeitLensError('CONFIG_INVALID', 'not a BEiT Lens scan cache (refusing to use or overwrite it)', this.file);
  }

  private modelNumber(model: string): number {
    let n = this.modelNumbers.get(model);
    if (n === undefined) {
      n = this.modelNumbers.size;
      this.modelNumbers.set(model, n);
    }
    return n;
  }

  private predictionKey(hash: string, model: string): string {
    return `${this.modelNumber(model)}:${hash}`;
  }

  /** Adds a record to the index; false for a record that is well-formed JSON but not one of ours. */
  private index(payload: unknown, offset: number, length: number): boolean {
    if (typeof payload !== 'object' || payload === null) return false;
    if (offset >= MAX_OFFSET || length >= LENGTH_BITS) return true;
    const position = offset * LENGTH_BITS + length;
    const r = payload as Partial<FileRecord & PredictionRecord & EmbeddingRecord>;
    if (typeof r.f === 'string' && typeof r.h === 'string') {
      this.files.set(r.f, position);
      return true;
    }
    if (typeof r.p === 'string' && typeof r.model === 'string') {
      this.predictions.set(this.predictionKey(r.p, r.model), position);
      return true;
    }
    if (typeof r.e === 'string' && typeof r.model === 'string' && typeof r.v === 'string') {
      this.embeddings.set(this.predictionKey(r.e, r.model), position);
      return true;
    }
    const q = payload as Partial<QualityRecord>;
    if (typeof q.q === 'string' && typeof q.v === 'string') {
      this.qualities.set(`${q.v}:${q.q}`, position);
      return true;
    }
    return false;
  }

  private async readAt(position: number): Promise<unknown> {
    const length = position % LENGTH_BITS;
    const offset = (position - length) / LENGTH_BITS;
    const buffer = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.handle.read(buffer, 0, length, offset);
    if (bytesRead !== length || buffer[length - 1] !== 0x0a) return undefined;
    return decodeRecord(buffer.subarray(0, length - 1));
  }

  /** The content hash recorded for this path, if the file still has the recorded size, times and inode. */
  async lookupFile(absolutePath: string, signature: FileSignature): Promise<string | undefined> {
    const position = this.files.get(absolutePath);
    if (position === undefined) return undefined;
    const r = (await this.readAt(position)) as FileRecord | undefined;
    if (!r || r.f !== absolutePath) return undefined;
    return sameSignature({ size: r.s, mtimeMs: r.m, ctimeMs: r.c, ino: r.i }, signature) ? r.h : undefined;
  }

  /** A cached answer for these bytes and this model with at least `k` predictions. */
  async lookupPrediction(hash: string, model: string, k: number): Promise<CachedPrediction | undefined> {
    const position = this.predictions.get(this.predictionKey(hash, model));
    if (position === undefined) return undefined;
    const r = (await this.readAt(position)) as PredictionRecord | undefined;
    if (!r || r.p !== hash || r.model !== model) return undefined;
    if (r.code !== undefined && r.error !== undefined) return { kind: 'error', code: r.code, error: r.error };
    if (!Array.isArray(r.top) || (r.k ?? 0) < k) return undefined;
    return { kind: 'top', k: r.k ?? r.top.length, top: r.top };
  }

  /**
   * The stored embedding for these bytes and this model, as float32 (float16-exact values); undefined when
   * there is none, or its record is damaged or has another width, or a value is not finite.
   */
  async lookupEmbedding(hash: string, model: string, dim: number): Promise<Float32Array | undefined> {
    const position = this.embeddings.get(this.predictionKey(hash, model));
    if (position === undefined) return undefined;
    const r = (await this.readAt(position)) as EmbeddingRecord | undefined;
    if (!r || r.e !== hash || r.model !== model || r.d !== dim || typeof r.v !== 'string') return undefined;
    return decodeHalfVector(r.v, dim);
  }

  /** Quality measures recorded for these bytes by the measure revision `revision`. */
  async lookupQuality(hash: string, revision: string): Promise<QualityMeasures | undefined> {
    const position = this.qualities.get(`${revision}:${hash}`);
    if (position === undefined) return undefined;
    const r = (await this.readAt(position)) as Partial<QualityRecord> | undefined;
    if (!r || r.q !== hash || r.v !== revision) return undefined;
    return parseQualityMeasures(r.m);
  }

  qualityRecord(hash: string, revision: string, measures: QualityMeasures): object {
    const r: QualityRecord = { q: hash, v: revision, m: measures };
    return r;
  }

  /** `half`: the embedding's float16 bits (toFloat16 in halfFloat.ts). */
  embeddingRecord(hash: string, model: string, half: Uint16Array): object {
    const r: EmbeddingRecord = { e: hash, model, d: half.length, v: encodeHalfVector(half) };
    return r;
  }

  fileRecord(absolutePath: string, signature: FileSignature, hash: string): object {
    const r: FileRecord = { f: absolutePath, s: signature.size, m: signature.mtimeMs, c: signature.ctimeMs, i: signature.ino, h: hash };
    return r;
  }

  predictionRecord(hash: string, model: string, prediction: CachedPrediction): object {
    const r: PredictionRecord =
      prediction.kind === 'top'
        ? { p: hash, model, k: prediction.k, top: prediction.top.map(([i, s]) => [i, s]) }
        : { p: hash, model, code: prediction.code, error: prediction.error };
    return r;
  }

  /**
   * Appends records with one synchronous write: when this returns they are in the OS page cache, so a
   * killed process has lost nothing that its caller reported afterwards. (fdatasync follows within
   * {@link SYNC_INTERVAL_MS}, which is what a power cut could lose.)
   */
  append(records: readonly object[]): void {
    if (!this.writable || this.closed || records.length === 0) return;
    if (this.compacting) throw new BeitLensError('INTERNAL', 'scan cache is being compacted; appends must wait', this.file);
    const encoded = records.map(encodeRecord);
    const start = this.end;
    this.write(encoded);
    let offset = start;
    records.forEach((record, i) => {
      this.index(record, offset, encoded[i].length);
      offset += encoded[i].length;
    });
  }

  private write(buffers: Buffer[]): void {
    const data = buffers.length === 1 ? buffers[0] : Buffer.concat(buffers);
    let written = 0;
    while (written < data.length) written += writeSync(this.handle.fd, data, written, data.length - written);
    this.end += data.length;
    this.dirty = true;
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = undefined;
      if (this.closed || !this.dirty) return;
      this.dirty = false;
      fdatasync(this.handle.fd, () => undefined);
    }, SYNC_INTERVAL_MS).unref();
  }

  get stats(): StoreStats {
    return { ...this.openStats, readOnly: !this.writable, files: this.files.size, predictions: this.predictions.size, embeddings: this.embeddings.size };
  }

  get isReadOnly(): boolean {
    return !this.writable;
  }

  /**
   * Rewrites the log with only the live record of each key (older duplicates and damaged lines dropped),
   * streaming record by record, then atomically replaces the file. Files that no longer exist can be dropped
   * by passing `keepFile`.
   */
  async compact(keepFile: (absolutePath: string) => boolean = () => true): Promise<{ before: number; after: number }> {
    if (!this.writable) throw new BeitLensError('CONFIG_INVALID', 'scan cache is open read-only; cannot compact', this.file);
    const before = this.end;
    this.compacting = true;
    try {
      return await this.rewrite(before, keepFile);
    } finally {
      this.compacting = false;
    }
  }

  private async rewrite(before: number, keepFile: (absolutePath: string) => boolean): Promise<{ before: number; after: number }> {
    const temp = `${this.file}.compact-${process.pid}`;
    const out = await open(temp, 'w');
    const positions: Array<[string, number, Map<string, number>]> = [];
    let after = 0;
    try {
      const header = encodeRecord(HEADER);
      await out.write(header);
      after += header.length;
      for (const [key, position] of this.files) {
        if (!keepFile(key)) continue;
        const r = await this.readAt(position);
        if (!r) continue;
        const line = encodeRecord(r);
        await out.write(line);
        positions.push([key, after * LENGTH_BITS + line.length, this.files]);
        after += line.length;
      }
      for (const map of [this.predictions, this.embeddings, this.qualities]) {
        for (const [key, position] of map) {
          const r = await this.readAt(position);
          if (!r) continue;
          const line = encodeRecord(r);
          await out.write(line);
          positions.push([key, after * LENGTH_BITS + line.length, map]);
          after += line.length;
        }
      }
      await out.sync();
    } finally {
      await out.close();
    }
    // The old handle keeps reading the old inode until it is swapped; nothing reads in between in one thread.
    await rename(temp, this.file);
    const old = this.handle;
    this.handle = await open(this.file, 'a+');
    await old.close();
    this.files.clear();
    this.predictions.clear();
    this.embeddings.clear();
    this.qualities.clear();
    for (const [key, position, map] of positions) map.set(key, position);
    this.end = after;
    return { before, after };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    try {
      if (this.writable && this.dirty) await this.handle.datasync().catch(() => undefined);
    } finally {
      await this.handle.close();
      if (this.writable) openForWriting.delete(this.file);
      if (this.lock) await releaseLock(this.lock.file, this.lock.id);
    }
  }
}

/** float16 bits as little-endian bytes in base64, whatever the machine's byte order. */
function encodeHalfVector(half: Uint16Array): string {
  const bytes = Buffer.allocUnsafe(half.length * 2);
  for (let i = 0; i < half.length; i++) bytes.writeUInt16LE(half[i], i * 2);
  return bytes.toString('base64');
}

function decodeHalfVector(base64: string, dim: number): Float32Array | undefined {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length !== dim * 2) return undefined;
  const half = new Uint16Array(dim);
  for (let i = 0; i < dim; i++) half[i] = bytes.readUInt16LE(i * 2);
  return finiteFromFloat16(half);
}

/**
 * Whether a file is unchanged since `recorded` was taken: the trade-off in the header comment (ctime and inode
 * catch what size and mtime alone would miss). Also keys verified model files (modelIntegrity.ts).
 */
export function sameSignature(recorded: FileSignature, current: FileSignature): boolean {
  return recorded.size === current.size && recorded.mtimeMs === current.mtimeMs && recorded.ctimeMs === current.ctimeMs && recorded.ino === current.ino;
}

function isHeader(payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && (payload as { beitLensScanCache?: unknown }).beitLensScanCache === HEADER.beitLensScanCache;
}

/**
 * A lock whose content is not a pid and that is younger than this belongs to a creator still writing its pid
 * (or one on a file system without hard links, see {@link createLock}): held, not stale.
 */
const LOCK_WRITE_GRACE_MS = 10_000;
/** File systems that refuse hard links (FAT, some network shares): fall back to an exclusive create + write. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** The lock's identity (device and inode), so a holder only ever deletes the lock it created. */
type LockId = string;

function lockError(err: unknown, lockFile: string): BeitLensError {
  return new BeitLensError('FILE_UNREADABLE', `cannot lock scan cache: ${errorMessage(err)}`, lockFile);
}

/**
 * Creates `lockFile` holding this process's pid, atomically and exclusively: the pid is written to a private
 * file first, which is then hard-linked to the lock's name (link fails if the name exists), so no other
 * process ever sees the lock without its pid. Undefined when the lock exists.
 */
async function createLock(lockFile: string): Promise<LockId | undefined> {
  const pid = String(process.pid);
  const own = `${lockFile}.${pid}-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(own, pid, { flag: 'wx' });
  } catch (err) {
    throw lockError(err, lockFile);
  }
  try {
    await link(own, lockFile);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return undefined;
    if (!NO_HARD_LINKS.has(code)) throw lockError(err, lockFile);
    try {
      await writeFile(lockFile, pid, { flag: 'wx' });
    } catch (fallback) {
      if ((fallback as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw lockError(fallback, lockFile);
    }
  } finally {
    await unlink(own).catch(() => undefined);
  }
  const s = await stat(lockFile).catch(() => undefined);
  return s ? `${s.dev}:${s.ino}` : undefined;
}

/** Who holds a lock: nobody (missing), a live process, or nobody alive (stale; `id` says which file it was). */
async function inspectLock(lockFile: string): Promise<{ state: 'missing' | 'live' } | { state: 'stale'; id: LockId }> {
  let handle: FileHandle;
  try {
    handle = await open(lockFile, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw lockError(err, lockFile);
  }
  try {
    // Content and identity from one handle, so they describe the same file.
    const s = await handle.stat();
    const text = (await handle.readFile('utf8')).trim();
    const id = `${s.dev}:${s.ino}`;
    if (/^[1-9]\d*$/.test(text)) {
      // This process's own pid: a lock it took for a store since closed or lost, or a dead process's pid reused;
      // a store open in this process right now is caught earlier, by `openForWriting`.
      const holder = Number(text);
      return holder !== process.pid && isAlive(holder) ? { state: 'live' } : { state: 'stale', id };
    }
    return Date.now() - s.mtimeMs < LOCK_WRITE_GRACE_MS ? { state: 'live' } : { state: 'stale', id };
  } finally {
    await handle.close();
  }
}

/**
 * Takes `<log>.lock` for this process; undefined when another live process holds it.
 *
 * Replacing a stale lock is the step that can give two writers: two processes that both saw the dead pid would
 * each delete "the" lock, and the second would delete the first's fresh one. So it happens only under
 * `<lock>.break` (taken the same exclusive way and held for a few milliseconds), after checking again that the
 * lock is still stale: while the breaker is held, nobody else can delete the lock, and a missing lock is only
 * ever created by {@link createLock}, which fails if someone was first.
 */
async function acquireLock(lockFile: string): Promise<LockId | undefined> {
  const breaker = `${lockFile}.break`;
  for (let attempt = 0; attempt < 3; attempt++) {
    const id = await createLock(lockFile);
    if (id) return id;
    const holder = await inspectLock(lockFile);
    if (holder.state === 'live') return undefined;
    if (holder.state === 'missing') continue;
    const breakerId = await createLock(breaker);
    if (!breakerId) {
      // Another process is replacing the stale lock right now, and will hold it: unless the breaker itself was
      // left by a process that died while holding it (a window of milliseconds), then clear it and retry.
      const state = await inspectLock(breaker);
      if (state.state === 'live') return undefined;
      if (state.state === 'stale') await unlink(breaker).catch(() => undefined);
      continue;
    }
    try {
      const again = await inspectLock(lockFile);
      if (again.state === 'live') return undefined;
      if (again.state === 'stale') await unlink(lockFile).catch(() => undefined);
      return await createLock(lockFile);
    } finally {
      await releaseLock(breaker, breakerId);
    }
  }
  return undefined;
}

/** Deletes a lock this process created, unless it is no longer that file (it was judged stale and replaced). */
async function releaseLock(lockFile: string, id: LockId): Promise<void> {
  const s = await stat(lockFile).catch(() => undefined);
  if (s && `${s.dev}:${s.ino}` === id) await unlink(lockFile).catch(() => undefined);
}
