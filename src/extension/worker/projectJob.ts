/**
 * The Dataset view's map inside the inference worker: the scan's stored embeddings, loaded from the results file
 * and the scan cache, projected on a worker thread (src/core/projection/projectionThread.ts). This process's own
 * thread only reads the files and relays progress, so it keeps answering hovers and classifications; the
 * embeddings are moved to the thread, not copied.
 */
import { BeitLensError } from '../../core/errors';
import type { PreprocessOptions } from '../../core/preprocess';
import { projectOnThread } from '../../core/projection/projectionThread';
import { scanModelKey, type ScanModel } from '../../core/scan/scanner';
import { loadDatasetEmbeddings } from '../../core/similarity/datasetEmbeddings';
import type { CallContext } from './workerHandlers';
import type { ProjectArgs, ProjectionAnswer } from './workerProtocol';

export interface ProjectContext extends CallContext {
  model: ScanModel & { canEmbed: boolean; embeddingSize: number };
  preprocess: PreprocessOptions;
}

/** Fewer points than this make no map (UMAP needs a few neighbours per point). */
export const MIN_MAP_POINTS = 3;

export async function projectDataset(args: ProjectArgs, ctx: ProjectContext): Promise<ProjectionAnswer> {
  const methods = Array.isArray(args.methods) ? args.methods : [];
  if (typeof args.resultsFile !== 'string' || typeof args.cacheFile !== 'string' || methods.length === 0 || !methods.every((m) => m === 'pca' || m === 'umap')) {
    throw new RangeError('a map needs a results file, a cache file and methods (pca, umap)');
  }
  if (!ctx.model.canEmbed) throw new BeitLensError('MODEL_INVALID', 'this model has no embedding output (pooled_output), so there is no map: convert it again with this version');
  const { set, rowOfEntry, missing } = await loadDatasetEmbeddings({ resultsFile: args.resultsFile, cacheFile: args.cacheFile, modelKey: scanModelKey(ctx.model, ctx.preprocess), dim: ctx.model.embeddingSize });
  if (set.count < MIN_MAP_POINTS) {
    const why = missing.find((m) => m.reason)?.reason;
    throw new BeitLensError('MODEL_INVALID', `${set.count} of ${set.count + missing.length} images have a stored embedding; a map needs ${MIN_MAP_POINTS}${why ? ` (${why})` : ''}`);
  }
  let last: ProjectionAnswer | undefined;
  let answered = 0;
  await projectOnThread(set.vectors, set.count, set.dim, {
    methods,
    seed: args.seed,
    signal: ctx.signal,
    transfer: true,
    onProgress: (progress) => ctx.progress({ kind: 'projection', progress }),
    onPoints: (method, points) => {
      last = { method, rows: rowOfEntry, points };
      // Every method but the last goes out at once (the PCA view); the last one is the call's result.
      if (++answered < methods.length) ctx.progress({ kind: 'projectionPoints', answer: last });
    },
  });
  if (!last) throw new Error('the projection answered no points');
  return last;
}
