/**
 * A labelled image dataset for the linear probe: an ImageFolder layout (the class of an image is its immediate
 * subfolder) or a `path,label` CSV file that overrides it. Class names are kept verbatim (spaces, unicode, commas,
 * quotes): they are data, and every output escapes them where it writes them.
 *
 * What cannot train a probe is refused with an error naming the folder or file: one class only, an empty class
 * folder, too many classes. What can, but needs a word, is a warning: a class with fewer than 2 images (it cannot
 * be split, so it stays out of the holdout), images directly in the dataset folder (they have no class), the same
 * path given two labels, and (once hashes are known) the same content in two classes.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { BeitLensError, errorMessage } from '../errors';
import { displayPath } from '../scan/fileNames';
import { walkImages, type WalkOptions } from '../scan/walk';

/** Refused at this many classes: far beyond what a linear probe on one folder is for, and a sign of a wrong column. */
export const MAX_CLASSES = 10_000;

export interface LabelledImage {
  /** The path scans report and are given: the dataset folder joined with the path below it, or the CSV's path resolved. */
  readonly image: string;
  /** Index into {@link LabelledDataset.classes}. */
  readonly label: number;
}

export interface LabelledDataset {
  /** Class names, sorted by code point so the class order (and id2label) does not depend on the file system. */
  readonly classes: readonly string[];
  readonly images: readonly LabelledImage[];
  /** Classes with fewer than 2 images: trained on, left out of the holdout. */
  readonly singletonClasses: readonly number[];
  readonly warnings: readonly string[];
}

export interface ReadDatasetOptions extends Pick<WalkOptions, 'exclude' | 'gitignore' | 'extensions' | 'signal'> {
  /** A `path,label` CSV file; relative paths in it are read from the CSV file's own folder. */
  labelsFile?: string;
}

export async function readLabelledDataset(dir: string, options: ReadDatasetOptions = {}): Promise<LabelledDataset> {
  return options.labelsFile ? readLabelsFile(options.labelsFile) : readImageFolder(dir, options);
}

export async function readImageFolder(dir: string, options: Omit<ReadDatasetOptions, 'labelsFile'> = {}): Promise<LabelledDataset> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    throw new BeitLensError(err.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the dataset folder: ${errorMessage(err)}`, dir);
  });
  const classFolders = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  const byClass = new Map<string, string[]>(classFolders.map((name) => [name, []]));
  const warnings: string[] = [];
  let unlabelled = 0;
  for await (const entry of walkImages([dir], { ...options, stat: false })) {
    if (entry.folderLabel === null || entry.folder === '') {
      unlabelled++;
      continue;
    }
    const top = entry.folder.split('/')[0];
    // The class is the immediate parent folder, as torchvision's ImageFolder has it only one level down; deeper
    // files would be a second, conflicting reading of the layout, so they are named rather than guessed at.
    if (entry.folder !== top) {
      warnings.push(`${displayPath(entry.path)}: skipped: below a class folder's subfolder (the class is the immediate subfolder of ${displayPath(dir)})`);
      continue;
    }
    byClass.get(top)?.push(entry.path);
  }
  if (unlabelled > 0) warnings.push(`${displayPath(dir)}: ${unlabelled} image(s) directly in the dataset folder have no class folder and were left out`);
  const empty = [...byClass].filter(([, images]) => images.length === 0).map(([name]) => name);
  if (empty.length > 0) {
    throw new BeitLensError(
      'CONFIG_INVALID',
      `empty class folder${empty.length > 1 ? 's' : ''} (no images): ${empty.map((n) => JSON.stringify(n)).join(', ')}; remove ${empty.length > 1 ? 'them' : 'it'} or add images`,
      dir,
    );
  }
  return indexClasses([...byClass].flatMap(([label, images]) => images.map((image) => ({ image, label }))), dir, warnings);
}

export async function readLabelsFile(file: string): Promise<LabelledDataset> {
  const text = await fsp.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new BeitLensError(err.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the labels file: ${errorMessage(err)}`, file);
  });
  let rows: string[][];
  try {
    rows = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: false, trim: false }) as string[][];
  } catch (err) {
    throw new BeitLensError('CONFIG_INVALID', `not a valid CSV file: ${errorMessage(err)}`, file);
  }
  const header = rows[0];
  const hasHeader = header !== undefined && header.length >= 2 && header[0].trim().toLowerCase() === 'path' && header[1].trim().toLowerCase() === 'label';
  const body = hasHeader ? rows.slice(1) : rows;
  const base = path.dirname(file);
  const samples: Array<{ image: string; label: string }> = [];
  body.forEach((row, i) => {
    const line = i + 1 + (hasHeader ? 1 : 0);
    if (row.length !== 2) throw new BeitLensError('CONFIG_INVALID', `row ${line}: expected 2 columns (path,label), found ${row.length}`, file);
    const [image, label] = row;
    if (image === '') throw new BeitLensError('CONFIG_INVALID', `row ${line}: the path is empty`, file);
    if (label === '') throw new BeitLensError('CONFIG_INVALID', `row ${line}: the label of ${image} is empty`, file);
    samples.push({ image: path.isAbsolute(image) ? image : path.join(base, image), label });
  });
  if (samples.length === 0) throw new BeitLensError('CONFIG_INVALID', 'no rows (expected path,label lines)', file);
  return indexClasses(samples, file, []);
}

/** Class indices, refusals and warnings shared by both layouts; `source` is the folder or file named in messages. */
export function indexClasses(samples: ReadonlyArray<{ image: string; label: string }>, source: string, warnings: string[]): LabelledDataset {
  const counts = new Map<string, number>();
  for (const s of samples) counts.set(s.label, (counts.get(s.label) ?? 0) + 1);
  if (counts.size < 2) {
    const only = [...counts.keys()].map((n) => JSON.stringify(n)).join('');
    throw new BeitLensError('CONFIG_INVALID', `only one class (${only || 'none'}): a classifier needs at least 2 classes`, source);
  }
  if (counts.size >= MAX_CLASSES) {
    throw new BeitLensError('CONFIG_INVALID', `${counts.size} classes: at most ${MAX_CLASSES - 1} are accepted (is the label column the right one?)`, source);
  }
  const classes = [...counts.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const indexOf = new Map(classes.map((name, i) => [name, i]));
  const singletonClasses = classes.flatMap((name, i) => (counts.get(name)! < 2 ? [i] : []));
  for (const c of singletonClasses) warnings.push(`class ${JSON.stringify(classes[c])} has fewer than 2 images: it is trained on but left out of the holdout`);
  const labelsOfPath = new Map<string, Set<string>>();
  for (const s of samples) {
    const key = path.resolve(s.image);
    const set = labelsOfPath.get(key) ?? new Set<string>();
    set.add(s.label);
    labelsOfPath.set(key, set);
  }
  for (const [image, labels] of labelsOfPath) {
    if (labels.size > 1) warnings.push(`${displayPath(image)}: the same image is labelled as ${[...labels].map((n) => JSON.stringify(n)).join(' and ')}`);
  }
  return { classes, images: samples.map((s) => ({ image: s.image, label: indexOf.get(s.label)! })), singletonClasses, warnings };
}

export interface ContentDuplicate {
  readonly hash: string;
  /** The images with this content, and the class each one was given (two or more distinct classes). */
  readonly images: ReadonlyArray<{ image: string; label: number }>;
}

/** The same content (sha256) under two or more classes: mislabels, or classes that overlap. */
export function contentInSeveralClasses(rows: ReadonlyArray<{ image: string; label: number; hash: string }>): ContentDuplicate[] {
  const byHash = new Map<string, Array<{ image: string; label: number }>>();
  for (const r of rows) {
    const list = byHash.get(r.hash) ?? [];
    list.push({ image: r.image, label: r.label });
    byHash.set(r.hash, list);
  }
  return [...byHash]
    .filter(([, images]) => new Set(images.map((i) => i.label)).size > 1)
    .map(([hash, images]) => ({ hash, images }));
}

/** One line per duplicate, naming the images and their classes (names quoted as JSON strings, so commas and spaces stay readable). */
export function describeContentDuplicate(duplicate: ContentDuplicate, classes: readonly string[]): string {
  return `the same image content is in ${new Set(duplicate.images.map((i) => i.label)).size} classes: ${duplicate.images
    .map((i) => `${displayPath(i.image)} (${JSON.stringify(classes[i.label])})`)
    .join(', ')}`;
}
