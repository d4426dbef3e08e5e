/**
 * Reading a file the user pointed at, for classify and scan alike: only a regular file is ever opened. A FIFO
 * blocks its reader (or, opened non-blocking, wakes a writer waiting on it), and opening a device can act
 * (a tape rewinds, a watchdog arms, a terminal becomes ours), so those are refused from a stat, before any open.
 * The open is non-blocking and the handle re-checked, so a path swapped for one of them in between cannot hang
 * us either.
 */
import { constants as fsConstants, promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { BeitLensError } from './errors';

export function describeNonRegular(stats: Stats): string {
  if (stats.isDirectory()) return 'is a directory, not an image file';
  if (stats.isFIFO()) return 'is a named pipe (FIFO), not an image file';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'is a device, not an image file';
  if (stats.isSocket()) return 'is a socket, not an image file';
  return 'is not a regular file';
}

function checkRegularFile(stats: Stats, maxFileBytes: number, file: string | undefined): void {
  if (!stats.isFile()) throw new BeitLensError('FILE_UNREADABLE', describeNonRegular(stats), file);
  if (stats.size > maxFileBytes) throw new BeitLensError('FILE_TOO_LARGE', `file is ${stats.size} bytes; the limit is ${maxFileBytes}`, file);
}

export interface ReadRegularFileOptions {
  /** Named in the BeitLensErrors this throws (a scan's error rows name the file themselves: leave it out). */
  errorFile?: string;
  /** Return a buffer of its own, never a slice of Node's pool, so it can be transferred to a worker. */
  transferable?: boolean;
}

/**
 * The whole file as it was when opened (a concurrent writer can only shorten what is read). Throws a
 * BeitLensError for a file that is not regular or is over `maxFileBytes`, and the fs error untouched otherwise,
 * for the caller to word.
 */
export async function readRegularFile(file: string | Buffer, maxFileBytes: number, options: ReadRegularFileOptions = {}): Promise<Buffer> {
  checkRegularFile(await fsp.stat(file), maxFileBytes, options.errorFile);
  const handle = await fsp.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    const opened = await handle.stat();
    checkRegularFile(opened, maxFileBytes, options.errorFile);
    const buffer = options.transferable ? Buffer.allocUnsafeSlow(opened.size) : Buffer.allocUnsafe(opened.size);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled === buffer.length || !options.transferable) return buffer.subarray(0, filled);
    // Shrunk while being read: copy into a buffer of its own size so it stays transferable.
    const exact = Buffer.allocUnsafeSlow(filled);
    buffer.copy(exact, 0, 0, filled);
    return exact;
  } finally {
    await handle.close();
  }
}

/**
 * Whether two paths name the same file: the same device and inode when both exist, else the same real path
 * (the folder's links resolved; a file not created yet cannot be the same as one that exists).
 */
export async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fsp.stat(a).catch(() => undefined), fsp.stat(b).catch(() => undefined)]);
  if (sa && sb) return sa.dev === sb.dev && sa.ino === sb.ino;
  if (sa || sb) return false;
  const real = async (p: string) => {
    const absolute = path.resolve(p);
    const dir = await fsp.realpath(path.dirname(absolute)).catch(() => undefined);
    return dir === undefined ? absolute : path.join(dir, path.basename(absolute));
  };
  return (await real(a)) === (await real(b));
}
