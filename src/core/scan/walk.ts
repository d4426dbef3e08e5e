/**
 * Finds the images a scan covers, as a stream: an async generator that reads one directory at a time, so a
 * 100,000-file tree is never held as a list (only the entries of the directory being read and the
 * not-yet-visited sibling directories on the way down).
 *
 * - Arguments are folders, single files, or globs (`data/**\/train/*.jpg`, matched with picomatch below the
 *   glob's literal base folder).
 * - `.gitignore` files are honoured with git's precedence: deeper files override shallower ones, a negation can
 *   re-include a file, and an ignored folder is not entered at all. Inside a git work tree the `.gitignore`
 *   files between the repository top and the scanned folder apply too. `.git` folders are never entered.
 * - Symbolic links are followed only while they stay inside the roots: a link whose real path is outside every
 *   root's real path (a link to `/`, to a home folder, to `/dev/zero`) is skipped and counted, never entered or
 *   opened. The roots themselves may be links, and a file named as an argument is scanned wherever it leads:
 *   the user chose it. Every folder is entered at most once, keyed by device and inode, which breaks link
 *   loops and keeps a folder linked from two places from being scanned twice. A link to a file is reported
 *   under its own path, as ImageFolder datasets list it (a class folder of links into a shared pool is a
 *   common layout, and the same image linked from two class folders is two labelled samples), and read through
 *   the real path that was checked.
 * - Names are read as bytes and decoded with surrogate escapes (see fileNames.ts), so non-UTF-8 names work.
 */
import type { Dirent, Stats } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import picomatch from 'picomatch';
import { BeitLensError, errorMessage } from '../errors';
import { BYTE_NAMES, decodeFileName, fsPath } from './fileNames';
import type { WalkSkipReason } from './skips';

export { noSkips, skippedText, type WalkSkipCounts, type WalkSkipReason } from './skips';

/**
 * Extensions scanned by default. HEIC/HEIF are listed so HEVC-compressed files show up as "unsupported" rows (the
 * same extension may hold AVIF, which decodes). BMP is not: no .bmp file can be decoded by the bundled libvips, and
 * the extension's menus and hovers leave it out too, so a folder scan agrees with them.
 */
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'tif', 'tiff', 'avif', 'heic', 'heif'] as const;

export interface FileSignature {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

export interface WalkEntry {
  /** The path reported in results: the argument's folder joined with `relative` (surrogate-escaped). */
  path: string;
  /** Absolute form of `path`; the key of the scan cache. */
  absolute: string;
  /** The folder argument (or a glob's literal base) this file was found under. */
  root: string;
  /** Which argument of the walk (0-based) found this file: what tells train/ from val/ even when both are globs. */
  rootIndex: number;
  /** Path below the root, '/'-separated. */
  relative: string;
  /** Parent folder below the root, '/'-separated; '' for a file directly in the root. */
  folder: string;
  /** ImageFolder class: the name of the immediate parent folder; null for a file directly in the root. */
  folderLabel: string | null;
  /**
   * The file to stat and open: the checked real path for a symbolic link, else the path below the folder's real
   * path. Absent in entries made by hand (tests): `absolute` is used.
   */
  source?: string;
  /** Present when the walk was asked to stat files and the stat worked. */
  signature?: FileSignature;
  /** Why the file could not be stat'ed (e.g. a dangling symbolic link); the scanner makes it an error row. */
  statError?: NodeJS.ErrnoException;
}

export interface WalkWarning {
  path: string;
  message: string;
  /** Set when the warning is about something skipped: the scan summary counts these. */
  skipped?: WalkSkipReason;
}

export interface WalkOptions {
  /** Globs of files or folders to leave out, relative to each root; a pattern without '/' matches names. */
  exclude?: readonly string[];
  /** Honour .gitignore files (default true). */
  gitignore?: boolean;
  /** Lower-case extensions without the dot (default {@link IMAGE_EXTENSIONS}). */
  extensions?: readonly string[];
  /** Stat every file for its size and times (default true); a count pass needs no stats. */
  stat?: boolean;
  signal?: AbortSignal;
  /** Folders that could not be read, links and folders skipped (with `skipped` set): reported, never fatal. */
  onWarning?: (warning: WalkWarning) => void;
}

interface Root {
  /** The folder as the user wrote it (or the glob's base), used to build reported paths. */
  display: string;
  absolute: string;
  /** The folder's real path (links resolved); undefined when it does not exist. */
  real?: string;
  kind: 'dir' | 'file' | 'glob';
  glob?: (relative: string) => boolean;
}

interface IgnoreLevel {
  /** Folder of the .gitignore relative to the walk root ('' = root); undefined for one above the root. */
  dir?: string;
  /** For a .gitignore above the root: the root's path relative to the .gitignore's folder. */
  rootFromHere?: string;
  rules: Ignore;
}

interface DirJob {
  absolute: string;
  /** Real path of the folder: read through it, so a link checked once cannot be swapped for another after. */
  real: string;
  display: string;
  relative: string;
  levels: readonly IgnoreLevel[];
}

/** Files statted at once within one folder: enough to hide syscall latency, few enough to stay polite. */
const STAT_CONCURRENCY = 32;

function toPosix(p: string): string {
  return path.sep === '/' ? p : p.split(path.sep).join('/');
}

function isGlob(arg: string): boolean {
  return picomatch.scan(toPosix(arg)).isGlob;
}

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  return fsp.stat(fsPath(p)).catch(() => undefined);
}

/** The path with every link resolved (surrogate-escaped like directory entries); undefined if it is dangling. */
async function realPathOf(p: string): Promise<string | undefined> {
  try {
    return BYTE_NAMES ? decodeFileName(await fsp.realpath(fsPath(p), { encoding: 'buffer' })) : await fsp.realpath(p);
  } catch {
    return undefined;
  }
}

/** Whether `p` is `folder` or below it (both real paths). */
function isWithin(p: string, folder: string): boolean {
  return p === folder || p.startsWith(folder.endsWith(path.sep) ? folder : folder + path.sep);
}

/** Turns the command-line arguments into roots; a path that exists nowhere and is not a glob is an error. */
export async function resolveRoots(args: readonly string[]): Promise<Root[]> {
  const roots: Root[] = [];
  for (const arg of args) {
    const stats = await statOrUndefined(arg);
    if (stats?.isDirectory()) {
      roots.push({ display: arg, absolute: path.resolve(arg), real: await realPathOf(path.resolve(arg)), kind: 'dir' });
    } else if (stats) {
      roots.push({ display: arg, absolute: path.resolve(arg), kind: 'file' });
    } else if (isGlob(arg)) {
      const scanned = picomatch.scan(toPosix(arg));
      const base = scanned.base === '' ? '.' : scanned.base;
      const matcher = picomatch(scanned.glob, { dot: true });
      roots.push({ display: base, absolute: path.resolve(base), real: await realPathOf(path.resolve(base)), kind: 'glob', glob: matcher });
    } else {
      throw new BeitLensError('FILE_NOT_FOUND', 'no such file or folder (and not a glob pattern)', arg);
    }
  }
  return roots;
}

function excludeMatcher(patterns: readonly string[]): (relative: string) => boolean {
  if (patterns.length === 0) return () => false;
  const matchers = patterns.map((p) => picomatch(toPosix(p), { dot: true, basename: !toPosix(p).includes('/') }));
  return (relative) => matchers.some((m) => m(relative));
}

function hasExtension(name: string, extensions: ReadonlySet<string>): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && extensions.has(name.slice(dot + 1).toLowerCase());
}

function isIgnored(levels: readonly IgnoreLevel[], relative: string, isDir: boolean): boolean {
  let ignored = false;
  for (const level of levels) {
    let local: string;
    if (level.rootFromHere !== undefined) local = level.rootFromHere ? `${level.rootFromHere}/${relative}` : relative;
    else if (level.dir === '') local = relative;
    else if (relative.startsWith(`${level.dir}/`)) local = relative.slice(level.dir!.length + 1);
    else continue;
    const result = level.rules.test(isDir ? `${local}/` : local);
    if (result.ignored) ignored = true;
    else if (result.unignored) ignored = false;
  }
  return ignored;
}

async function readIgnoreFile(file: string): Promise<Ignore | undefined> {
  const text = await fsp.readFile(fsPath(file), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : ignore().add(text);
}

/**
 * The .gitignore files between the enclosing git work tree's top and the root (exclusive), outermost first.
 * Outside a work tree there are none: stray .gitignore files above a plain folder mean nothing to git either.
 */
async function inheritedIgnoreLevels(rootAbsolute: string): Promise<IgnoreLevel[]> {
  const ancestors: string[] = [];
  let dir = path.dirname(rootAbsolute);
  let top: string | undefined;
  if (await statOrUndefined(path.join(rootAbsolute, '.git'))) return [];
  for (;;) {
    ancestors.push(dir);
    if (await statOrUndefined(path.join(dir, '.git'))) {
      top = dir;
      break;
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  if (!top) return [];
  const levels: IgnoreLevel[] = [];
  for (const ancestor of ancestors.reverse()) {
    const rules = await readIgnoreFile(path.join(ancestor, '.gitignore'));
    if (rules) levels.push({ rootFromHere: toPosix(path.relative(ancestor, rootAbsolute)), rules });
  }
  return levels;
}

async function readEntries(dir: string): Promise<Array<{ name: string; dirent: Dirent | Dirent<Buffer> }>> {
  if (BYTE_NAMES) {
    const entries = await fsp.readdir(fsPath(dir), { withFileTypes: true, encoding: 'buffer' });
    return entries.map((dirent) => ({ name: decodeFileName(dirent.name), dirent }));
  }
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  return entries.map((dirent) => ({ name: dirent.name, dirent }));
}

export function signatureOf(stats: Stats): FileSignature {
  return { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino };
}

function joinDisplay(dir: string, name: string): string {
  return dir === '.' ? name : path.join(dir, name);
}

/** Image files under the roots, one folder at a time, in name order within each folder. */
export async function* walkImages(args: readonly string[], options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const roots = await resolveRoots(args);
  const extensions = new Set((options.extensions ?? IMAGE_EXTENSIONS).map((e) => e.toLowerCase().replace(/^\./, '')));
  const excluded = excludeMatcher(options.exclude ?? []);
  const useGitignore = options.gitignore !== false;
  const wantStats = options.stat !== false;
  const visitedDirs = new Set<string>();
  const warn = (p: string, message: string, skipped?: WalkSkipReason) => options.onWarning?.({ path: p, message, ...(skipped ? { skipped } : {}) });
  // Where links may lead: the folders scanned (not a named file's folder, whose siblings were not asked for).
  const insideRoots: string[] = roots.flatMap((r) => (r.kind !== 'file' && r.real !== undefined ? [r.real] : []));
  const inside = (real: string) => insideRoots.some((folder) => isWithin(real, folder));

  for (const [rootIndex, root] of roots.entries()) {
    if (options.signal?.aborted) return;
    if (root.kind === 'file') {
      const parent = path.dirname(root.display);
      const name = path.basename(root.display);
      const entry: WalkEntry = { path: root.display, absolute: root.absolute, source: root.absolute, root: parent, rootIndex, relative: name, folder: '', folderLabel: null };
      if (wantStats) {
        await fsp.stat(fsPath(root.display)).then(
          (s) => (entry.signature = signatureOf(s)),
          (err: NodeJS.ErrnoException) => (entry.statError = err),
        );
      }
      yield entry;
      continue;
    }

    const levels = useGitignore ? await inheritedIgnoreLevels(root.absolute) : [];
    const stack: DirJob[] = [{ absolute: root.absolute, real: root.real ?? root.absolute, display: root.display, relative: '', levels }];
    while (stack.length > 0) {
      if (options.signal?.aborted) return;
      const job = stack.pop()!;
      const dirStats = await statOrUndefined(job.real);
      if (!dirStats) {
        warn(job.display, 'folder vanished during the scan');
        continue;
      }
      const dirKey = `${dirStats.dev}:${dirStats.ino}`;
      if (visitedDirs.has(dirKey)) {
        if (job.relative !== '') warn(job.display, 'skipped: this folder was already scanned (it is linked from two places)', 'alreadyScanned');
        continue;
      }
      visitedDirs.add(dirKey);

      let entries: Awaited<ReturnType<typeof readEntries>>;
      try {
        entries = await readEntries(job.real);
      } catch (err) {
        warn(job.display, `cannot read folder: ${errorMessage(err)}`);
        continue;
      }
      let jobLevels = job.levels;
      if (useGitignore && entries.some((e) => e.name === '.gitignore')) {
        const rules = await readIgnoreFile(path.join(job.real, '.gitignore'));
        if (rules) jobLevels = [...jobLevels, { dir: job.relative, rules }];
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

      const subdirs: DirJob[] = [];
      const files: WalkEntry[] = [];
      const linksToResolve: Array<{ name: string; relative: string }> = [];
      for (const { name, dirent } of entries) {
        if (name === '.git') continue;
        const relative = job.relative ? `${job.relative}/${name}` : name;
        if (dirent.isSymbolicLink()) {
          linksToResolve.push({ name, relative });
        } else if (dirent.isDirectory()) {
          if (!isIgnored(jobLevels, relative, true) && !excluded(relative)) {
            subdirs.push({ absolute: path.join(job.absolute, name), real: path.join(job.real, name), display: joinDisplay(job.display, name), relative, levels: jobLevels });
          }
        } else if (hasExtension(name, extensions) && !isIgnored(jobLevels, relative, false) && !excluded(relative) && (!root.glob || root.glob(relative))) {
          files.push(makeEntry(root, rootIndex, job, name, relative, path.join(job.real, name)));
        }
      }
      // Links are resolved to learn whether they lead to a folder and whether they stay inside the roots; a
      // dangling one with an image extension is kept as a file so that it becomes an error row instead of
      // vanishing from the results. Exclusions apply first: an excluded link is not "skipped".
      for (const { name, relative } of linksToResolve) {
        const link = path.join(job.real, name);
        const real = await realPathOf(link);
        const target = real === undefined ? undefined : await statOrUndefined(real);
        const display = joinDisplay(job.display, name);
        if (target?.isDirectory()) {
          if (isIgnored(jobLevels, relative, true) || excluded(relative)) continue;
          if (!inside(real!)) warn(display, `skipped: symbolic link to ${real}, outside the scanned folders`, 'outsideRoots');
          else if (isWithin(job.real, real!)) warn(display, `skipped: symbolic link loop (leads back to ${real})`, 'linkLoop');
          else subdirs.push({ absolute: path.join(job.absolute, name), real: real!, display, relative, levels: jobLevels });
        } else if (hasExtension(name, extensions) && !isIgnored(jobLevels, relative, false) && !excluded(relative) && (!root.glob || root.glob(relative))) {
          if (real !== undefined && !inside(real)) warn(display, `skipped: symbolic link to ${real}, outside the scanned folders`, 'outsideRoots');
          else files.push(makeEntry(root, rootIndex, job, name, relative, real ?? link));
        }
      }
      if (linksToResolve.length > 0) files.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));

      for (let start = 0; start < files.length; start += STAT_CONCURRENCY) {
        if (options.signal?.aborted) return;
        const chunk = files.slice(start, start + STAT_CONCURRENCY);
        if (wantStats) {
          await Promise.all(
            chunk.map((entry) =>
              fsp.stat(fsPath(entry.source!)).then(
                (s) => (entry.signature = signatureOf(s)),
                (err: NodeJS.ErrnoException) => (entry.statError = err),
              ),
            ),
          );
        }
        for (const entry of chunk) yield entry;
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
    }
  }
}

function makeEntry(root: Root, rootIndex: number, job: DirJob, name: string, relative: string, source: string): WalkEntry {
  const folderLabel = job.relative === '' ? null : job.relative.slice(job.relative.lastIndexOf('/') + 1);
  return {
    path: joinDisplay(job.display, name),
    absolute: path.join(job.absolute, name),
    source,
    root: root.display,
    rootIndex,
    relative,
    folder: job.relative,
    folderLabel,
  };
}

/** How many files {@link walkImages} would yield: the scanner runs this beside the scan to give an ETA. */
export async function countImages(args: readonly string[], options: Omit<WalkOptions, 'stat'> = {}): Promise<number> {
  let count = 0;
  for await (const entry of walkImages(args, { ...options, stat: false, onWarning: undefined })) {
    void entry;
    count++;
  }
  return count;
}
