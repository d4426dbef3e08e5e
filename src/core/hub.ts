/**
 * Downloads a model's files from the Hugging Face hub into a local cache, resumably and verified.
 *
 * Hub metadata comes from @huggingface/hub (modelInfo for the commit, pathsInfo for sizes and
 * checksums, fileDownloadInfo for the download URL). The byte transfer itself is a thin fetch on
 * that URL, because the library's downloadFile returns a Blob whose stream hides the HTTP status:
 * we could not tell whether a `Range` request was honoured (206) or ignored (200), and appending a
 * whole file to a partial one would corrupt it.
 *
 * Integrity: an LFS file must match the sha256 the hub reports as its LFS oid; a small (non-LFS)
 * file must match the git blob sha1 the hub reports as its oid (the hub has no sha256 for those,
 * and the blob sha1 covers every byte, unlike a size or an ETag). Both are checked, together with
 * the size, before a file is moved into the cache, and again whenever a cached file is reused.
 *
 * Cache layout: <cacheDir>/<owner>--<name>/<commit>/<file>, with `<file>.partial` beside it while
 * a transfer is incomplete. Keying by commit rather than branch keeps a partial file and the bytes
 * that would complete it from the same version, even if the branch moves between two runs.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { fileDownloadInfo, HubApiError, modelInfo, pathsInfo, type PathInfo } from '@huggingface/hub';
import { BeitLensError, errorMessage } from './errors';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

export interface DownloadProgress {
  /** Repository path of the file, e.g. `pytorch_model.bin`. */
  file: string;
  /** Bytes of the file present locally, including those kept from an earlier, interrupted run. */
  received: number;
  total?: number;
}

export interface DownloadModelOptions {
  /** `owner/name` on the hub. */
  modelId: string;
  /** Branch, tag or commit; defaults to `main`. */
  revision?: string;
  cacheDir: string;
  /** Defaults to $HF_ENDPOINT, then https://huggingface.co. Must be https unless loopback. */
  endpoint?: string;
  /** Defaults to $HF_TOKEN. */
  token?: string;
  onProgress?: (progress: DownloadProgress) => void;
  /** Aborting rejects with code CANCELLED and keeps the partial file for the next run to resume. */
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** How many times one call resumes a transfer after the connection drops; defaults to 3. */
  retries?: number;
}

export interface DownloadedModel {
  /** Folder holding the files, ready for `beit-lens convert --from <dir>`. */
  dir: string;
  /** Repository paths of the files now in `dir`. */
  files: string[];
  /** Which of `files` holds the weights: `model.safetensors` when the revision has it, else `pytorch_model.bin`. */
  weights: string;
  /** The commit the revision resolved to; the cache folder is named after it. */
  commit: string;
}

const REQUIRED_FILES = ['config.json', 'preprocessor_config.json'];
/** In order of preference: safetensors needs no pickle parsing and is what newer revisions carry. */
const WEIGHT_FILES = ['model.safetensors', 'pytorch_model.bin'];
const DEFAULT_RETRIES = 3;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** Failures that mean the host was never reached, as opposed to a transfer that broke midway. */
const UNREACHABLE_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function defaultCacheDir(): string {
  return process.env.BEIT_LENS_CACHE || path.join(homedir(), '.cache', 'beit-lens');
}

export async function downloadModel(options: DownloadModelOptions): Promise<DownloadedModel> {
  const endpoint = checkEndpoint(options.endpoint ?? (process.env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT));
  const { modelId, signal } = options;
  const revision = options.revision ?? 'main';
  checkModelId(modelId);
  const hub = {
    hubUrl: endpoint,
    accessToken: options.token ?? (process.env.HF_TOKEN || undefined),
    fetch: hubFetch(options.fetch ?? fetch, signal),
  };
  const repo = { type: 'model' as const, name: modelId };

  try {
    signal?.throwIfAborted();
    const { sha: commit } = await modelInfo({ ...hub, name: modelId, revision, additionalFields: ['sha'] });
    if (typeof commit !== 'string' || !/^[0-9a-f]{40}$/.test(commit)) {
      throw new BeitLensError('DOWNLOAD_FAILED', `${endpoint} did not report a commit for ${modelId}@${revision}`);
    }
    const entries = await pathsInfo({ ...hub, repo, revision: commit, paths: [...REQUIRED_FILES, ...WEIGHT_FILES] });
    const byPath = new Map(entries.filter((e) => e.type === 'file').map((e) => [e.path, e]));
    const missing = REQUIRED_FILES.filter((f) => !byPath.has(f));
    const weights = WEIGHT_FILES.find((f) => byPath.has(f));
    if (missing.length > 0 || !weights) {
      const absent = [...missing, ...(weights ? [] : [WEIGHT_FILES.join(' or ')])];
      throw new BeitLensError('DOWNLOAD_FAILED', `${modelId}@${revision} has no ${absent.join(', ')}`);
    }

    const dir = path.join(options.cacheDir, modelId.replace('/', '--'), commit);
    await mkdir(dir, { recursive: true });
    const files = [...REQUIRED_FILES, weights];
    for (const file of files) {
      await ensureCached({
        entry: byPath.get(file)!,
        target: path.join(dir, file),
        locate: () => fileDownloadInfo({ ...hub, repo, path: file, revision: commit }),
        fetch: hub.fetch,
        accessToken: hub.accessToken,
        retries: options.retries ?? DEFAULT_RETRIES,
        onProgress: options.onProgress,
        signal,
      });
    }
    return { dir, files, weights, commit };
  } catch (err) {
    throw toBeitLensError(err, { endpoint, modelId, revision, signal });
  }
}

function checkEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BeitLensError('DOWNLOAD_FAILED', `hub endpoint "${raw}" is not a URL`);
  }
  if (!isAllowedUrl(url)) {
    throw new BeitLensError('DOWNLOAD_FAILED', `hub endpoint ${raw} must use https (plain http is only accepted for 127.0.0.1, localhost or [::1])`);
  }
  return url.href.replace(/\/+$/, '');
}

function isAllowedUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
}

/** The id becomes a cache folder name, so anything that could climb out of the cache is refused. */
function checkModelId(modelId: string): void {
  if (!/^[\w.-]+\/[\w.-]+$/.test(modelId) || modelId.split('/').some((part) => /^\.+$/.test(part))) {
    throw new BeitLensError('DOWNLOAD_FAILED', `"${modelId}" is not a hub model id of the form owner/name`);
  }
}

/**
 * The fetch every hub request goes through: it carries the caller's AbortSignal into the library's
 * requests (which take none of their own) and refuses a redirect that left https, so the https
 * rule holds for where the bytes actually came from, not only for the endpoint we started at.
 */
function hubFetch(baseFetch: typeof fetch, signal: AbortSignal | undefined): typeof fetch {
  return async (input, init) => {
    const response = await baseFetch(input, { ...init, signal: signal ?? init?.signal });
    if (response.url && !isAllowedUrl(new URL(response.url))) {
      await response.body?.cancel();
      throw new BeitLensError('DOWNLOAD_FAILED', `the hub redirected to ${new URL(response.url).origin}, which is not https`);
    }
    return response;
  };
}

type Digest = { algorithm: 'sha256' | 'git-blob-sha1'; hex: string; size: number };

function expectedDigest(entry: PathInfo): Digest {
  if (entry.lfs) return { algorithm: 'sha256', hex: entry.lfs.oid.toLowerCase(), size: entry.lfs.size };
  if (entry.oid) return { algorithm: 'git-blob-sha1', hex: entry.oid.toLowerCase(), size: entry.size };
  throw new BeitLensError('INTEGRITY', 'the hub reported no checksum for this file, so it cannot be verified', entry.path);
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function matchesDigest(file: string, expected: Digest): Promise<boolean> {
  if ((await fileSize(file)) !== expected.size) return false;
  const hash = createHash(expected.algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (expected.algorithm === 'git-blob-sha1') hash.update(`blob ${expected.size}\0`);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex') === expected.hex;
}

interface CacheJob {
  entry: PathInfo;
  target: string;
  locate: () => Promise<{ url: string } | null>;
  fetch: typeof fetch;
  accessToken?: string;
  retries: number;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

async function ensureCached(job: CacheJob): Promise<void> {
  const { entry, target } = job;
  const expected = expectedDigest(entry);
  if ((await fileSize(target)) !== undefined) {
    if (await matchesDigest(target, expected)) {
      job.onProgress?.({ file: entry.path, received: expected.size, total: expected.size });
      return;
    }
    // A cached file that no longer hashes right (disk error, manual edit) is fetched again.
    await rm(target, { force: true });
  }

  const info = await job.locate();
  if (!info) throw new BeitLensError('DOWNLOAD_FAILED', 'listed by the hub but not downloadable', entry.path);

  const partial = `${target}.partial`;
  for (let attempt = 0; ; attempt++) {
    try {
      await transferRemainder(job, info.url, partial, expected.size);
      break;
    } catch (err) {
      if (!(err instanceof ConnectionLost) || attempt >= job.retries) throw err;
    }
  }

  if (!(await matchesDigest(partial, expected))) {
    await rm(partial, { force: true });
    throw new BeitLensError(
      'INTEGRITY',
      `downloaded bytes do not match the hub's ${expected.algorithm} ${expected.hex}; the download was discarded, run again to re-fetch it`,
      entry.path,
    );
  }
  // Same folder, so the rename is atomic: readers see either no file or the whole verified file.
  await rename(partial, target);
}

/** The connection dropped mid-body; what arrived is on disk and a retry resumes after it. */
class ConnectionLost extends BeitLensError {
  constructor(file: string, received: number, total: number, cause: unknown) {
    super('DOWNLOAD_FAILED', `connection lost after ${received} of ${total} bytes (${errorMessage(cause)}); run again to resume`, file);
  }
}

async function transferRemainder(job: CacheJob, url: string, partial: string, total: number): Promise<void> {
  const file = job.entry.path;
  let offset = (await fileSize(partial)) ?? 0;
  if (offset === total) return;
  if (offset > total) offset = 0; // a stale partial longer than the file cannot be completed

  const response = await job.fetch(url, {
    headers: {
      ...(job.accessToken && { Authorization: `Bearer ${job.accessToken}` }),
      ...(offset > 0 && { Range: `bytes=${offset}-` }),
    },
  });
  const resumed = response.status === 206 && offset > 0 && contentRangeStart(response) === offset;
  if (!resumed && response.status !== 200) {
    await response.body?.cancel();
    if (offset > 0 && (response.status === 416 || response.status === 206)) {
      // The server cannot continue from our partial file (or would continue from elsewhere): drop
      // it so the next run starts clean instead of repeating the same unanswerable Range request.
      await rm(partial, { force: true });
    }
    throw new BeitLensError('DOWNLOAD_FAILED', `unexpected HTTP ${response.status} from ${new URL(url).origin}; run again`, file);
  }
  // A 200 answer to a Range request is the whole file: start over rather than append it.
  let received = resumed ? offset : 0;
  let oversized = false;
  const handle = await open(partial, resumed ? 'a' : 'w');
  try {
    job.onProgress?.({ file, received, total });
    for await (const chunk of response.body ?? []) {
      received += chunk.byteLength;
      if (received > total) {
        oversized = true;
        break;
      }
      await handle.write(chunk);
      job.onProgress?.({ file, received, total });
    }
  } catch (err) {
    if (job.signal?.aborted) throw err;
    throw new ConnectionLost(file, received, total, err);
  } finally {
    await handle.close();
  }
  if (oversized) {
    await rm(partial, { force: true });
    throw new BeitLensError('INTEGRITY', `server sent more than the ${total} bytes the hub lists; the download was discarded`, file);
  }
}

function contentRangeStart(response: Response): number | undefined {
  const match = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Walks `cause` chains and AggregateErrors (both IPv4 and IPv6 refused) for a Node network error code. */
function networkErrorCode(err: unknown): string | undefined {
  for (let current = err, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code) return code;
    if (current instanceof AggregateError) {
      const inner = current.errors.map(networkErrorCode).find(Boolean);
      if (inner) return inner;
    }
  }
  return undefined;
}

function toBeitLensError(
  err: unknown,
  ctx: { endpoint: string; modelId: string; revision: string; signal?: AbortSignal },
): BeitLensError {
  if (ctx.signal?.aborted) {
    return new BeitLensError('CANCELLED', `download of ${ctx.modelId} cancelled; run again to resume`);
  }
  if (err instanceof BeitLensError) return err;
  if (err instanceof HubApiError) {
    if (err.statusCode === 401 || err.statusCode === 403) {
      return new BeitLensError(
        'DOWNLOAD_FAILED',
        `${ctx.endpoint} refused access to ${ctx.modelId} (HTTP ${err.statusCode}); for a gated or private model set HF_TOKEN to a token that can read it`,
      );
    }
    return new BeitLensError('DOWNLOAD_FAILED', `${ctx.modelId}@${ctx.revision}: ${ctx.endpoint} answered HTTP ${err.statusCode}: ${err.message}`);
  }
  const code = networkErrorCode(err);
  if (code && UNREACHABLE_CODES.has(code)) {
    return new BeitLensError(
      'DOWNLOAD_FAILED',
      `could not reach ${ctx.endpoint} (offline?): run \`beit-lens convert --from test/fixtures/beit-tiny --out models/beit-tiny\` to try the pipeline on the bundled tiny model`,
    );
  }
  return new BeitLensError('DOWNLOAD_FAILED', `downloading ${ctx.modelId} from ${ctx.endpoint} failed: ${errorMessage(err)}`);
}
