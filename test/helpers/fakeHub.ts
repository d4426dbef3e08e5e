/**
 * A local stand-in for the Hugging Face hub, speaking the subset of its HTTP API that
 * @huggingface/hub's modelInfo / pathsInfo / fileDownloadInfo use, plus the LFS content route,
 * so the downloader can be tested without a network. Listens on 127.0.0.1 only.
 *
 * Routes (as the real hub lays them out):
 *   GET  /api/models/{owner}/{name}/revision/{rev}      model info; `sha` is the commit
 *   POST /api/models/{owner}/{name}/paths-info/{rev}    per-path size, git oid and LFS sha256
 *   GET  /{owner}/{name}/resolve/{rev}/{path}            small files: served directly;
 *                                                         LFS files: 302 to /cdn/lfs/{sha256}
 *   GET  /cdn/lfs/{sha256}                                LFS bytes, with Range support
 *
 * Faults (cut, stall, trickle, corrupt, ignoreRange) apply only to content transfers, never to the
 * `Range: bytes=0-0` probe that fileDownloadInfo sends, so metadata stays truthful while the
 * bytes misbehave, which is exactly the situation the downloader must catch.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface FakeRepoFile {
  path: string;
  content: Buffer;
  /** Stored with Git LFS on the real hub: paths-info carries its sha256 and resolve redirects to a CDN. */
  lfs: boolean;
}

export interface FakeHubOptions {
  repoId: string;
  files: FakeRepoFile[];
  commit?: string;
  /** When set, hub routes answer 401 unless `Authorization: Bearer <requiredToken>` is sent. */
  requiredToken?: string;
  /**
   * Answer fileDownloadInfo's probe for LFS files with Xet file info, as the real hub does for
   * Xet-backed repos (this model's weights are); the bytes must then still arrive over plain HTTP.
   */
  xet?: boolean;
  /** Hard cap so a client stuck in a retry loop fails the test instead of hanging it. */
  maxRequests?: number;
}

export type RequestKind = 'api' | 'probe' | 'redirect' | 'transfer' | 'xet';

export interface RecordedRequest {
  method: string;
  url: string;
  kind: RequestKind;
  /** Repository path of the file a probe/transfer was for. */
  file?: string;
  headers: IncomingHttpHeaders;
  status: number;
  /** The transfer went silent mid-body (FakeHubFaults.stallAt). */
  stalled?: boolean;
}

export interface FakeHubFaults {
  /** Absolute file offsets; each transfer of that file consumes the first one and drops the connection there. */
  cutAt: Map<string, number[]>;
  /** Files whose transferred bytes have one byte flipped. */
  corrupt: Set<string>;
  /** Files whose transfers answer 200 with the whole file even when a Range was asked for. */
  ignoreRange: Set<string>;
  /** Pause between 16 KiB chunks, so a client has time to abort mid-transfer. */
  chunkDelayMs: number;
  /** Absolute file offsets; each transfer of that file consumes the first one and goes silent there, connection open. */
  stallAt: Map<string, number[]>;
  /** Files whose transfers send one byte every this many ms (a server that never quite stalls). */
  trickleMs: Map<string, number>;
  /** When set, LFS resolves redirect to this origin instead of the hub's own /cdn route. */
  lfsRedirectOrigin?: string;
}

export interface FakeHub {
  url: string;
  commit: string;
  requests: RecordedRequest[];
  faults: FakeHubFaults;
  /** Content transfers (probes excluded) for one file, in arrival order. */
  transfers(file: string): RecordedRequest[];
  close(): Promise<void>;
}

const CHUNK = 16 * 1024;

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The object id git gives a file's content, which the hub reports as `oid` for non-LFS files. */
export function gitBlobSha1(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

function lfsPointer(file: FakeRepoFile): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256Hex(file.content)}\nsize ${file.content.length}\n`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, errorCode?: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...(errorCode && { 'X-Error-Code': errorCode }) });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeHub(options: FakeHubOptions): Promise<FakeHub> {
  const commit = options.commit ?? createHash('sha1').update(options.repoId).digest('hex');
  const filesByPath = new Map(options.files.map((f) => [f.path, f]));
  const lfsBySha = new Map(options.files.filter((f) => f.lfs).map((f) => [sha256Hex(f.content), f]));
  const maxRequests = options.maxRequests ?? 200;
  const requests: RecordedRequest[] = [];
  const faults: FakeHubFaults = { cutAt: new Map(), corrupt: new Set(), ignoreRange: new Set(), chunkDelayMs: 0, stallAt: new Map(), trickleMs: new Map() };
  let baseUrl = '';

  const knownRevision = (rev: string) => rev === 'main' || rev === 'HEAD' || rev === commit;

  function record(req: IncomingMessage, kind: RequestKind, file?: string): RecordedRequest {
    const entry: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '', kind, file, headers: req.headers, status: 0 };
    requests.push(entry);
    return entry;
  }

  function authorized(req: IncomingMessage): boolean {
    return !options.requiredToken || req.headers.authorization === `Bearer ${options.requiredToken}`;
  }

  async function serveContent(req: IncomingMessage, res: ServerResponse, file: FakeRepoFile, entry: RecordedRequest, extraHeaders: Record<string, string>) {
    const size = file.content.length;
    const etag = `"${file.lfs ? sha256Hex(file.content) : gitBlobSha1(file.content)}"`;
    const rangeHeader = req.headers.range;
    const isProbe = rangeHeader === 'bytes=0-0';
    entry.kind = isProbe ? 'probe' : 'transfer';

    let start = 0;
    let end = size; // exclusive
    const range = /^bytes=(\d+)-(\d*)$/.exec(rangeHeader ?? '');
    const honourRange = range && (isProbe || !faults.ignoreRange.has(file.path));
    if (honourRange) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]) + 1, size) : size;
      if (start >= size) {
        entry.status = 416;
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
    }

    let body = file.content.subarray(start, end);
    if (!isProbe && faults.corrupt.has(file.path)) {
      body = Buffer.from(body);
      body[Math.floor(body.length / 2)] ^= 0xff;
    }
    const cut = isProbe ? undefined : faults.cutAt.get(file.path)?.shift();

    entry.status = honourRange ? 206 : 200;
    res.writeHead(entry.status, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.length),
      'Accept-Ranges': 'bytes',
      ETag: etag,
      ...(honourRange && { 'Content-Range': `bytes ${start}-${end - 1}/${size}` }),
      ...extraHeaders,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }

    const stall = isProbe ? undefined : faults.stallAt.get(file.path)?.shift();
    const stopAt = cut !== undefined && cut > start && cut < end ? cut - start : body.length;
    const stallAt = stall !== undefined && stall > start && stall < end ? stall - start : body.length;
    const trickleMs = isProbe ? undefined : faults.trickleMs.get(file.path);
    const piece = trickleMs === undefined ? CHUNK : 1;
    for (let sent = 0; sent < Math.min(stopAt, stallAt) && !res.destroyed; sent += piece) {
      const bytes = body.subarray(sent, Math.min(sent + piece, stopAt, stallAt));
      await new Promise<void>((resolve) => res.write(bytes, () => resolve()));
      if (trickleMs !== undefined) await delay(trickleMs);
      else if (faults.chunkDelayMs > 0) await delay(faults.chunkDelayMs);
    }
    if (stallAt < stopAt) {
      // Silent with the connection open, until the client gives up (bounded, so a client without
      // timeouts fails the test instead of hanging it).
      entry.stalled = true;
      await Promise.race([new Promise((resolve) => res.once('close', resolve)), delay(30_000, undefined, { ref: false })]);
      res.destroy();
      return;
    }
    if (stopAt < body.length) {
      // Half-close once the bytes are flushed: the connection ends before Content-Length, like a
      // dropped download. The pause lets the client drain what arrived; even so a client may lose
      // chunks still queued when the stream errors, so tests read the resume point from disk.
      await delay(20);
      res.socket?.end();
      return;
    }
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', baseUrl);
    const pathname = url.pathname;

    if (requests.length >= maxRequests) {
      record(req, 'api').status = 503;
      sendJson(res, 503, { error: `fake hub request cap (${maxRequests}) reached` });
      return;
    }

    let m: RegExpExecArray | null;
    if ((m = /^\/cdn\/lfs\/([0-9a-f]{64})$/.exec(pathname))) {
      const file = lfsBySha.get(m[1]);
      const entry = record(req, 'transfer', file?.path);
      if (!file) {
        entry.status = 404;
        sendJson(res, 404, { error: 'not found' });
        return;
      }
      await serveContent(req, res, file, entry, {});
      return;
    }

    if (pathname.startsWith('/cdn/xet/') || pathname.includes('/xet-read-token/')) {
      // The downloader must fetch plain bytes, never speak the Xet protocol; reaching here is a bug.
      record(req, 'xet').status = 501;
      sendJson(res, 501, { error: 'xet is not implemented by the fake hub' });
      return;
    }

    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|paths-info)\/(.+)$/.exec(pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(pathname);
    const repoId = api?.[1] ?? resolve?.[1];
    const entry = record(req, 'api', resolve ? decodeURIComponent(resolve[3]) : undefined);
    const fail = (status: number, error: string, code?: string) => {
      entry.status = status;
      sendJson(res, status, { error }, code);
    };

    if (!repoId) return fail(404, 'no such route');
    if (!authorized(req)) return fail(401, 'Invalid credentials in Authorization header');
    if (repoId !== options.repoId) return fail(404, 'Repository not found', 'RepoNotFound');

    if (api) {
      const rev = decodeURIComponent(api[3]);
      if (!knownRevision(rev)) return fail(404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
      if (api[2] === 'revision' && req.method === 'GET') {
        entry.status = 200;
        sendJson(res, 200, {
          _id: 'fake0000000000000000',
          id: options.repoId,
          sha: commit,
          private: false,
          gated: false,
          downloads: 0,
          likes: 0,
          lastModified: '2021-09-13T00:00:00.000Z',
          pipeline_tag: 'image-classification',
        });
        return;
      }
      if (api[2] === 'paths-info' && req.method === 'POST') {
        const { paths } = JSON.parse(await readBody(req)) as { paths: string[] };
        entry.status = 200;
        sendJson(
          res,
          200,
          paths.flatMap((p) => {
            const file = filesByPath.get(p);
            if (!file) return [];
            if (!file.lfs) return [{ type: 'file', path: p, size: file.content.length, oid: gitBlobSha1(file.content) }];
            const pointer = Buffer.from(lfsPointer(file));
            return [
              {
                type: 'file',
                path: p,
                size: file.content.length,
                oid: gitBlobSha1(pointer),
                lfs: { oid: sha256Hex(file.content), size: file.content.length, pointerSize: pointer.length },
              },
            ];
          }),
        );
        return;
      }
      return fail(405, 'method not allowed');
    }

    const rev = decodeURIComponent(resolve![2]);
    const file = filesByPath.get(decodeURIComponent(resolve![3]));
    if (!knownRevision(rev)) return fail(404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
    if (!file) return fail(404, 'Entry not found', 'EntryNotFound');

    if (!file.lfs) {
      await serveContent(req, res, file, entry, { 'X-Repo-Commit': commit });
      return;
    }
    const sha = sha256Hex(file.content);
    const linked = { 'X-Repo-Commit': commit, 'X-Linked-Etag': `"${sha}"`, 'X-Linked-Size': String(file.content.length) };
    if (options.xet && String(req.headers.accept ?? '').includes('application/vnd.xet-fileinfo+json')) {
      const xetHash = createHash('sha256').update('xet').update(file.content).digest('hex');
      entry.kind = 'probe';
      entry.status = 200;
      res.writeHead(200, {
        ...linked,
        'Content-Type': 'application/vnd.xet-fileinfo+json',
        'X-Xet-Hash': xetHash,
        Link: `<${baseUrl}/api/models/${options.repoId}/xet-read-token/${commit}>; rel="xet-auth", <${baseUrl}/cdn/xet/${xetHash}>; rel="xet-reconstruction-info"`,
      });
      res.end(JSON.stringify({ hash: xetHash }));
      return;
    }
    entry.kind = 'redirect';
    entry.status = 302;
    res.writeHead(302, { ...linked, ETag: `"${gitBlobSha1(Buffer.from(lfsPointer(file)))}"`, Location: `${faults.lfsRedirectOrigin ?? baseUrl}/cdn/lfs/${sha}` });
    res.end();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  // Bounded in time as well as requests: a request that stalls cannot keep the test process alive.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    commit,
    requests,
    faults,
    transfers: (file) => requests.filter((r) => r.kind === 'transfer' && r.file === file),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
