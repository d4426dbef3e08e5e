/**
 * The approximate nearest-neighbour index (usearch's HNSW): the only module that imports usearch. It proposes
 * candidate rows; search.ts re-ranks them with the exact cosine.
 */
import { Index, MetricKind, ScalarKind } from 'usearch';
import { BeitLensError } from '../errors';
import { EmbeddingSet } from './embeddingSet';
import { CandidateSource, OpenOptions } from './search';

export async function openApproximateIndex(set: EmbeddingSet, options: OpenOptions): Promise<CandidateSource> {
  const index = new Index({ dimensions: set.dim, metric: MetricKind.IP, quantization: ScalarKind.F16, connectivity: 16, expansion_add: 128, expansion_search: 64, multi: false });
  const keys = new BigUint64Array(set.count);
  for (let row = 0; row < set.count; row++) keys[row] = BigInt(row);
  if (options.signal?.aborted) throw new BeitLensError('CANCELLED', 'building the similarity index cancelled');
  index.add(keys, set.vectors, 0);
  options.onProgress?.(set.count, set.count);
  return {
    candidates(query, k) {
      const matches = index.search(query, k, 1);
      return Array.from(matches.keys, (key) => Number(key));
    },
    close() {},
  };
}
