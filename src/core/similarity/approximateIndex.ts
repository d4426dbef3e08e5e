/**
 * The approximate nearest-neighbour index: usearch's HNSW graph, and the only module that imports usearch.
 * It proposes candidate rows; search.ts re-ranks them with the exact cosine, so the index's float16 copies and its
 * graph's misses can cost recall but never a wrong similarity.
 *
 * Keys are content slots, not rows: one slot per distinct content hash, so exact copies cost one vector and the
 * index outlives row numbering. Persisted as two files, `indexFile` (usearch's own format) and `indexFile.json`
 * (the slot → hash list and what the native file must be: its size, its sha256, the dimension, the library
 * and graph settings, a checksum over all of it). On open the files are checked and the index reused; new
 * hashes are added to it (incremental), hashes no longer in the set are ignored, and a file that is missing a
 * part, truncated, bit-flipped, or was built from other embeddings (another model) is rebuilt from the set with a
 * warning. usearch is given a file only after its bytes passed the checksum: its loader trusts its input.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { BatchMatches, Index, MetricKind, ScalarKind } from 'usearch';
import { BeitLensError, errorMessage } from '../errors';
import { sha256File } from '../modelIntegrity';
import { seededPermutation } from '../seededRandom';
import { EmbeddingSet } from './embeddingSet';
import { CandidateSource, nextTurn, OpenOptions } from './search';

const FORMAT = 'beit-lens-similarity-index';
const VERSION = 1;
/** Written into the header: a file from another usearch version is rebuilt rather than trusted. */
const LIBRARY = 'usearch@2.25.3';
/**
 * HNSW settings, measured on 20,000 × 768 clustered vectors against f32, i8 and hnswlib-node (bench/annLibraries.ts;
 * figures in the README): f16 halves the file against f32 and builds about 2x faster, with recall@10 1.000 once
 * candidates are re-ranked exactly. i8 builds faster still and also re-ranks to 1.000, but its inner-product
 * distances are not on the unit scale, so the spot checks below could not tell a stale index from a sound one.
 */
const SETTINGS = { metric: MetricKind.IP, quantization: ScalarKind.F16, connectivity: 16, expansion_add: 128, expansion_search: 96 } as const;
/** Vectors added per call: the unit between progress reports and cancel checks. */
const ADD_CHUNK = 2048;
/** Rebuild instead of growing when more than this share of the slots belong to images no longer in the set. */
const MAX_DEAD_SHARE = 0.5;
/** Slots checked against the set's embeddings on load: a stale index (model changed) fails this. */
const SPOT_CHECKS = 16;
/** Distance (1 − dot, through float16) at which a stored vector still counts as the set's own. */
const SPOT_TOLERANCE = 2e-3;

interface Header {
  format: typeof FORMAT;
  version: number;
  library: string;
  settings: { metric: string; quantization: string; connectivity: number; expansion_add: number; expansion_search: number };
  dim: number;
  /** Slots in the native file; `hashes.length`. */
  count: number;
  /** sha256 of the hashes joined by newlines, in slot order. */
  hashesDigest: string;
  indexBytes: number;
  indexSha256: string;
  hashes: string[];
  /** sha256 of this object's JSON without this field. */
  checksum: string;
}

const metaFile = (indexFile: string) => `${indexFile}.json`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const headerChecksum = (header: Omit<Header, 'checksum'>) => sha256(JSON.stringify({ ...header, checksum: undefined }));

class Slots {
  /** Rows of the set per slot (empty for a hash the set no longer holds). */
  readonly rows: number[][] = [];
  readonly hashes: string[] = [];
  private readonly slotOf = new Map<string, number>();

  constructor(hashes: readonly string[] = []) {
    for (const hash of hashes) this.add(hash);
  }

  get size(): number {
    return this.hashes.length;
  }

  slot(hash: string): number | undefined {
    return this.slotOf.get(hash);
  }

  add(hash: string): number {
    const slot = this.hashes.length;
    this.hashes.push(hash);
    this.rows.push([]);
    this.slotOf.set(hash, slot);
    return slot;
  }
}

export async function openApproximateIndex(set: EmbeddingSet, options: OpenOptions): Promise<CandidateSource> {
  const cancelled = () => new BeitLensError('CANCELLED', 'building the similarity index cancelled');
  if (options.signal?.aborted) throw cancelled();
  let loaded: { index: Index; slots: Slots } | undefined;
  if (options.indexFile) {
    try {
      loaded = await loadIndex(options.indexFile, set);
    } catch (err) {
      options.onWarning?.(`${options.indexFile}: ${errorMessage(err)}; rebuilding the similarity index from the embeddings`);
    }
  }
  if (loaded) {
    const live = new Set(set.hashes.filter((hash) => loaded!.slots.slot(hash) !== undefined)).size;
    // Mostly images that are gone: start over rather than carry them, so memory stays proportional to the set.
    if (loaded.slots.size - live > MAX_DEAD_SHARE * loaded.slots.size) loaded = undefined;
  }
  const index = loaded?.index ?? newIndex(set.dim);
  const slots = loaded?.slots ?? new Slots();

  // Attach rows to slots; collect one representative row per hash the index lacks.
  const missing: number[] = [];
  for (let row = 0; row < set.count; row++) {
    let slot = slots.slot(set.hashes[row]);
    if (slot === undefined) {
      slot = slots.add(set.hashes[row]);
      missing.push(row);
    }
    slots.rows[slot].push(row);
  }

  const threads = Math.max(1, (os.availableParallelism?.() ?? os.cpus().length) - 1);
  const keys = new BigUint64Array(ADD_CHUNK);
  const chunk = new Float32Array(ADD_CHUNK * set.dim);
  for (let start = 0; start < missing.length; start += ADD_CHUNK) {
    options.onProgress?.(start, missing.length);
    await nextTurn();
    if (options.signal?.aborted) throw cancelled();
    const n = Math.min(ADD_CHUNK, missing.length - start);
    for (let i = 0; i < n; i++) {
      const row = missing[start + i];
      keys[i] = BigInt(slots.slot(set.hashes[row])!);
      chunk.set(set.vectors.subarray(row * set.dim, (row + 1) * set.dim), i * set.dim);
    }
    index.add(keys.subarray(0, n), chunk.subarray(0, n * set.dim), threads);
  }
  options.onProgress?.(missing.length, missing.length);
  if (options.indexFile && missing.length > 0) {
    try {
      await saveIndex(options.indexFile, index, slots, set.dim);
    } catch (err) {
      // The index in memory is sound; only the next open pays for the rebuild.
      options.onWarning?.(`${options.indexFile}: could not be saved (${errorMessage(err)}); the index will be rebuilt next time`);
    }
  }

  let closed = false;
  return {
    get size() {
      return closed ? 0 : index.size();
    },
    candidates(query, k) {
      const out: number[] = [];
      if (closed || k <= 0 || index.size() === 0) return out;
      const matches = index.search(query, Math.min(k, index.size()), 1);
      for (const key of matches.keys) {
        const rows = slots.rows[Number(key)];
        if (rows) for (const row of rows) out.push(row);
      }
      return out;
    },
    candidatesBatch(queries, count, k) {
      if (closed || k <= 0 || index.size() === 0 || count === 0) return Array.from({ length: count }, () => []);
      const kk = Math.min(k, index.size());
      const toRows = (keys: BigUint64Array) => {
        const out: number[] = [];
        for (const key of keys) {
          const rows = slots.rows[Number(key)];
          if (rows) for (const row of rows) out.push(row);
        }
        return out;
      };
      if (count === 1) return [toRows(index.search(queries.subarray(0, set.dim), kk, 1).keys)];
      const matches = index.search(queries.subarray(0, count * set.dim), kk, threads) as unknown as BatchMatches;
      return Array.from({ length: count }, (_, i) => toRows(matches.get(i).keys));
    },
    // usearch frees its native memory when the Index is collected; closing drops what we hold.
    close() {
      closed = true;
      slots.rows.length = 0;
    },
  };
}

function newIndex(dim: number): Index {
  return new Index({ dimensions: dim, ...SETTINGS, multi: false });
}

/** The persisted index, checked end to end; throws a one-line reason when it cannot be trusted (nothing there included). */
async function loadIndex(indexFile: string, set: EmbeddingSet): Promise<{ index: Index; slots: Slots } | undefined> {
  let text: string;
  try {
    text = await readFile(metaFile(indexFile), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new BeitLensError('FILE_UNREADABLE', `its header ${metaFile(indexFile)} is unreadable (${code})`);
    // First open: nothing to warn about unless a native file lies there without its header.
    const orphan = await stat(indexFile).then(() => true, () => false);
    if (orphan) throw new BeitLensError('INTEGRITY', `its header ${metaFile(indexFile)} is missing`);
    return undefined;
  }
  let header: Header;
  try {
    header = JSON.parse(text) as Header;
  } catch {
    throw new BeitLensError('INTEGRITY', 'its header is not valid JSON (truncated or corrupt)');
  }
  if (header?.format !== FORMAT || header.version !== VERSION) throw new BeitLensError('INTEGRITY', 'its header is not a BEiT Lens similarity index header');
  if (header.checksum !== headerChecksum(header)) throw new BeitLensError('INTEGRITY', 'its header fails its checksum (corrupt)');
  if (header.library !== LIBRARY || JSON.stringify(header.settings) !== JSON.stringify(settingsRecord())) {
    throw new BeitLensError('INTEGRITY', `it was built by ${header.library} with other settings`);
  }
  if (header.dim !== set.dim) throw new BeitLensError('INTEGRITY', `it holds ${header.dim}-float embeddings, the dataset's have ${set.dim}`);
  if (!Array.isArray(header.hashes) || header.hashes.length !== header.count || sha256(header.hashes.join('\n')) !== header.hashesDigest) {
    throw new BeitLensError('INTEGRITY', 'its list of content hashes does not match its digest');
  }
  const size = await stat(indexFile).then((s) => s.size, () => -1);
  if (size < 0) throw new BeitLensError('INTEGRITY', 'the index file is missing');
  if (size !== header.indexBytes) throw new BeitLensError('INTEGRITY', `the index file has ${size} bytes, its header says ${header.indexBytes} (truncated?)`);
  if ((await sha256File(indexFile)) !== header.indexSha256) throw new BeitLensError('INTEGRITY', 'the index file fails its checksum (corrupt)');

  const index = newIndex(set.dim);
  try {
    index.load(indexFile);
  } catch (err) {
    throw new BeitLensError('INTEGRITY', `usearch could not load it (${errorMessage(err)})`);
  }
  if (index.size() !== header.count) throw new BeitLensError('INTEGRITY', `it holds ${index.size()} vectors, its header says ${header.count}`);
  const slots = new Slots(header.hashes);

  // Same hashes are not the same embeddings when the model changed: look a few of the set's rows up by vector.
  const shared: number[] = [];
  for (let row = 0; row < set.count; row++) if (slots.slot(set.hashes[row]) !== undefined) shared.push(row);
  const step = Math.max(1, Math.floor(shared.length / SPOT_CHECKS));
  for (let i = 0; i < shared.length && i / step < SPOT_CHECKS; i += step) {
    const row = shared[i];
    // Its own slot among the few nearest (not necessarily first: the graph may miss at top-1), at ~zero distance.
    const matches = index.search(set.vectors.subarray(row * set.dim, (row + 1) * set.dim), Math.min(8, index.size()), 1);
    const slot = BigInt(slots.slot(set.hashes[row])!);
    const own = matches.keys.findIndex((key) => key === slot);
    if (!(own >= 0 && matches.distances[own] <= SPOT_TOLERANCE)) throw new BeitLensError('INTEGRITY', `it was built from other embeddings (${set.images[row]} is not in it as the dataset has it; another model?)`);
  }
  return { index, slots };
}

function settingsRecord(): Header['settings'] {
  return { metric: SETTINGS.metric, quantization: SETTINGS.quantization, connectivity: SETTINGS.connectivity, expansion_add: SETTINGS.expansion_add, expansion_search: SETTINGS.expansion_search };
}

/** Native file first, header last, each through a temporary name: a crash in between leaves a pair that fails the check, never one that passes. */
async function saveIndex(indexFile: string, index: Index, slots: Slots, dim: number): Promise<void> {
  const tmp = `${indexFile}.${process.pid}.tmp`;
  await rm(metaFile(indexFile), { force: true });
  index.save(tmp);
  await rename(tmp, indexFile);
  const body: Omit<Header, 'checksum'> = {
    format: FORMAT,
    version: VERSION,
    library: LIBRARY,
    settings: settingsRecord(),
    dim,
    count: slots.size,
    hashesDigest: sha256(slots.hashes.join('\n')),
    indexBytes: (await stat(indexFile)).size,
    indexSha256: await sha256File(indexFile),
    hashes: slots.hashes,
  };
  const header: Header = { ...body, checksum: headerChecksum(body) };
  await writeFile(`${metaFile(indexFile)}.tmp`, JSON.stringify(header));
  await rename(`${metaFile(indexFile)}.tmp`, metaFile(indexFile));
}

/**
 * Each row's `k` nearest rows by Euclidean distance, for the map's neighbour graph (projection/umap.ts): usearch's
 * HNSW over float32 copies, then every row searched: 7–8 s at 50,000 × 50, where umap-js's own neighbour descent
 * took 142 s at 100,000. Built on one thread: a multi-threaded build inserts rows in a varying order, so its graph,
 * and with it the map, would change from run to run. Searched on one thread too: usearch holds search contexts
 * only for the threads the index was built with.
 * Returns row numbers, [count, k] row-major, nearest first; -1 where the graph offered fewer than `k`.
 */
export function euclideanNeighbourRows(vectors: Float32Array, count: number, dim: number, k: number): Int32Array {
  const index = new Index({ dimensions: dim, metric: MetricKind.L2sq, quantization: ScalarKind.F32, connectivity: 16, expansion_add: 128, expansion_search: Math.max(64, 2 * k), multi: false });
  const data = vectors.subarray(0, count * dim);
  // Rows arrive grouped (a scan lists a folder, often one class, at a time); inserted in that order the graph
  // links clusters poorly (recall 0.987 on 8 blobs of 250 against 1.000 shuffled), so they go in a seeded shuffle.
  const order = seededPermutation(count, count);
  const keys = new BigUint64Array(count);
  const shuffled = new Float32Array(count * dim);
  order.forEach((row, i) => {
    keys[i] = BigInt(row);
    shuffled.set(data.subarray(row * dim, (row + 1) * dim), i * dim);
  });
  index.add(keys, shuffled, 1);
  const found = index.search(data, k, 1) as unknown as BatchMatches;
  const out = new Int32Array(count * k).fill(-1);
  for (let i = 0; i < count; i++) {
    const n = Number(found.counts[i]);
    for (let j = 0; j < n; j++) out[i * k + j] = Number(found.keys[i * k + j]);
  }
  return out;
}
