/**
 * `beit-lens scan`: a thin layer over src/core/scan. Results go to --out (JSONL or CSV by extension) or as
 * JSONL to stdout; progress, warnings and the summary go to stderr. Ctrl-C stops cleanly: results so far stay
 * in the output and the cache, the exit code is 130, and the next run resumes from the cache.
 */
import { resolveModelDir } from './modelResolution';
import { providerFallbackLine } from './providerNote';
import { addRemoteOptions, endpointSummaryLines, remoteSessions, type RemoteFlags } from './remoteOptions';
import { Command, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { EXECUTION_PROVIDERS, type ProviderPreference } from '../core/backend/onnxRuntime';
import { BeitModel } from '../core/beitModel';
import { sameFile } from '../core/regularFile';
import { BeitLensError, errorMessage } from '../core/errors';
import { defaultCacheDir } from '../core/hub';
import { QualityTally } from '../core/quality/tally';
import { terminalText } from '../core/safeOutput';
import { displayPath } from '../core/scan/fileNames';
import { LabelChecker, type FolderMapping, type LabelOverrides, type Suspect } from '../core/scan/labelCheck';
import { createJsonlWriter, openResultFile, type ResultWriter } from '../core/scan/output';
import { ResultStore } from '../core/scan/resultStore';
import { scanDataset, type ScanProgress } from '../core/scan/scanner';
import { skippedText } from '../core/scan/walk';
import { nonNegativeInt, positiveInt, unitInterval } from './argumentParsers';
import { clockDuration } from '../shared/clockDuration';

interface ScanFlags extends RemoteFlags {
  model?: string;
  out?: string;
  topK: number;
  batch: number;
  exclude: string[];
  cache: string | false;
  gitignore: boolean;
  labelCheck?: boolean;
  labelMap?: string;
  lowScore: number;
  workers?: number;
  fast?: boolean;
  exif: boolean;
  embeddings: boolean;
  provider: ProviderPreference;
}

const SUSPECTS_SHOWN = 25;
const SKIP_WARNINGS_SHOWN = 10;

export const collect = (value: string, previous: string[]) => [...previous, value];

export function defaultScanCacheFile(): string {
  return path.join(defaultCacheDir(), 'scan-cache.log');
}

/** The flags of the commands that embed a dataset through the scan cache (similar, duplicates, train-head, label-issues). */
export interface EmbeddingScanFlags {
  model?: string;
  cache: string | false;
  batch: number;
  exclude: string[];
  gitignore: boolean;
  workers?: number;
  fast?: boolean;
  exif: boolean;
  provider: ProviderPreference;
}

export function embeddingScanOptions(command: Command): Command {
  return command
    .option('--model <dir>', 'converted model folder (default: the official model, downloaded on first use)')
    .option('--cache <file>', 'scan cache file (embeddings are stored there and reused, by `beit-lens scan` too)', defaultScanCacheFile())
    .option('--no-cache', 'neither read nor write the scan cache (every image is embedded again)')
    .option('--batch <n>', 'images per inference batch', positiveInt('--batch'), 8)
    .option('--exclude <glob>', 'leave out matching files or folders (repeatable)', collect, [])
    .option('--no-gitignore', 'also read files that .gitignore files exclude')
    .option('--workers <n>', 'preprocessing worker threads (0: on the main thread)', nonNegativeInt('--workers'))
    .option('--fast', "use sharp's resize instead of the exact PIL bilinear (a separate cache entry)")
    .option('--no-exif', 'ignore EXIF orientation')
    .addOption(new Option('--provider <name>', 'execution provider').choices(['auto', ...EXECUTION_PROVIDERS]).default('auto'));
}

export function registerScanCommand(program: Command): Command {
  return addRemoteOptions(program.command('scan'))
    .description(
      "classify every image under folders or globs, with a persistent cache, progress and an optional label check; each image's embedding is stored in the cache beside its predictions (float16, about 2.2 kB per image) for similar and duplicates",
    )
    .argument('<paths...>', 'folders, image files or glob patterns (quote globs)')
    .option('--model <dir>', 'converted model folder (default: the official model, downloaded on first use)')
    .option('--out <file>', 'write results to a .jsonl or .csv file (default: JSONL on stdout)')
    .option('--top-k <k>', 'labels per image', positiveInt('--top-k'), 5)
    .option('--batch <n>', 'images per inference batch', positiveInt('--batch'), 8)
    .option('--exclude <glob>', 'leave out matching files or folders (repeatable; a pattern without "/" matches names)', collect, [])
    .option('--cache <file>', 'scan cache file', defaultScanCacheFile())
    .option('--no-cache', 'neither read nor write the scan cache')
    .option('--no-gitignore', 'also scan files that .gitignore files exclude')
    .option('--label-check', 'map class folders to model labels and list images whose folder the model disagrees with')
    .option('--label-map <json>', 'label check overrides: a JSON file {"folder": label index | "label text" | [indices] | null}')
    .option('--low-score <s>', 'label check: flag images whose top-1 score is below this', unitInterval, 0.2)
    .option('--workers <n>', 'preprocessing worker threads (0: on the main thread)', nonNegativeInt('--workers'))
    .option('--fast', "use sharp's resize instead of the exact PIL bilinear")
    .option('--no-exif', 'ignore EXIF orientation')
    .option('--no-embeddings', "classify only: do not store embeddings in the cache (a later similar or duplicates run then embeds again)")
    .addOption(new Option('--provider <name>', 'execution provider').choices(['auto', ...EXECUTION_PROVIDERS]).default('auto'))
    .action(async (paths: string[], flags: ScanFlags) => runScan(paths, flags));
}

async function readOverrides(file: string): Promise<LabelOverrides> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new BeitLensError('CONFIG_INVALID', `cannot read label map: ${errorMessage(err)}`, file);
  }
  const valid = (v: unknown) => v === null || typeof v === 'string' || Number.isInteger(v) || (Array.isArray(v) && v.every((x) => Number.isInteger(x)));
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every(valid)) {
    throw new BeitLensError('CONFIG_INVALID', 'label map must be a JSON object of folder -> label index, label text, [indices] or null', file);
  }
  return value as LabelOverrides;
}

/**
 * --out is replaced when it opens: pointed at the cache (whose next open then refuses it as not a cache), its
 * lock, or a file being read, it would destroy it. Compared as files (device and inode, or real path when
 * --out does not exist yet), so another spelling or a link to the same file is caught too.
 */
async function refuseOverwritingInputs(out: string, paths: readonly string[], flags: ScanFlags): Promise<void> {
  const guarded: Array<[file: string, what: string]> = [];
  if (flags.cache !== false) guarded.push([flags.cache, 'the scan cache (--cache)'], [`${path.resolve(flags.cache)}.lock`, "the scan cache's lock file"]);
  if (flags.labelMap) guarded.push([flags.labelMap, 'the --label-map file']);
  for (const p of paths) guarded.push([p, 'one of the files to scan']);
  for (const [file, what] of guarded) {
    if (await sameFile(out, file)) throw new BeitLensError('CONFIG_INVALID', `--out is ${what}; refusing to overwrite it (choose another --out)`, out);
  }
}

async function runScan(paths: string[], flags: ScanFlags): Promise<void> {
  const overrides = flags.labelMap ? await readOverrides(flags.labelMap) : undefined;
  if (flags.out) await refuseOverwritingInputs(flags.out, paths, flags);
  const preprocess = { fast: flags.fast, applyExifOrientation: flags.exif };
  const sessions = remoteSessions(flags);
  const model = await BeitModel.load(await resolveModelDir(flags.model), { provider: flags.provider, preprocess, ...(sessions ? { sessions } : {}) });
  const fallback = sessions ? undefined : providerFallbackLine(flags.provider, model.provider, model.providerAttempts);
  if (fallback) process.stderr.write(terminalText(fallback) + '\n');
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\nstopping (results so far are kept; Ctrl-C again to quit at once)\n');
      controller.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);

  let store: ResultStore | undefined;
  let writer: ResultWriter | undefined;
  const bar = progressReporter(process.stderr);
  try {
    if (flags.cache !== false) store = await ResultStore.open(flags.cache, { onWarning: (m) => process.stderr.write(`warning: ${terminalText(m)}\n`) });
    if (store && store.stats.truncatedBytes > 0) process.stderr.write(`note: dropped ${store.stats.truncatedBytes} bytes of an interrupted write at the end of the scan cache\n`);
    writer = flags.out ? await openResultFile(flags.out) : createJsonlWriter(process.stdout, { end: false });
    const tally = new QualityTally();
    const checker = flags.labelCheck ? new LabelChecker(model.labels, { overrides, lowScore: flags.lowScore }) : undefined;
    const out = writer;
    const skipsShown: Partial<Record<string, number>> = {};
    const summary = await scanDataset({
      roots: paths,
      model,
      store,
      // Without a cache nothing would keep them: the scan's own output has no embeddings.
      embeddings: flags.embeddings && store !== undefined,
      topK: flags.topK,
      batchSize: flags.batch,
      // One batch per endpoint in flight keeps every server busy; a local session runs one at a time.
      batchesInFlight: sessions ? sessions.endpointCount : 1,
      exclude: flags.exclude,
      gitignore: flags.gitignore,
      preprocess,
      pool: { workers: flags.workers },
      signal: controller.signal,
      onProgress: bar.update,
      onWarning: (w) => {
        // Skips are counted in the summary; a dataset of thousands of outside links shows only the first few.
        if (w.skipped && (skipsShown[w.skipped] = (skipsShown[w.skipped] ?? 0) + 1) > SKIP_WARNINGS_SHOWN) return;
        bar.note(`warning: ${terminalText(w.path)}: ${terminalText(w.message)}`);
      },
      onResult: async (r) => {
        checker?.add(r);
        tally.add(r);
        await out.write(r);
      },
    });
    bar.done();
    const seconds = summary.elapsedMs / 1000;
    const skipped = skippedText(summary.skipped);
    process.stderr.write(
      `${summary.cancelled ? 'cancelled after' : 'scanned'} ${summary.done} files in ${seconds.toFixed(1)} s: ${summary.classified} classified, ${summary.cached} from cache, ${summary.errors} errors (${summary.imagesPerSecond.toFixed(1)} images/s)${skipped ? `; ${skipped}` : ''}${flags.out ? `; results in ${terminalText(flags.out)}` : ''}\n`,
    );
    if (sessions) for (const line of endpointSummaryLines(sessions.endpointStats(), seconds)) process.stderr.write(`${terminalText(line)}\n`);
    const quality = tally.line();
    if (quality) process.stderr.write(`${quality}\n`);
    if (summary.embeddings === 'unavailable') {
      process.stderr.write(`note: this model's graph has no pooled_output, so no embeddings were stored (convert the model again for similar and duplicates)\n`);
    }
    if (checker) printLabelCheck(checker, flags.out ? process.stdout : process.stderr);
    if (summary.cancelled) {
      process.stderr.write('beit-lens: scan cancelled; run the same command again to resume from the cache\n');
      process.exitCode = 130;
    }
  } finally {
    process.off('SIGINT', onSigint);
    bar.done();
    await writer?.close();
    await store?.close();
    await model.dispose();
  }
}


export function progressLine(p: ScanProgress, width = 24): string {
  const total = p.total;
  const fraction = total ? Math.min(1, p.done / total) : undefined;
  const bar = fraction !== undefined ? `[${'#'.repeat(Math.round(fraction * width)).padEnd(width, '-')}] ` : '';
  const count = total !== undefined ? `${p.done}/${total}` : `${p.done} (found ${p.found})`;
  const pct = fraction !== undefined ? ` ${(fraction * 100).toFixed(0)}%` : '';
  const eta = p.etaSeconds !== undefined && !p.finished ? ` ETA ${clockDuration(p.etaSeconds)}` : '';
  return `${bar}${count}${pct} ${p.imagesPerSecond.toFixed(1)} img/s${eta} (cached ${p.cached}, errors ${p.errors})`;
}

/** One self-updating line on a terminal; a plain line every few seconds otherwise (logs, CI). */
export function progressReporter(stream: NodeJS.WriteStream): { update(p: ScanProgress): void; note(line: string): void; done(): void } {
  const tty = stream.isTTY === true;
  let shown = false;
  let lastPlain = 0;
  let last: ScanProgress | undefined;
  const clear = () => {
    if (tty && shown) stream.write('\r\x1b[2K');
  };
  return {
    update(p) {
      last = p;
      if (tty) {
        const columns = stream.columns || 100;
        stream.write(`\r\x1b[2K${progressLine(p).slice(0, Math.max(20, columns - 1))}`);
        shown = true;
      } else if (p.finished || p.elapsedMs - lastPlain >= 5000) {
        lastPlain = p.elapsedMs;
        stream.write(`progress: ${progressLine(p)}\n`);
      }
    },
    note(line) {
      clear();
      stream.write(`${line}\n`);
      if (tty && last) stream.write(progressLine(last));
    },
    done() {
      if (tty && shown) stream.write('\n');
      shown = false;
    },
  };
}

function describeMapping(m: FolderMapping): string {
  switch (m.kind) {
    case 'exact':
      return `${m.label}  (exact: "${m.synonym}")`;
    case 'fuzzy':
      return `${m.label}  (fuzzy ${m.score.toFixed(2)}: "${m.synonym}"; check it)`;
    case 'override':
      return m.label === null ? '(none, by --label-map)' : `${m.accepted.length > 1 ? m.accepted.join(', ') : m.label}  (--label-map)`;
    default:
      return m.candidates.length ? `(no match; closest: ${m.candidates.slice(0, 3).map((c) => `"${c.synonym}" ${c.score.toFixed(2)}`).join(', ')})` : '(no match)';
  }
}

function describeSuspect(s: Suspect): string {
  const says = `model: ${s.top1.label} ${(s.top1.score * 100).toFixed(1)}%`;
  const why = s.reasons.includes('disagree') ? `disagrees (margin ${s.confidence.toFixed(2)})` : 'low confidence';
  return `  ${why.padEnd(26)} ${displayPath(s.image)}  [folder ${s.folderLabel}${s.expected ? ` = ${s.expected.label}` : ''}; ${says}]`;
}

function printLabelCheck(checker: LabelChecker, stream: NodeJS.WritableStream): void {
  const mappings = checker.folderMappings();
  const width = Math.min(32, Math.max(6, ...mappings.map((m) => m.folder.length)));
  const lines = [`label check: ${mappings.length} class folders, ${mappings.filter((m) => m.accepted.length > 0).length} mapped to model labels`];
  for (const m of mappings) lines.push(`  ${m.folder.padEnd(width)} -> ${describeMapping(m)}`);
  const summary = checker.summary;
  const suspects = checker.suspects(SUSPECTS_SHOWN);
  lines.push(`${summary.checked} images checked: ${summary.disagreements} disagree with their folder, ${summary.lowConfidence} low confidence${summary.unmapped ? `, ${summary.unmapped} in unmapped folders` : ''}`);
  if (suspects.length) {
    lines.push(`most suspicious first${suspects.length < summary.disagreements + summary.lowConfidence ? ` (top ${suspects.length})` : ''}:`);
    for (const s of suspects) lines.push(describeSuspect(s));
  }
  // Folder names and labels are other people's text: each line is escaped for the terminal.
  stream.write(`${lines.map(terminalText).join('\n')}\n`);
}
