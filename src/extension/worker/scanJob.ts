/**
 * A dataset scan inside the inference worker: the shared engine (src/core/scan) with the worker's model,
 * writing each result to the results file the dataset view reads and to the persistent cache.
 *
 * Resuming is built in: rows already in the results file are not written again. After the worker was
 * killed mid-scan the extension simply runs the same job again; the cache answers what was classified
 * before the kill (each answer is in the cache before it reaches the results file), and the file check
 * drops what was already written, so no result is lost or duplicated.
 */
import { ResultStore } from '../../core/scan/resultStore';
import { ResultTable } from '../../core/scan/resultTable';
import { scanDataset, type ScanModel, type ScanProgress } from '../../core/scan/scanner';
import type { PreprocessOptions } from '../../core/preprocess';
import type { ScanJobArgs, ScanJobSummary } from './workerProtocol';

export interface ScanJobContext {
  model: ScanModel;
  /** How the worker's model preprocesses (part of the cache key, so it must match the model's). */
  preprocess: PreprocessOptions;
  signal: AbortSignal;
  onProgress: (progress: ScanProgress) => void;
  onWarning?: (message: string) => void;
}

export async function runScanJob(args: ScanJobArgs, ctx: ScanJobContext): Promise<ScanJobSummary> {
  const table = await ResultTable.open(args.resultsFile);
  let store: ResultStore | undefined;
  try {
    // Paths only, not results: a resumed 100,000-image scan holds 100,000 short strings for its duration.
    const written = new Set<string>();
    for await (const row of table.entries()) written.add(row.image);
    const alreadyInFile = written.size;
    if (args.cacheFile) store = await ResultStore.open(args.cacheFile, { onWarning: ctx.onWarning });
    let appended = 0;
    const summary = await scanDataset({
      roots: args.roots,
      model: ctx.model,
      store,
      topK: args.topK,
      batchSize: args.batchSize,
      exclude: args.exclude,
      preprocess: ctx.preprocess,
      signal: ctx.signal,
      onProgress: ctx.onProgress,
      onWarning: (w) => ctx.onWarning?.(`${w.path}: ${w.message}`),
      onResult: (result) => {
        if (written.has(result.image)) return;
        written.add(result.image);
        table.append(result);
        appended++;
      },
    });
    return { ...summary, rows: table.size, written: appended, alreadyInFile };
  } finally {
    await store?.close();
    await table.close();
  }
}
