/**
 * The embeddings of a scanned dataset as the editor's worker reads them: the rows of a results file (the Dataset
 * view's table, or a `beit-lens scan --out x.jsonl` file) joined with the embeddings the scan cached, by each
 * row's content sha256 and the model key.
 *
 * Memory: the table is streamed (its index holds ~30 bytes a row, never the JSON), and the vectors go straight
 * into one buffer sized for the table; nothing else grows with the dataset but the image names and hashes.
 * The cache is opened read-only, so this works beside a scan that holds its lock as well as without one.
 */
import { stat } from 'node:fs/promises';
import { BeitLensError, errorMessage } from '../errors';
import { ResultStore } from '../scan/resultStore';
import { ResultTable } from '../scan/resultTable';
import { EmbeddingSetBuilder, type EmbeddingSet } from './embeddingSet';

export interface DatasetEmbeddingsOptions {
  /** A results JSONL file (rows with `sha256` and `root`, as scans write them). */
  resultsFile: string;
  /** The scan cache the rows were scanned into. */
  cacheFile: string;
  /** scanModelKey() of the model and preprocessing the scan used. */
  modelKey: string;
  /** Floats per embedding (the model's embeddingSize). */
  dim: number;
  /** The scan's roots, to fix the order of `rootNames`; roots met in the file but not listed follow, in order met. */
  roots?: readonly string[];
}

export interface MissingEmbedding {
  image: string;
  /** Its row id in the results table. */
  row: number;
  reason: string;
}

export interface DatasetEmbeddings {
  set: EmbeddingSet;
  /** The results table row id of each set row. */
  rowOfEntry: Int32Array;
  /** Rows that are not in the set, and why (error rows, rows from older files, embeddings not stored or damaged). */
  missing: MissingEmbedding[];
}

export const NO_HASH_REASON = 'the results file has no content hash for this row (written before embeddings were stored): scan again';
export const NOT_STORED_REASON =
  'no stored embedding for this image and model (scanned without embeddings, by a graph without pooled_output, or its cache record is damaged): scan again';

export async function loadDatasetEmbeddings(options: DatasetEmbeddingsOptions): Promise<DatasetEmbeddings> {
  const { resultsFile, cacheFile, modelKey, dim } = options;
  // ResultTable.open would create a missing file; a typo should be an error naming it instead.
  await stat(resultsFile).catch((err: NodeJS.ErrnoException) => {
    throw new BeitLensError(err.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot read the results file: ${errorMessage(err)}`, resultsFile);
  });
  const store = await ResultStore.open(cacheFile, { readOnly: true });
  let table: ResultTable | undefined;
  try {
    table = await ResultTable.open(resultsFile);
    const rootNames = [...(options.roots ?? [])];
    const rootIndex = new Map(rootNames.map((name, i) => [name, i]));
    // Root indices are only known once every row is read, so rows are added with their index as met; a root
    // first met after the builder exists is appended to the same array the builder holds.
    const builder = new EmbeddingSetBuilder(dim, rootNames, Math.max(1, table.size));
    const rowOfEntry = new Int32Array(table.size);
    const missing: MissingEmbedding[] = [];
    for await (const row of table.entries()) {
      if (row.error !== undefined) {
        missing.push({ image: row.image, row: row.row, reason: row.error });
        continue;
      }
      if (!row.sha256) {
        missing.push({ image: row.image, row: row.row, reason: NO_HASH_REASON });
        continue;
      }
      const embedding = await store.lookupEmbedding(row.sha256, modelKey, dim);
      if (!embedding) {
        missing.push({ image: row.image, row: row.row, reason: NOT_STORED_REASON });
        continue;
      }
      const rootName = row.root ?? '';
      let root = rootIndex.get(rootName);
      if (root === undefined) {
        root = rootNames.length;
        rootNames.push(rootName);
        rootIndex.set(rootName, root);
      }
      rowOfEntry[builder.add(row.image, row.sha256, root, embedding)] = row.row;
    }
    const set = builder.finish();
    return { set, rowOfEntry: rowOfEntry.slice(0, set.count), missing };
  } finally {
    await table?.close();
    await store.close();
  }
}
