/**
 * From a path as written in a document to an image file on disk: relative to the document, then
 * to each workspace folder; absolute; `~`; `file:` URIs. Only regular files with an image
 * extension and within the size limit are ever returned, so a hover cannot be made to read a
 * device, a FIFO, a directory named x.png or a huge file.
 */
import { promises as fsp, Stats } from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasImageExtension } from './imagePathDetection';

export interface PathResolutionContext {
  /** Folder of the document; undefined for untitled documents. */
  documentDir?: string;
  workspaceFolders: readonly string[];
  homeDir: string;
  /** Tests pass path.posix or path.win32; defaults to the host's. */
  path?: typeof nodePath.posix;
}

/** Absolute paths the written path may mean, most likely first, without duplicates. */
export function imagePathCandidates(written: string, context: PathResolutionContext): string[] {
  const p = context.path ?? nodePath;
  let text = written.trim();
  if (/^file:/i.test(text)) {
    try {
      text = fileURLToPath(text);
    } catch {
      return [];
    }
  } else if (text === '~' || /^~[\\/]/.test(text)) {
    text = p.join(context.homeDir, text.slice(1));
  }
  if (!hasImageExtension(text)) return [];
  if (p.isAbsolute(text)) return [p.normalize(text)];
  const bases = [...(context.documentDir ? [context.documentDir] : []), ...context.workspaceFolders];
  return [...new Set(bases.map((base) => p.resolve(base, text)))];
}

export type ImageFileLookup =
  | { kind: 'found'; file: string; size: number; mtimeMs: number }
  | { kind: 'tooLarge'; file: string; size: number }
  | { kind: 'missing' };

export type StatFunction = (file: string) => Promise<Pick<Stats, 'isFile' | 'size' | 'mtimeMs'>>;

/** The first candidate that is a regular file (symlinks followed), or why none qualifies. */
export async function findImageFile(candidates: readonly string[], maxBytes: number, stat: StatFunction = fsp.stat): Promise<ImageFileLookup> {
  for (const file of candidates) {
    if (!hasImageExtension(file)) continue;
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) continue;
    if (info.size > maxBytes) return { kind: 'tooLarge', file, size: info.size };
    return { kind: 'found', file, size: info.size, mtimeMs: info.mtimeMs };
  }
  return { kind: 'missing' };
}
