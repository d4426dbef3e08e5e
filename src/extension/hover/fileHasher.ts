/**
 * sha256 of image files, for result caches keyed by content (a renamed or copied image hits the
 * cache; an edited one misses). Reads stream in chunks so hashing a large image never blocks the
 * extension host for long, and the digest is remembered per (path, size, mtime) so repeated
 * hovers do not re-read the file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { LruCache } from './lruCache';

export class FileHasher {
  private readonly digests: LruCache<string, string>;
  private readonly running = new Map<string, Promise<string>>();

  constructor(maxEntries = 4096) {
    this.digests = new LruCache({ maxEntries });
  }

  sha256(file: string, identity: { size: number; mtimeMs: number }): Promise<string> {
    const key = `${file}\0${identity.size}\0${identity.mtimeMs}`;
    const known = this.digests.get(key);
    if (known) return Promise.resolve(known);
    const running = this.running.get(key);
    if (running) return running;
    const promise = hashFile(file, identity.size).then(
      (digest) => {
        this.running.delete(key);
        this.digests.set(key, digest);
        return digest;
      },
      (err: unknown) => {
        this.running.delete(key);
        throw err;
      },
    );
    this.running.set(key, promise);
    return promise;
  }
}

/** Hashes at most `maxBytes` (the size seen at stat time): a file growing meanwhile cannot make us read more. */
export function hashFile(file: string, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const stream = createReadStream(file, { start: 0, end: Math.max(0, maxBytes - 1), highWaterMark: 256 * 1024 });
    stream.on('data', (chunk) => hash.update(chunk));
    stream.on('error', reject);
    stream.on('end', () => resolve(hash.digest('hex')));
  });
}
