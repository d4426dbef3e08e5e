/**
 * Downloads a model's files from the Hugging Face hub into a local cache, resumably and verified.
 *
 * Hub metadata comes from @huggingface/hub (modelInfo for the commit, pathsInfo for sizes and
 * checksums, fileDownloadInfo for the download URL). The byte transfer itself is a thin fetch on
 * that URL, because the library's downloadFile returns a Blob whose stream hides the HTTP status:
 * we could not tell whether a `Range` request was honoured (206) or ignored (200), and appending a
 * whole file to a partial one would corrupt it.
 *
 * Every request, the library's and ours, goes through one fetch (createHubFetch): undici with a
 * dispatcher that carries the connect, headers and between-bytes timeouts (the library takes a
 * fetch but no timeout or signal of its own), redirects followed by hand so each hop is checked
 * before anything is sent to it, a throughput floor on bodies, and errors that name the host.
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
import { Agent, fetch as undiciFetch } from 'undici';
import { BeitLensError, errorMessage } from './errors';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';
/** huggingface_hub's default for HF_HUB_DOWNLOAD_TIMEOUT, in seconds. */
export const DEFAULT_DOWNLOAD_TIMEOUT_S = 10;

export interface DownloadProgress {
  /** Repository path of the file, e.g. `pytorch_model.bin`. */
  file: string;
  /** Bytes of the file present locally, including those kept from an earlier, interrupted run. */
  received: number;
  total?: number;
  /**
   * Set while nothing arrives: no answer yet, or no bytes for a while (reported once a second).
   * `file` is then the file being fetched, or empty while hub metadata is.
   */
  waiting?: { host: string; seconds: number; timeoutSeconds: number };
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
  /**
   * Replaces the HTTP client (tests). Redirect checks, the throughput floor and error naming still
   * apply; the connect, headers and between-bytes timeouts live in the default client's dispatcher.
   */
  fetch?: typeof fetch;
  /** How many times one call resumes a transfer after the connection drops or stalls; defaults to 3. */
  retries?: number;
  /** Connect, answer and between-bytes timeout in seconds; defaults to $HF_HUB_DOWNLOAD_TIMEOUT, then 10. */
  timeoutSeconds?: number;
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
const UNREACHABLE_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const OFFLINE_HINT = '(offline?): run `node dist/cli.js convert --from test/fixtures/beit-tiny --out models/beit-tiny` to try the pipeline on the bundled tiny model';
/** The fetch standard's limit; the hub needs one hop (resolve -> CDN). */
const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/**
 * A server that sends a byte just before each timeout never stalls by the between-bytes rule
 * (huggingface_hub's, the requests/httpx read timeout), so bodies also need a floor on progress.
 * A size-scaled total deadline would have to assume a speed anyway, and would fire only at the
 * end of a long transfer; a floor over a window fires within the window, whatever the size.
 * 1 KiB/s: below it the 350 MB model would take four days, so giving up (the partial file is kept
 * for the next run) loses nothing. The window is 6 timeouts (60 s by default), so raising
 * HF_HUB_DOWNLOAD_TIMEOUT for a bad link also makes the floor more patient.
 */
const MIN_BYTES_PER_SECOND = 1024;
const FLOOR_WINDOW_TIMEOUTS = 6;
/** Node's timers overflow above 2^31-1 ms and would fire at once. */
const MAX_TIMEOUT_S = 2_147_483;

export function defaultCacheDir(): string {
  return process.env.BEIT_LENS_CACHE || path.join(homedir(), '.cache', 'beit-lens');
}

export async function downloadModel(options: DownloadModelOptions): Promise<DownloadedModel> {
  const endpoint = checkEndpoint(options.endpoint ?? (process.env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT));
  const timeoutSeconds = options.timeoutSeconds === undefined ? downloadTimeoutSeconds() : checkTimeout(options.timeoutSeconds, 'timeoutSeconds');
  const { modelId, signal } = options;
  const revision = options.revision ?? 'main';
  checkModelId(modelId);
  // What a wait report says is being fetched: the file the last report was about, or metadata.
  let current: DownloadProgress = { file: '', received: 0 };
  const onProgress = options.onProgress && ((p: DownloadProgress) => options.onProgress!((current = p)));
  const client = createHubFetch({
    endpoint: new URL(endpoint),
    timeoutSeconds,
    signal,
    baseFetch: options.fetch,
    onWait: onProgress && ((host, seconds) => options.onProgress!({ ...current, waiting: { host, seconds, timeoutSeconds } })),
  });
  const hub = {
    hubUrl: endpoint,
    accessToken: options.token ?? (process.env.HF_TOKEN || undefined),
    fetch: client.fetch,
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
      current = { file, received: 0, total: expectedDigest(byPath.get(file)!).size };
      await ensureCached({
        entry: byPath.get(file)!,
        target: path.join(dir, file),
        locate: () => fileDownloadInfo({ ...hub, repo, path: file, revision: commit }),
        fetch: hub.fetch,
        accessToken: hub.accessToken,
        retries: options.retries ?? DEFAULT_RETRIES,
        onProgress,
        signal,
      });
    }
    return { dir, files, weights, commit };
  } catch (err) {
    throw toBeitLensError(err, { endpoint, modelId, revision, signal });
  } finally {
    await client.close();
  }
}

/**
 * HF_HUB_DOWNLOAD_TIMEOUT, as huggingface_hub reads it (seconds; unset or empty means 10), but
 * fractions are accepted too. Anything else is refused rather than silently replaced by the default.
 */
export function downloadTimeoutSeconds(raw: string | undefined = process.env.HF_HUB_DOWNLOAD_TIMEOUT): number {
  const text = raw?.trim() ?? '';
  if (text === '') return DEFAULT_DOWNLOAD_TIMEOUT_S;
  if (!/^(\d+\.?\d*|\.\d+)$/.test(text)) {
    throw new BeitLensError('DOWNLOAD_FAILED', `HF_HUB_DOWNLOAD_TIMEOUT="${raw}" is not a number of seconds (unset it for the default, ${DEFAULT_DOWNLOAD_TIMEOUT_S})`);
  }
  return checkTimeout(Number(text), 'HF_HUB_DOWNLOAD_TIMEOUT');
}

function checkTimeout(seconds: number, name: string): number {
  if (!(seconds > 0 && seconds <= MAX_TIMEOUT_S)) {
    throw new BeitLensError('DOWNLOAD_FAILED', `${name}=${seconds} must be more than 0 and at most ${MAX_TIMEOUT_S} seconds`);
  }
  return seconds;
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

/**
 * Where a request may go, checked for the endpoint and for every redirect hop before anything is
 * sent there: https anywhere; plain http only to 127.0.0.1, localhost or [::1], and only when the
 * endpoint itself is one of those (a local test hub or mirror): an https hub must not be able to
 * send us to a plain-http service on this machine.
 */
export function isAllowedHop(url: URL, endpoint: URL): boolean {
  return url.protocol === 'https:' || (isAllowedUrl(url) && LOOPBACK_HOSTS.has(endpoint.hostname));
}

/** The id becomes a cache folder name, so anything that could climb out of the cache is refused. */
function checkModelId(modelId: string): void {
  if (!/^[\w.-]+\/[\w.-]+$/.test(modelId) || modelId.split('/').some((part) => /^\.+$/.test(part))) {
    throw new BeitLensError('DOWNLOAD_FAILED', `"${modelId}" is not a hub model id of the form owner/name`);
  }
}

interface HubFetchOptions {
  endpoint: URL;
  timeoutSeconds: number;
  /** The caller's cancellation, carried into the library's requests, which take no signal of their own. */
  signal?: AbortSignal;
  baseFetch?: typeof fetch;
  /** Called once a second while a request waits for its answer or its next bytes. */
  onWait?: (host: string, seconds: number) => void;
}

/** The fetch every hub request goes through (see the file comment), and the dispatcher to close after. */
function createHubFetch(options: HubFetchOptions): { fetch: typeof fetch; close: () => Promise<void> } {
  const { endpoint, timeoutSeconds, signal } = options;
  // At least 1 ms: undici reads 0 as "no timeout".
  const timeoutMs = Math.max(1, Math.round(timeoutSeconds * 1000));
  // undici's own timers: connect, first byte of the answer, and between body bytes (not counted
  // while we are the ones not reading), the same three huggingface_hub gets from requests/httpx.
  const agent = options.baseFetch ? undefined : new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const send: typeof fetch =
    options.baseFetch ?? ((input, init) => undiciFetch(input as string, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>);

  const waiting = async <T>(host: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const ticker = options.onWait && setInterval(() => options.onWait!(host, Math.round((Date.now() - started) / 1000)), 1000);
    ticker?.unref();
    try {
      return await work();
    } finally {
      clearInterval(ticker);
    }
  };
  const fail = (err: unknown, url: URL): unknown => (signal?.aborted || err instanceof BeitLensError ? err : networkError(err, url, endpoint, timeoutSeconds));

  const hubFetch: typeof fetch = async (input, init) => {
    let url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    let method = init?.method ?? 'GET';
    let body = init?.body;
    const headers = new Headers(init?.headers);
    for (let hops = 0; ; hops++) {
      const response = await waiting(url.host, () =>
        send(url.href, { ...init, method, body, headers: Object.fromEntries(headers), redirect: 'manual', signal: signal ?? init?.signal }),
      ).catch((err: unknown) => {
        throw fail(err, url);
      });
      // A custom fetch may have followed redirects itself: hold where it ended up to the same rule.
      if (response.url && response.url !== url.href && !isAllowedHop(new URL(response.url), endpoint)) {
        await response.body?.cancel();
        throw new BeitLensError('DOWNLOAD_FAILED', `the hub redirected to ${new URL(response.url).origin}, which is not https`);
      }
      const location = REDIRECT_STATUSES.has(response.status) ? response.headers.get('location') : null;
      if (location === null) return guardResponse(response, url);
      await response.body?.cancel();

      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new BeitLensError('DOWNLOAD_FAILED', `${url.host} redirected to "${location}", which is not a URL`);
      }
      if (!isAllowedHop(next, endpoint)) {
        throw new BeitLensError(
          'DOWNLOAD_FAILED',
          `${url.host} redirected to ${next.origin}, which is not https (plain http is only followed to 127.0.0.1, localhost or [::1] from such an endpoint); nothing was sent there`,
        );
      }
      if (hops >= MAX_REDIRECTS) throw new BeitLensError('DOWNLOAD_FAILED', `${url.host} redirected more than ${MAX_REDIRECTS} times`);
      if (next.origin !== url.origin) {
        // As browsers and requests do: the token is for the hub, not for the CDN it signs URLs for.
        for (const name of ['authorization', 'proxy-authorization', 'cookie']) headers.delete(name);
      }
      if (response.status === 303 || (method === 'POST' && (response.status === 301 || response.status === 302))) {
        method = 'GET';
        body = undefined;
        headers.delete('content-type');
        headers.delete('content-length');
      }
      url = next;
    }
  };

  /** The same response with a body that enforces the throughput floor, reports waits and names the host on failure. */
  function guardResponse(response: Response, url: URL): Response {
    if (!response.body) return withUrl(response, url);
    const reader = response.body.getReader();
    const windowMs = FLOOR_WINDOW_TIMEOUTS * timeoutMs;
    const floorBytes = Math.ceil((MIN_BYTES_PER_SECOND * windowMs) / 1000);
    let windowStart = Date.now();
    let windowBytes = 0;
    // highWaterMark 0: read only when asked, so a body nobody reads (fileDownloadInfo's probe) reports no waits.
    const onDemand = { highWaterMark: 0 };
    const guarded = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await waiting(url.host, () => reader.read());
          } catch (err) {
            controller.error(fail(err, url));
            return;
          }
          if (chunk.done) {
            controller.close();
            return;
          }
          windowBytes += chunk.value.byteLength;
          const now = Date.now();
          if (now - windowStart >= windowMs) {
            if (windowBytes < floorBytes) {
              const seconds = Math.round((now - windowStart) / 1000);
              controller.error(
                new BeitLensError(
                  'NETWORK_TIMEOUT',
                  `${url.host} timed out: ${windowBytes} bytes in ${seconds} s, under the ${MIN_BYTES_PER_SECOND / 1024} KiB/s floor (HF_HUB_DOWNLOAD_TIMEOUT=${timeoutSeconds} s sets the ${FLOOR_WINDOW_TIMEOUTS}x window)`,
                ),
              );
              await reader.cancel().catch(() => undefined);
              return;
            }
            windowStart = now;
            windowBytes = 0;
          }
          controller.enqueue(chunk.value);
        },
        cancel: (reason) => reader.cancel(reason),
      },
      onDemand,
    );
    const { status, statusText, headers } = response;
    return withUrl(new Response(guarded, { status, statusText, headers }), url);
  }

  return {
    fetch: hubFetch,
    // destroy, not close: close would wait for a body nobody is going to read.
    close: async () => agent?.destroy().catch(() => undefined),
  };
}

/** fileDownloadInfo reads `url` to learn where a redirect chain ended. */
function withUrl(response: Response, url: URL): Response {
  if (response.url !== url.href) Object.defineProperty(response, 'url', { value: url.href });
  return response;
}

/**
 * The hub itself could not be reached (no network, no DNS, refused): the CLI prints the one-line offline
 * hint; the extension, whose users have neither the CLI nor the repository, recognises the class (or the
 * HUB_UNREACHABLE code the worker gives it) and offers its own ways out instead.
 */
export class HubUnreachableError extends BeitLensError {
  constructor(readonly endpoint: string) {
    super('DOWNLOAD_FAILED', `could not reach ${endpoint} ${OFFLINE_HINT}`);
  }
}

/** A failed request as a one-line error naming the host it was sent to. */
function networkError(err: unknown, url: URL, endpoint: URL, timeoutSeconds: number): BeitLensError {
  const code = networkErrorCode(err);
  const atEndpoint = url.origin === endpoint.origin;
  const via = atEndpoint ? '' : ` (redirected there by ${endpoint.host})`;
  if (code && TIMEOUT_CODES.has(code)) {
    const what =
      code === 'UND_ERR_BODY_TIMEOUT'
        ? `no data for ${timeoutSeconds} s`
        : code === 'UND_ERR_HEADERS_TIMEOUT'
          ? `no answer within ${timeoutSeconds} s`
          : `could not connect within ${timeoutSeconds} s`;
    return new BeitLensError('NETWORK_TIMEOUT', `${url.host}${via} timed out: ${what} (HF_HUB_DOWNLOAD_TIMEOUT)`);
  }
  if (code && UNREACHABLE_CODES.has(code)) {
    if (atEndpoint) return new HubUnreachableError(endpoint.href.replace(/\/+$/, ''));
    return new BeitLensError('DOWNLOAD_FAILED', `could not reach ${url.host}${via}: ${code}`);
  }
  return new BeitLensError('DOWNLOAD_FAILED', `${url.host}${via}: ${causeChain(err)}`);
}

/** "fetch failed" alone says nothing; undici puts the reason in `cause`. */
function causeChain(err: unknown): string {
  const parts: string[] = [];
  for (let current = err, depth = 0; current !== undefined && depth < 5; current = (current as Error).cause, depth++) {
    const message = errorMessage(current);
    if (message && !parts.includes(message)) parts.push(message);
    if (!(current instanceof Error)) break;
  }
  return parts.join(': ');
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

/** The connection dropped or stalled mid-body; what arrived is on disk and a retry resumes after it. */
class ConnectionLost extends BeitLensError {
  constructor(file: string, received: number, total: number, cause: unknown) {
    if (cause instanceof BeitLensError && cause.code === 'NETWORK_TIMEOUT') {
      super('NETWORK_TIMEOUT', `${cause.message} after ${received} of ${total} bytes; run again to resume`, file);
    } else {
      super('DOWNLOAD_FAILED', `connection lost after ${received} of ${total} bytes (${errorMessage(cause)}); run again to resume`, file);
    }
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
  return new BeitLensError('DOWNLOAD_FAILED', `downloading ${ctx.modelId} from ${ctx.endpoint} failed: ${errorMessage(err)}`);
}
