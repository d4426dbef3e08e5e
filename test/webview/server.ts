/**
 * Serves the test page over http on 127.0.0.1 (a file:// page has an opaque origin, under which
 * CSP 'self' and the canvas origin checks behave unlike a webview's). Only the files the page
 * needs are served; the CSP mirrors the one the extension sets on the real panel.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export const TEST_NONCE = 'beit-lens-test-nonce';
const ROOT = path.join(__dirname, '..', '..');

function pageFiles(bundle: string): Record<string, { file: string; type: string }> {
  return {
    '/': { file: path.join(ROOT, 'test/webview/index.html'), type: 'text/html; charset=utf-8' },
    '/test/webview/vscodeStub.js': { file: path.join(ROOT, 'test/webview/vscodeStub.js'), type: 'text/javascript' },
    '/test/webview/theme.css': { file: path.join(ROOT, 'test/webview/theme.css'), type: 'text/css' },
    '/media/webview.css': { file: path.join(ROOT, 'media/webview.css'), type: 'text/css' },
    '/dist/webview.js': { file: bundle, type: 'text/javascript' },
  };
}

export interface TestServer {
  origin: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<TestServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The panel page, with `bundle` served as /dist/webview.js. `imageOrigins` are the other origins
 * the CSP lets images come from.
 */
export function servePanel(bundle: string, imageOrigins: string[] = []): Promise<TestServer> {
  const files = pageFiles(bundle);
  const csp = [`default-src 'none'`, `img-src 'self' data: ${imageOrigins.join(' ')}`, `style-src 'self'`, `script-src 'nonce-${TEST_NONCE}'`].join('; ');
  return listen(
    createServer((req, res) => {
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      // Chromium asks for a favicon on its own; a 404 would show up as a console error.
      if (pathname === '/favicon.ico') {
        res.writeHead(204).end();
        return;
      }
      const entry = files[pathname];
      if (!entry) {
        res.writeHead(404).end();
        return;
      }
      readFile(entry.file).then(
        (body) => res.writeHead(200, { 'content-type': entry.type, 'content-security-policy': csp, 'cache-control': 'no-store' }).end(body),
        () => res.writeHead(500).end(),
      );
    }),
  );
}

/**
 * The dataset view's page, with `bundle` served as /dist/datasetView.js; thumbnails are data URIs, so no
 * other origin is allowed.
 */
export function serveDatasetView(bundle: string): Promise<TestServer> {
  const files: Record<string, { file: string; type: string }> = {
    '/': { file: path.join(ROOT, 'test/webview/dataset.html'), type: 'text/html; charset=utf-8' },
    '/test/webview/vscodeStub.js': { file: path.join(ROOT, 'test/webview/vscodeStub.js'), type: 'text/javascript' },
    '/test/webview/theme.css': { file: path.join(ROOT, 'test/webview/theme.css'), type: 'text/css' },
    '/media/dataset.css': { file: path.join(ROOT, 'media/dataset.css'), type: 'text/css' },
    '/dist/datasetView.js': { file: bundle, type: 'text/javascript' },
  };
  const csp = [`default-src 'none'`, `img-src 'self' data:`, `style-src 'self'`, `script-src 'nonce-${TEST_NONCE}'`].join('; ');
  return listen(
    createServer((req, res) => {
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      if (pathname === '/favicon.ico') {
        res.writeHead(204).end();
        return;
      }
      const entry = files[pathname];
      if (!entry) {
        res.writeHead(404).end();
        return;
      }
      readFile(entry.file).then(
        (body) => res.writeHead(200, { 'content-type': entry.type, 'content-security-policy': csp, 'cache-control': 'no-store' }).end(body),
        () => res.writeHead(500).end(),
      );
    }),
  );
}

/**
 * An image on another origin that allows CORS, as VS Code's resource service worker answers
 * webview resource requests; the panel must ask for it with CORS to keep its export untainted.
 */
export function serveImage(bytes: Buffer, type: string): Promise<TestServer> {
  return listen(createServer((_req, res) => res.writeHead(200, { 'content-type': type, 'access-control-allow-origin': '*' }).end(bytes)));
}

/** The Model view's page, with `bundle` served as /dist/modelView.js; it shows only text, so no image origin at all. */
export function serveModelView(bundle: string): Promise<TestServer> {
  const files: Record<string, { file: string; type: string }> = {
    '/': { file: path.join(ROOT, 'test/webview/model.html'), type: 'text/html; charset=utf-8' },
    '/test/webview/vscodeStub.js': { file: path.join(ROOT, 'test/webview/vscodeStub.js'), type: 'text/javascript' },
    '/test/webview/theme.css': { file: path.join(ROOT, 'test/webview/theme.css'), type: 'text/css' },
    '/media/model.css': { file: path.join(ROOT, 'media/model.css'), type: 'text/css' },
    '/dist/modelView.js': { file: bundle, type: 'text/javascript' },
  };
  const csp = [`default-src 'none'`, `style-src 'self'`, `script-src 'nonce-${TEST_NONCE}'`].join('; ');
  return listen(
    createServer((req, res) => {
      const entry = files[new URL(req.url ?? '/', 'http://x').pathname];
      if (!entry) {
        res.writeHead(new URL(req.url ?? '/', 'http://x').pathname === '/favicon.ico' ? 204 : 404).end();
        return;
      }
      readFile(entry.file).then(
        (body) => res.writeHead(200, { 'content-type': entry.type, 'content-security-policy': csp, 'cache-control': 'no-store' }).end(body),
        () => res.writeHead(500).end(),
      );
    }),
  );
}
