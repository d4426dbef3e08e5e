/**
 * sha256 of image files, for result caches keyed by content (a renamed or copied image hits the
 * cache; an edited one misses). The digest is remembered per (path, size, mtime), so a repeated
 * hover reads nothing; an uncached one reads the file once, and the same bytes that were hashed
 * go on to the worker, which therefore never opens the file (nor sees a different version of it).
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { LruCache } from './lruCache';

export interface FileIdentity {
  size: number;
  mtimeMs: number;
}

export interface HashedFile {
  bytes: Buffer;
  sha256: string;
}

/** Reads a whole file, at most `maxBytes`; tests pass a counting fake. */
export type ReadFileBytes = (file: string, maxBytes: number) => Promise<Buffer>;

export class FileHasher {
  private readonly digests: LruCache<string, string>;
  private readonly running = new Map<string, Promise<HashedFile>>();

  constructor(
    maxEntries = 4096,
    private readonly readFile: ReadFileBytes = readFileBytes,
  ) {
    this.digests = new LruCache({ maxEntries });
  }

  /** The digest if this version of the file was hashed before; reads nothing. */
  known(file: string, identity: FileIdentity): string | undefined {
    return this.digests.get(keyOf(file, identity));
  }

  /** Reads the file once (concurrent callers share the read) and hashes what was read. */
  read(file: string, identity: FileIdentity): Promise<HashedFile> {
    const key = keyOf(file, identity);
    const running = this.running.get(key);
    if (running) return running;
    // At most the size seen at stat time: a file growing meanwhile cannot make us read more.
    const promise = this.readFile(file, identity.size)
      .then((bytes) => {
        const hashed = { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
        this.digests.set(key, hashed.sha256);
        return hashed;
      })
      .finally(() => this.running.delete(key));
    this.running.set(key, promise);
    return promise;
  }
}

function keyOf(file: string, identity: FileIdentity): string {
  return `${file}\0${identity.size}\0${identity.mtimeMs}`;
}

/**
 * Opened non-blocking and checked after opening, so a path swapped for a FIFO or a device since
 * it was stat'ed cannot hang the extension host.
 */
export async function readFileBytes(file: string, maxBytes: number): Promise<Buffer> {
  const handle = await fsp.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error('not a regular file');
    const buffer = Buffer.allocUnsafeSlow(Math.min(info.size, maxBytes));
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
