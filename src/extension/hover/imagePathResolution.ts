/**
 * From a path as written in a document to an image file on disk: relative to the document, then
 * to each workspace folder; absolute; `~`; `file:` URIs. Only regular files with an image
 * extension and within the size limit are ever returned, so a hover cannot be made to read a
 * device, a FIFO, a directory named x.png or a huge file.
 *
 * Two rules decide which paths are touched at all, before any file system call:
 *  - network paths. On Windows, opening `\\server\share\x.png` (or `\\?\UNC\…`, `//server/…`)
 *    makes the machine authenticate to that server over SMB and hands it the user's NTLM
 *    credentials, so a document must never be able to name a host. A share the user opened
 *    (a workspace folder or the document itself lives on it) is allowed; no other host is, and
 *    device namespaces (`\\.\…`, `\\?\GLOBALROOT…`, `\??\…`) never are. Symbolic links are
 *    followed one by one, so a link cannot lead there either.
 *  - workspace trust. In Restricted Mode only files whose real path (links resolved) is inside
 *    a workspace folder are read.
 */
import { promises as fsp, Stats } from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasImageExtension } from './imagePathDetection';

type PathApi = typeof nodePath.posix;

export interface PathResolutionContext {
  /** Folder of the document; undefined for untitled documents. */
  documentDir?: string;
  workspaceFolders: readonly string[];
  homeDir: string;
  /** Tests pass path.posix or path.win32; defaults to the host's. */
  path?: PathApi;
}

/** The scheme of a notebook cell's document; its path is the notebook's. */
export const NOTEBOOK_CELL_SCHEME = 'vscode-notebook-cell';

interface UriLike {
  scheme: string;
  fsPath: string;
}

/**
 * The folder relative paths in a document start from: a file's own folder; for a notebook cell,
 * its notebook's folder when the notebook is a file (a cell is no file of its own, and an untitled
 * notebook has no folder); otherwise none, and only the workspace folders are tried.
 */
export function documentFolder(document: UriLike, notebook: UriLike | undefined, p: PathApi = nodePath): string | undefined {
  if (document.scheme === 'file') return p.dirname(document.fsPath);
  if (document.scheme === NOTEBOOK_CELL_SCHEME && notebook?.scheme === 'file') return p.dirname(notebook.fsPath);
  return undefined;
}

/** Absolute paths the written path may mean, most likely first, without duplicates. */
export function imagePathCandidates(written: string, context: PathResolutionContext): string[] {
  const p = context.path ?? nodePath;
  let text = written.trim();
  if (/^file:/i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return [];
    }
    // `file://server/share/x.png` is a UNC path on Windows: never let a URI name a host.
    if (url.hostname !== '' && url.hostname.toLowerCase() !== 'localhost') return [];
    try {
      text = fileURLToPath(url);
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

/**
 * Where a path leads off this machine: undefined for a local path, the share it is on
 * (`\\server\share`, lower case) for a UNC path, or 'device' for the Win32 device and NT
 * namespaces, which can reach anything (`\\?\UNC\…`, `\\.\pipe\…`, `\\?\GLOBALROOT\…`). Only
 * Windows has these; on POSIX `//x` is the local `/x`. Pure, so it is tested on any platform.
 */
export function networkLocation(file: string, p: PathApi = nodePath): string | 'device' | undefined {
  if (p.sep !== '\\') return undefined;
  const s = file.replace(/\//g, '\\');
  if (/^\\\?\?\\/.test(s)) return 'device';
  const prefixed = /^\\\\([?.])\\(.*)$/s.exec(s);
  if (prefixed) {
    const [, kind, rest] = prefixed;
    if (kind === '?' && /^[a-z]:(\\|$)/i.test(rest)) return undefined;
    if (/^unc(\\|$)/i.test(rest)) return shareOf(rest.slice(4)) ?? 'device';
    return 'device';
  }
  if (s.startsWith('\\\\')) return shareOf(s.slice(2)) ?? 'device';
  return undefined;
}

function shareOf(rest: string): string | undefined {
  const [server, share] = rest.split('\\');
  if (!server) return undefined;
  return `\\\\${server}${share ? `\\${share}` : ''}`.toLowerCase();
}

/** Shares the user opened: those of the workspace folders and of the document. */
export function openedShares(context: Pick<PathResolutionContext, 'documentDir' | 'workspaceFolders' | 'path'>): string[] {
  const p = context.path ?? nodePath;
  const bases = [...(context.documentDir ? [context.documentDir] : []), ...context.workspaceFolders];
  return bases.map((b) => networkLocation(b, p)).filter((s): s is string => s !== undefined && s !== 'device');
}

export type ImageFileLookup =
  /** `file` is the candidate as resolved; `realPath` the same file with every link resolved (read that). */
  | { kind: 'found'; file: string; realPath: string; size: number; mtimeMs: number }
  | { kind: 'tooLarge'; file: string; size: number }
  /** Not touched: on a network host the user did not open, or (Restricted Mode) outside the workspace. */
  | { kind: 'refused'; file: string; reason: 'network' | 'untrusted' }
  | { kind: 'missing' };

type StatLike = Pick<Stats, 'isFile' | 'size' | 'mtimeMs'>;

/** The file system calls resolution makes; tests pass fakes that record them. */
export interface ResolutionFs {
  stat(file: string): Promise<StatLike>;
  lstat(file: string): Promise<Pick<Stats, 'isSymbolicLink'>>;
  readlink(file: string): Promise<string>;
}

const NODE_FS: ResolutionFs = { stat: (f) => fsp.stat(f), lstat: (f) => fsp.lstat(f), readlink: (f) => fsp.readlink(f) };

export interface FindImageFileOptions {
  maxBytes: number;
  fs?: ResolutionFs;
  path?: PathApi;
  /** Network shares a path may be on (see openedShares); any other host is refused. */
  allowedShares?: readonly string[];
  /** Restricted Mode: only files whose real path is inside one of these folders are touched. */
  confineTo?: readonly string[];
}

const MAX_LINKS = 40;

/** The first candidate that is a regular file (symlinks followed), or why none qualifies. */
export async function findImageFile(candidates: readonly string[], options: FindImageFileOptions): Promise<ImageFileLookup> {
  const fs = options.fs ?? NODE_FS;
  const p = options.path ?? nodePath;
  const allowed = new Set(options.allowedShares ?? []);
  const leavesMachine = (file: string) => {
    const where = networkLocation(file, p);
    return where !== undefined && (where === 'device' || !allowed.has(where));
  };
  let inside: ((file: string) => boolean) | undefined;
  if (options.confineTo) {
    const lexical = options.confineTo.filter((f) => !leavesMachine(f));
    // A workspace folder may itself be reached through a link (/home/me -> /data/me).
    const real = await Promise.all(lexical.map((f) => realPath(f, fs, p, leavesMachine, undefined).then((r) => (r === undefined || r === 'network' || r === 'untrusted' ? f : r), () => f)));
    const folders = [...new Set([...lexical, ...real])];
    inside = (file) => folders.some((folder) => isInside(file, folder, p));
  }

  let refused: ImageFileLookup | undefined;
  for (const file of candidates) {
    if (!hasImageExtension(file)) continue;
    if (leavesMachine(file)) {
      refused ??= { kind: 'refused', file, reason: 'network' };
      continue;
    }
    if (inside && !inside(file)) {
      refused ??= { kind: 'refused', file, reason: 'untrusted' };
      continue;
    }
    const real = await realPath(file, fs, p, leavesMachine, inside).catch(() => undefined);
    if (real === undefined) continue;
    if (real === 'network' || real === 'untrusted') {
      refused ??= { kind: 'refused', file, reason: real };
      continue;
    }
    const info = await fs.stat(real).catch(() => undefined);
    if (!info?.isFile()) continue;
    if (info.size > options.maxBytes) return { kind: 'tooLarge', file, size: info.size };
    return { kind: 'found', file, realPath: real, size: info.size, mtimeMs: info.mtimeMs };
  }
  return refused ?? { kind: 'missing' };
}

/**
 * Resolves links one component at a time (what realpath does), checking each link's target before
 * anything is done with it: fs.realpath would already have contacted the server a link points at.
 * Rejects when a component does not exist.
 */
async function realPath(
  file: string,
  fs: ResolutionFs,
  p: PathApi,
  leavesMachine: (file: string) => boolean,
  inside: ((file: string) => boolean) | undefined,
): Promise<string | 'network' | 'untrusted' | undefined> {
  let remaining = p.resolve(file);
  let current = p.parse(remaining).root;
  let rest = remaining.slice(current.length).split(p.sep).filter(Boolean);
  let links = 0;
  while (rest.length > 0) {
    const part = rest.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      current = p.dirname(current);
      continue;
    }
    const next = p.join(current, part);
    if (!(await fs.lstat(next)).isSymbolicLink()) {
      current = next;
      continue;
    }
    if (++links > MAX_LINKS) return undefined;
    remaining = p.resolve(current, await fs.readlink(next), ...rest);
    if (leavesMachine(remaining)) return 'network';
    if (inside && !inside(remaining)) return 'untrusted';
    current = p.parse(remaining).root;
    rest = remaining.slice(current.length).split(p.sep).filter(Boolean);
  }
  if (inside && !inside(current)) return 'untrusted';
  return current;
}

/** `file` is `folder` or below it (case-insensitively on Windows, as path.win32.relative compares). */
export function isInside(file: string, folder: string, p: PathApi = nodePath): boolean {
  const relative = p.relative(folder, file);
  return relative === '' || (!relative.startsWith(`..${p.sep}`) && relative !== '..' && !p.isAbsolute(relative));
}

/**
 * Where each candidate of {@link imagePathCandidates} came from, in words, for the hover that says
 * an image was not found: the same bases in the same order, so the two cannot disagree.
 */
export function describeCandidates(candidates: readonly string[], written: string, context: PathResolutionContext): { file: string; where: string }[] {
  const p = context.path ?? nodePath;
  const bases = [
    ...(context.documentDir ? [{ dir: context.documentDir, where: "this document's folder" }] : []),
    ...context.workspaceFolders.map((dir) => ({ dir, where: `workspace folder ${p.basename(dir) || dir}` })),
  ];
  const text = written.trim();
  // An absolute path, `~` or a file: URI was not resolved against any folder.
  const relative = !p.isAbsolute(text) && !/^(~|file:)/i.test(text);
  return candidates.map((file) => {
    const base = relative ? bases.find((b) => p.resolve(b.dir, text) === file) : undefined;
    return { file, where: base?.where ?? 'as written' };
  });
}
