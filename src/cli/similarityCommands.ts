/**
 * `beit-lens similar` and `beit-lens duplicates`: thin layers over src/core/similarity. Both scan their folders
 * first (incrementally: an unchanged folder is answered from the scan cache without opening an image), then
 * search the embeddings. Results go to stdout (text, or JSON lines with --json); progress, warnings and the
 * summary go to stderr.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { BeitModel } from '../core/beitModel';
import { BeitLensError } from '../core/errors';
import { safeJson, terminalText } from '../core/safeOutput';
import { displayPath } from '../core/scan/fileNames';
import { ResultStore } from '../core/scan/resultStore';
import { scanModelKey } from '../core/scan/scanner';
import { DEFAULT_NEAR_DUPLICATE_THRESHOLD, findDuplicates } from '../core/similarity/duplicates';
import type { EmbeddingSet } from '../core/similarity/embeddingSet';
import { collectScanEmbeddings } from '../core/similarity/scanEmbeddings';
import { SimilarityIndex } from '../core/similarity/search';
import { resolveModelDir } from './modelResolution';
import { providerFallbackLine } from './providerNote';
import { positiveInt } from './argumentParsers';
import { embeddingScanOptions, progressReporter, type EmbeddingScanFlags } from './scanCommand';

interface CommonFlags extends EmbeddingScanFlags {
  json?: boolean;
}

const ERRORS_SHOWN = 5;

const cosineThreshold = (value: string) => {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('must be a cosine in (0, 1]');
  return n;
};

function commonOptions(command: Command): Command {
  return embeddingScanOptions(command).option('--json', 'print JSON lines');
}

export function registerSimilarityCommands(program: Command): void {
  commonOptions(
    program
      .command('similar')
      .description('list the images under a folder most similar to an image (cosine of their embeddings), most similar first; the folder is scanned first, from the cache where it can be')
      .argument('<image>', 'the query image (inside the folder or not)')
      .requiredOption('--in <dir>', 'the folder to search')
      .option('--top-k <k>', 'how many images to list', positiveInt('--top-k'), 10),
  ).action(async (image: string, flags: CommonFlags & { in: string; topK: number }) => runSimilar(image, flags));

  commonOptions(
    program
      .command('duplicates')
      .description('find exact duplicates (same content) and near duplicates (embedding cosine >= threshold) under folders; with several folders (train/ val/ test/), groups spanning two of them are marked as leakage')
      .argument('<dirs...>', 'folders to compare (each one a split, e.g. train/ val/ test/)')
      .option('--threshold <t>', `cosine at or above which two images are near duplicates (default ${DEFAULT_NEAR_DUPLICATE_THRESHOLD})`, cosineThreshold, DEFAULT_NEAR_DUPLICATE_THRESHOLD),
  ).action(async (dirs: string[], flags: CommonFlags & { threshold: number }) => runDuplicates(dirs, flags));
}

interface Session {
  model: BeitModel;
  set: EmbeddingSet;
  index: SimilarityIndex;
  signal: AbortSignal;
}

/**
 * Loads the model, scans `roots` into an EmbeddingSet (reporting unreadable images on stderr) and opens the
 * similarity index (persisted beside the scan cache), then runs `body` and releases everything.
 */
async function withEmbeddings(roots: string[], flags: CommonFlags, body: (session: Session) => Promise<void>): Promise<void> {
  const preprocess = { fast: flags.fast, applyExifOrientation: flags.exif };
  const model = await BeitModel.load(await resolveModelDir(flags.model), { provider: flags.provider, preprocess });
  const fallback = providerFallbackLine(flags.provider, model.provider, model.providerAttempts);
  if (fallback) process.stderr.write(terminalText(fallback) + '\n');
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nstopping\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const warn = (message: string) => process.stderr.write(`warning: ${terminalText(message)}\n`);
  let store: ResultStore | undefined;
  let index: SimilarityIndex | undefined;
  const bar = progressReporter(process.stderr);
  try {
    if (flags.cache !== false) store = await ResultStore.open(flags.cache, { onWarning: warn });
    const { set, errors, summary } = await collectScanEmbeddings({
      roots,
      model,
      store,
      batchSize: flags.batch,
      exclude: flags.exclude,
      gitignore: flags.gitignore,
      preprocess,
      pool: { workers: flags.workers },
      signal: controller.signal,
      onProgress: bar.update,
      onWarning: (w) => bar.note(`warning: ${terminalText(w.path)}: ${terminalText(w.message)}`),
    });
    bar.done();
    process.stderr.write(`${set.count} images embedded (${summary.cached} from the cache) in ${(summary.elapsedMs / 1000).toFixed(1)} s\n`);
    if (summary.cancelled) throw new BeitLensError('CANCELLED', 'cancelled while scanning; run the same command again to resume from the cache');
    if (errors.length > 0) {
      const shown = errors.slice(0, ERRORS_SHOWN).map((e) => `  ${terminalText(displayPath(e.image))}: ${terminalText(e.error ?? '')}`);
      process.stderr.write(`${errors.length} image${errors.length === 1 ? '' : 's'} could not be embedded and ${errors.length === 1 ? 'is' : 'are'} left out:\n${shown.join('\n')}${errors.length > ERRORS_SHOWN ? `\n  ... and ${errors.length - ERRORS_SHOWN} more` : ''}\n`);
    }
    index = await SimilarityIndex.open(set, {
      indexFile: flags.cache === false ? undefined : indexFileFor(flags.cache, scanModelKey(model, preprocess), roots),
      signal: controller.signal,
      onWarning: warn,
    });
    await body({ model, set, index, signal: controller.signal });
  } finally {
    process.off('SIGINT', onSigint);
    bar.done();
    index?.close();
    await store?.close();
    await model.dispose();
  }
}

/**
 * The approximate index of one dataset (these folders, this model and preprocessing) beside the scan cache. The
 * index keys images by content, so one of another dataset would only be slower (it fails its checks and is rebuilt).
 */
export function indexFileFor(cacheFile: string, modelKey: string, roots: readonly string[]): string {
  const id = createHash('sha256').update(JSON.stringify([modelKey, ...roots.map((r) => path.resolve(r))])).digest('hex').slice(0, 16);
  return `${cacheFile}.similarity-${id}.usearch`;
}

async function runSimilar(image: string, flags: CommonFlags & { in: string; topK: number }): Promise<void> {
  await withEmbeddings([flags.in], flags, async ({ model, set, index }) => {
    const wanted = path.resolve(image);
    const row = set.images.findIndex((candidate) => path.resolve(candidate) === wanted);
    let neighbours;
    if (row >= 0) {
      // The query is one of the folder's images: left out of its own results.
      neighbours = index.neighboursOf(row, flags.topK);
    } else {
      const [result] = await model.embedFiles([image]);
      if (!result.embedding) throw new BeitLensError('IMAGE_DECODE', result.error ?? 'could not be embedded', image);
      neighbours = index.search(result.embedding, flags.topK);
    }
    const lines = neighbours.map((n) =>
      flags.json ? safeJson({ image: set.images[n.row], similarity: n.similarity }) : `${n.similarity.toFixed(4)}  ${terminalText(displayPath(set.images[n.row]))}`,
    );
    if (lines.length) process.stdout.write(lines.join('\n') + '\n');
    process.stderr.write(`${neighbours.length} most similar of ${set.count - (row >= 0 ? 1 : 0)} images under ${terminalText(flags.in)}${index.approximate ? ' (approximate index, exact cosines)' : ''}\n`);
  });
}

async function runDuplicates(dirs: string[], flags: CommonFlags & { threshold: number }): Promise<void> {
  await withEmbeddings(dirs, flags, async ({ set, index, signal }) => {
    const groups = await findDuplicates(set, index, { threshold: flags.threshold, signal });
    const lines = groups.map((g) => {
      const images = g.rows.map((r) => set.images[r]);
      const folders = g.roots.map((r) => set.rootNames[r]);
      if (flags.json) return safeJson({ kind: g.kind, similarity: g.similarity, images, leakage: g.leakage, folders });
      const marker = g.leakage ? `  LEAKAGE across ${folders.map(terminalText).join(', ')}` : '';
      return `${g.kind.padEnd(5)} ${g.similarity.toFixed(4)}  ${images.map((i) => terminalText(displayPath(i))).join('  ')}${marker}`;
    });
    if (lines.length) process.stdout.write(lines.join('\n') + '\n');
    const exact = groups.filter((g) => g.kind === 'exact').length;
    const leaking = groups.filter((g) => g.leakage);
    const inGroups = groups.reduce((n, g) => n + g.rows.length, 0);
    const parts = [
      `${groups.length} duplicate group${groups.length === 1 ? '' : 's'} (${exact} exact, ${groups.length - exact} near at cosine >= ${flags.threshold}) holding ${inGroups} of ${set.count} images`,
    ];
    if (dirs.length > 1) {
      parts.push(
        leaking.length > 0
          ? `${leaking.length} group${leaking.length === 1 ? ' spans' : 's span'} two or more of the folders given: split leakage, the classic bug where the same image sits in train and in val/test and inflates the evaluation`
          : 'no group spans two of the folders given (no split leakage)',
      );
    }
    process.stderr.write(parts.join('; ') + '\n');
  });
}
