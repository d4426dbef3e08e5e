/**
 * Scan results as files: JSONL (one line per image in the `classify --json` schema plus the folder) and CSV.
 * The CLI's `--out` and the dataset view's export both write through these, so the two always agree.
 *
 * JSONL line: {"image", "folder", "folderLabel", "top": [{index, label, score}]}  or  {..., "error", "errorCode"},
 *   then "sha256" (of the content, when the file was read or its hash was cached) and "root" (the scan argument
 *   the file was found under, as given): what ties a row to its stored embedding and tells train/ from val/.
 * CSV columns: image, folder_label, top1_index, top1_label, top1_score, top5 (JSON array), error, sha256
 *
 * Names with bytes that are not UTF-8 appear in JSONL as `\udcXX` escapes (lossless, see fileNames.ts) and in
 * CSV as U+FFFD (CSV is for people and spreadsheets; JSONL is the exact record).
 * CSV text cells that a spreadsheet would run as a formula get OWASP's leading quote (see safeOutput.ts).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { ErrorCode } from '../errors';
import type { Prediction } from '../predictions';
import { SAFE_CSV_CAST, safeJson } from '../safeOutput';
import { displayPath } from './fileNames';
import type { ScanResult } from './scanner';

/** One exported row: a {@link ScanResult} without the scanner's bookkeeping. */
export interface ScanRecord {
  image: string;
  folder: string;
  folderLabel: string | null;
  top?: Prediction[];
  error?: string;
  errorCode?: ErrorCode;
  /** Content sha256 (hex); absent for files never read (and in files written before it existed). */
  sha256?: string;
  /** The scan argument the file was found under, as given. */
  root?: string;
}

export const CSV_COLUMNS = ['image', 'folder_label', 'top1_index', 'top1_label', 'top1_score', 'top5', 'error', 'sha256'] as const;

function isScanResult(result: ScanResult | ScanRecord): result is ScanResult {
  return typeof (result as ScanResult).root === 'number';
}

export function toRecord(result: ScanResult | ScanRecord): ScanRecord {
  const base = { image: result.image, folder: result.folder, folderLabel: result.folderLabel };
  const sha256 = isScanResult(result) ? result.hash : result.sha256;
  const root = isScanResult(result) ? result.rootName : result.root;
  const tail = { ...(sha256 !== undefined ? { sha256 } : {}), ...(root !== undefined ? { root } : {}) };
  if (result.error !== undefined) return { ...base, error: result.error, ...(result.errorCode ? { errorCode: result.errorCode } : {}), ...tail };
  return { ...base, top: result.top ?? [], ...tail };
}

export function toJsonLine(result: ScanResult | ScanRecord): string {
  return safeJson(toRecord(result));
}

/** Parses one JSONL line back; undefined for a line that is not a scan record. */
export function parseJsonLine(line: string): ScanRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Partial<ScanRecord>;
  if (typeof r.image !== 'string') return undefined;
  if (!Array.isArray(r.top) && typeof r.error !== 'string') return undefined;
  return {
    image: r.image,
    folder: typeof r.folder === 'string' ? r.folder : '',
    folderLabel: typeof r.folderLabel === 'string' ? r.folderLabel : null,
    ...(Array.isArray(r.top) ? { top: r.top } : { error: r.error, ...(r.errorCode ? { errorCode: r.errorCode } : {}) }),
    ...(typeof r.sha256 === 'string' && /^[0-9a-f]{64}$/.test(r.sha256) ? { sha256: r.sha256 } : {}),
    ...(typeof r.root === 'string' ? { root: r.root } : {}),
  };
}

export function toCsvRow(result: ScanResult | ScanRecord): Array<string | number> {
  const top1 = result.top?.[0];
  return [
    displayPath(result.image),
    result.folderLabel ?? '',
    top1 ? top1.index : '',
    top1 ? top1.label : '',
    top1 ? top1.score : '',
    result.top ? JSON.stringify(result.top.slice(0, 5)) : '',
    result.error ?? '',
    (isScanResult(result) ? result.hash : result.sha256) ?? '',
  ];
}

export interface ResultWriter {
  /** Resolves when the stream can take more (backpressure). */
  write(result: ScanResult | ScanRecord): Promise<void>;
  /** Flushes and ends the stream (closing the file when the writer opened it). */
  close(): Promise<void>;
}

async function writeWithBackpressure(stream: Writable, chunk: string | Array<string | number>): Promise<void> {
  if (!stream.write(chunk)) await once(stream, 'drain');
}

async function finish(stream: Writable): Promise<void> {
  if (stream.writableFinished) return;
  stream.end();
  await once(stream, 'finish');
}

export function createJsonlWriter(out: Writable, options: { end?: boolean } = {}): ResultWriter {
  return {
    write: (result) => writeWithBackpressure(out, `${toJsonLine(result)}\n`),
    close: async () => {
      if (options.end !== false) await finish(out);
    },
  };
}

export function createCsvWriter(out: Writable, options: { end?: boolean } = {}): ResultWriter {
  const csv = stringify({ header: true, columns: [...CSV_COLUMNS], cast: SAFE_CSV_CAST });
  csv.pipe(out, { end: options.end !== false });
  return {
    write: (result) => writeWithBackpressure(csv, toCsvRow(result)),
    close: async () => {
      csv.end();
      if (options.end !== false) await once(out, 'finish');
      else await once(csv, 'end');
    },
  };
}

export type ResultFormat = 'jsonl' | 'csv';

/** `.csv` is CSV; anything else is JSONL. */
export function formatForFile(file: string): ResultFormat {
  return file.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl';
}

/** A writer for a results file, replacing it. */
export async function openResultFile(file: string, format: ResultFormat = formatForFile(file)): Promise<ResultWriter> {
  const stream = createWriteStream(file);
  await once(stream, 'open');
  return format === 'csv' ? createCsvWriter(stream) : createJsonlWriter(stream);
}

/** Writes results (e.g. a filtered selection from the dataset view) to a file in one go. */
export async function exportResults(file: string, results: Iterable<ScanResult | ScanRecord> | AsyncIterable<ScanResult | ScanRecord>, format?: ResultFormat): Promise<number> {
  const writer = await openResultFile(file, format);
  let count = 0;
  try {
    for await (const r of results) {
      await writer.write(r);
      count++;
    }
  } finally {
    await writer.close();
  }
  return count;
}
