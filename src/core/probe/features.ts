/**
 * The probe's features: the raw pooled embedding of every image of a labelled dataset, taken from a scan so that
 * an image whose embedding the scan cache holds is never decoded again (the scan answers it by content hash).
 *
 * Rows are the raw embeddings (float16-exact, as the cache stores them), not the unit-norm rows similarity search
 * uses: the trained head is folded into the model's classifier, which reads the raw pooled output.
 */
import * as path from 'node:path';
import { BeitLensError } from '../errors';
import { EMBEDDING_OUTPUT } from '../onnx/beitGraph';
import { scanDataset, type ScanOptions, type ScanSummary } from '../scan/scanner';
import type { LabelledDataset } from './labelledDataset';
import type { FeatureMatrix } from './logisticRegression';

export interface LabelledFeatures {
  /** One row per image that has an embedding, in dataset order. */
  readonly x: FeatureMatrix;
  readonly labels: Int32Array;
  /** The image of each row, as the dataset named it. */
  readonly images: readonly string[];
  /** sha256 of each row's content. */
  readonly hashes: readonly string[];
  /** Images left out (decode errors, unreadable files), with the reason. */
  readonly failed: ReadonlyArray<{ image: string; error: string }>;
  readonly summary: ScanSummary;
}

export type FeatureScanOptions = Omit<ScanOptions, 'roots' | 'embeddings' | 'onResult'>;

/**
 * Scans the dataset's images (an ImageFolder's own folder, or the CSV's files one by one) and joins each result to
 * its sample by resolved path. The same path listed twice gets the same embedding under each of its labels.
 */
export async function collectLabelledEmbeddings(dataset: LabelledDataset, root: string | undefined, options: FeatureScanOptions): Promise<LabelledFeatures> {
  const { model } = options;
  const dim = model.embeddingSize;
  if (!model.canEmbed || !model.logitsAndEmbeddings || !dim) {
    throw new BeitLensError(
      'MODEL_INVALID',
      `this model folder's graph has no ${EMBEDDING_OUTPUT} output (converted by an older beit-lens, or a plain graph); convert the model again to train a head on its embeddings`,
      model.directory.classifyModel,
    );
  }
  const samplesOf = new Map<string, number[]>();
  dataset.images.forEach((s, i) => {
    const key = path.resolve(s.image);
    const list = samplesOf.get(key);
    if (list) list.push(i);
    else samplesOf.set(key, [i]);
  });
  // A file root is taken as the file even when its name looks like a glob (walk.ts stats before it matches).
  const roots = root !== undefined ? [root] : [...samplesOf.keys()];
  const embeddingOf = new Array<Float32Array | undefined>(dataset.images.length);
  const hashOf = new Array<string | undefined>(dataset.images.length);
  const errorOf = new Map<number, string>();
  const summary = await scanDataset({
    ...options,
    roots,
    embeddings: true,
    onResult: (result) => {
      const samples = samplesOf.get(path.resolve(result.image));
      if (!samples) return;
      for (const i of samples) {
        if (result.embedding && result.hash) {
          embeddingOf[i] = result.embedding;
          hashOf[i] = result.hash;
        } else {
          errorOf.set(i, result.error ?? 'the model returned an embedding float16 cannot hold (non-finite or out of range)');
        }
      }
    },
  });
  if (summary.cancelled) throw new BeitLensError('CANCELLED', 'cancelled while embedding the dataset; run the same command again to resume from the cache');
  const kept: number[] = [];
  const failed: Array<{ image: string; error: string }> = [];
  dataset.images.forEach((s, i) => {
    if (embeddingOf[i]) kept.push(i);
    else failed.push({ image: s.image, error: errorOf.get(i) ?? 'not found by the scan (excluded, ignored by .gitignore, or not an image file)' });
  });
  const values = new Float32Array(kept.length * dim);
  kept.forEach((i, row) => values.set(embeddingOf[i]!, row * dim));
  return {
    x: { values, rows: kept.length, columns: dim },
    labels: Int32Array.from(kept, (i) => dataset.images[i].label),
    images: kept.map((i) => dataset.images[i].image),
    hashes: kept.map((i) => hashOf[i]!),
    failed,
    summary,
  };
}
