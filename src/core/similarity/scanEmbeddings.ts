/**
 * The embeddings of folders for the CLI's similarity commands: a scan (incremental, so an unchanged folder is
 * answered from the cache without opening a file) whose results go straight into one EmbeddingSet buffer.
 */
import { BeitLensError } from '../errors';
import { EMBEDDING_OUTPUT } from '../onnx/beitGraph';
import { scanDataset, type ScanOptions, type ScanResult, type ScanSummary } from '../scan/scanner';
import { EmbeddingSetBuilder, type EmbeddingSet } from './embeddingSet';

export interface ScanEmbeddings {
  /** One row per image with an embedding, in the order the scan answered (cache hits first). */
  set: EmbeddingSet;
  /** Images without an embedding: error rows (and, rarely, an image whose embedding float16 could not hold). */
  errors: ScanResult[];
  summary: ScanSummary;
}

export async function collectScanEmbeddings(options: ScanOptions): Promise<ScanEmbeddings> {
  const { model } = options;
  if (!model.canEmbed || !model.logitsAndEmbeddings || !model.embeddingSize) {
    throw new BeitLensError(
      'MODEL_INVALID',
      `this model folder's graph has no ${EMBEDDING_OUTPUT} output (converted by an older beit-lens, or a plain graph); convert the model again to compare images`,
      model.directory.classifyModel,
    );
  }
  const builder = new EmbeddingSetBuilder(model.embeddingSize, options.roots);
  const errors: ScanResult[] = [];
  const summary = await scanDataset({
    ...options,
    embeddings: true,
    onResult: async (result) => {
      if (result.embedding && result.hash) builder.add(result.image, result.hash, result.root, result.embedding);
      else if (result.error !== undefined) errors.push(result);
      else errors.push({ ...result, error: 'the model returned an embedding float16 cannot hold (non-finite or out of range)', errorCode: 'NON_FINITE_OUTPUT' });
      await options.onResult?.(result);
    },
  });
  return { set: builder.finish(), errors, summary };
}
