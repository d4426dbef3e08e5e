/**
 * The Dataset view's Map tab in real Chromium, wired to the real host side: the built dist/datasetView.js, a
 * DatasetSession over the results of a real scan (tiny model, embeddings stored in a real scan cache), and the
 * worker's real map job (projectDataset: the embeddings loaded from the results file and the cache, PCA then
 * UMAP on a worker thread). Assertions read the canvas's pixels, the DOM, and the messages the view posts.
 *
 * Needs /usr/bin/chromium (or CHROMIUM_PATH); without it the suite is skipped with that reason, except under CI.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BeitModel } from '../../src/core/beitModel';
import { makeThumbnailDataUri } from '../../src/core/image';
import { mapFolders } from '../../src/core/scan/labelCheck';
import { ResultStore } from '../../src/core/scan/resultStore';
import { ResultTable } from '../../src/core/scan/resultTable';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { scanDataset, type ScanResult } from '../../src/core/scan/scanner';
import { DatasetSession, type DatasetSessionDeps } from '../../src/extension/dataset/datasetSession';
import { silentLogger } from '../../src/extension/util/logger';
import { projectDataset } from '../../src/extension/worker/projectJob';
import { parseDatasetViewMessage, type DatasetHostMessage, type MapPointsDto } from '../../src/shared/protocol';
import { convertedTinyModel } from '../helpers/fixtures';
import { serveDatasetView, type TestServer } from '../webview/server';
import { buildDatasetBundle } from '../webview/datasetBundle';

declare const document: any;
declare const window: any;

const ROOT = path.join(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results');
const haveChromium = existsSync(CHROMIUM);
const skipReason = !haveChromium && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)` : false;
const CLASSES = ['tabby', 'river_otters', 'balloon', 'xyz'];
const DATA_FOLDER = '/workspace/data';


/** Lit (non-transparent) pixels of the map canvas: how many, their bounding box, and a hash of their colours. */
async function canvasPixels(page: Page): Promise<{ lit: number; minX: number; maxX: number; colours: number }> {
  return page.evaluate(() => {
    const canvas = document.querySelector('#map-canvas');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0;
    let minX = Infinity;
    let maxX = -Infinity;
    let colours = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) continue;
      lit++;
      const x = (i / 4) % canvas.width;
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      colours = (colours * 31 + data[i] * 7 + data[i + 1] * 13 + data[i + 2]) % 1_000_000_007;
    }
    return { lit, minX, maxX, colours };
  });
}

describe('dataset view Map tab in Chromium', { skip: skipReason }, () => {
  let tmp: string;
  let model: BeitModel;
  let table: ResultTable;
  let cacheFile: string;
  const results: ScanResult[] = [];
  let browser: Browser;
  let server: TestServer;
  let page: Page;
  let session: DatasetSession;
  const errors: string[] = [];
  const hostPosts: DatasetHostMessage[] = [];
  const projectCalls: string[][] = [];

  before(async () => {
    if (!haveChromium) throw new Error(`Chromium is required under CI but is missing at ${CHROMIUM}`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    tmp = mkdtempSync(path.join(tmpdir(), 'beit-lens-map-view-'));
    const data = path.join(tmp, 'data');
    const [bundle] = await Promise.all([buildDatasetBundle(path.join(tmp, 'bundle')), writeSyntheticDataset(data, { classes: CLASSES, perClass: 15, width: 48, height: 36 })]);
    model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu' });
    cacheFile = path.join(tmp, 'cache.log');
    const store = await ResultStore.open(cacheFile);
    const writer = await ResultTable.create(path.join(tmp, 'results.jsonl'));
    await scanDataset({ roots: [data], model, store, topK: 5, batchSize: 8, onResult: (r) => {
        writer.append(r);
        results.push(r);
      },
    });
    await store.close();
    await writer.close();
    assert.ok(results.every((r) => r.embedding), 'the scan stored every embedding');
    table = await ResultTable.open(path.join(tmp, 'results.jsonl'));

    server = await serveDatasetView(bundle);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
    let delivery = Promise.resolve();
    const inference = {
      call: (async (name: string, args: any, options: any = {}) => {
        if (name === 'mapFolders') return mapFolders(args.folders, model.labels, { candidates: 8 }).map((m) => ({ ...m, acceptedLabels: m.accepted.map((k) => model.labels[k]) }));
        if (name === 'thumbnail') return makeThumbnailDataUri(args.file, args.maxSide);
        if (name === 'project') {
          projectCalls.push(args.methods);
          // The worker's own job, as the inference worker runs it (its process plumbing aside).
          return projectDataset(args, { model, preprocess: { fast: false, applyExifOrientation: true }, signal: options.signal ?? new AbortController().signal, progress: options.onProgress ?? (() => undefined) });
        }
        throw new Error(`unexpected call ${name}`);
      }) as DatasetSessionDeps['inference']['call'],
    };
    session = new DatasetSession('Dataset: data', DATA_FOLDER, {
      inference,
      post: (message: DatasetHostMessage) => {
        hostPosts.push(message);
        delivery = delivery.then(() => page.evaluate((m) => window.postMessage(m, '*'), message)).catch(() => undefined);
      },
      openImage: () => undefined,
      copyText: async () => undefined,
      pickExportFile: async () => undefined,
      overrides: { get: () => ({}), set: () => undefined },
      log: silentLogger,
      infoIntervalMs: 0,
      cacheFile,
    });
    await session.setTable(table);
    await page.exposeFunction('__vscodeForward', (message: unknown) => void session.receive(message));
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(() => document.querySelectorAll('#rows .row[data-row]').length > 0);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    session?.dispose();
    await table?.close();
    await model?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const mapsPosted = () => hostPosts.filter((m): m is Extract<DatasetHostMessage, { type: 'mapPoints' }> => m.type === 'mapPoints').map((m) => m.map);
  const umap = (): MapPointsDto => mapsPosted().filter((m) => m.method === 'umap').at(-1)!;

  /** Where point i is on the page, by the view's fit (the map's x/y centre at the stage's centre, y up). */
  async function screenOf(map: MapPointsDto, i: number): Promise<{ x: number; y: number }> {
    const box = (await page.locator('#map-stage').boundingBox())!;
    const xs = map.points.filter((_, k) => k % 2 === 0);
    const ys = map.points.filter((_, k) => k % 2 === 1);
    const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const w = await page.evaluate(() => document.querySelector('#map-stage').clientWidth);
    const h = await page.evaluate(() => document.querySelector('#map-stage').clientHeight);
    const scale = Math.min((w - 32) / (maxX - minX), (h - 32) / (maxY - minY));
    const border = (box.width - w) / 2;
    return { x: box.x + border + w / 2 + (xs[i] - (minX + maxX) / 2) * scale, y: box.y + border + h / 2 - (ys[i] - (minY + maxY) / 2) * scale };
  }

  it('the Map tab shows the PCA view first, then the UMAP map, drawn on a canvas', async () => {
    assert.equal(await page.locator('#tab-map').isVisible(), true, 'the Map tab is offered');
    await page.click('#tab-map');
    await page.waitForFunction(() => document.querySelector('#map-stage').dataset.method === 'umap');
    assert.deepEqual(projectCalls, [['pca', 'umap']]);
    assert.deepEqual(mapsPosted().map((m) => m.method), ['pca', 'umap'], 'PCA answered before UMAP');
    const map = umap();
    assert.equal(map.rows.length, results.length, 'a point per image');
    assert.deepEqual([...map.rows].sort((a, b) => a - b), results.map((_, i) => i));
    assert.ok(hostPosts.some((m) => m.type === 'mapProgress' && m.phase === 'layout'), 'UMAP progress reached the view');
    assert.ok(hostPosts.some((m) => m.type === 'mapEnded' && m.status === 'done'));
    await page.waitForFunction(() => /UMAP/.test(document.querySelector('#map-status').textContent));
    assert.equal(await page.locator('#map-cancel').isVisible(), false, 'no Cancel once done');
    // Never one DOM node per point: the stage holds the canvas and the hover card only.
    assert.equal(await page.evaluate(() => document.querySelector('#map-stage').querySelectorAll('*').length), 4);
    const pixels = await canvasPixels(page);
    assert.ok(pixels.lit >= results.length * 4, `${pixels.lit} lit pixels for ${results.length} points`);
    // Coloured by folder by default: the legend lists the four class folders with their counts.
    assert.equal(await page.locator('#map-colour').inputValue(), 'folder');
    const legend = await page.locator('#map-legend li').allTextContents();
    assert.deepEqual(legend.map((t) => t.replace(/\d+$/, '')).sort(), [...CLASSES].sort());
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dataset-map.png') });
  });

  it('colouring by top-1 label recolours the points', async () => {
    const before = await canvasPixels(page);
    await page.selectOption('#map-colour', 'label');
    await page.waitForFunction(() => document.querySelector('#map-legend h3').textContent === 'Top-1 label');
    await page.waitForTimeout(50);
    const after = await canvasPixels(page);
    assert.notEqual(after.colours, before.colours);
    await page.selectOption('#map-colour', 'folder');
  });

  it('hovering a point shows its thumbnail and path', async () => {
    const map = umap();
    const i = 0;
    const at = await screenOf(map, i);
    await page.mouse.move(at.x, at.y);
    await page.waitForFunction(() => !document.querySelector('#map-hover').hidden && document.querySelector('#map-hover img').src.startsWith('data:image/'));
    const shown = await page.locator('#map-hover').getAttribute('data-row');
    // The hover picks the nearest point; another point may lie on the same pixel.
    const hoveredIndex = map.rows.indexOf(Number(shown));
    const p = await screenOf(map, hoveredIndex);
    assert.ok(Math.hypot(p.x - at.x, p.y - at.y) <= 6, 'the hovered point is under the pointer');
    const image = results[map.rows[hoveredIndex]].image;
    assert.equal(await page.locator('.map-hover-path').textContent(), map.paths[hoveredIndex]);
    assert.ok(image.endsWith(map.paths[hoveredIndex]), `${map.paths[hoveredIndex]} is the path of ${image} within the folder`);
    await page.mouse.move(1, 1);
  });

  it('a box selection sends the rows inside it; the table shows only them with a chip that clears it', async () => {
    const map = umap();
    const box = (await page.locator('#map-canvas').boundingBox())!;
    await page.click('#map-tool-box');
    // The left half of the map: the points left of the map's centre (the fit centres it in the stage).
    const xs = map.points.filter((_, k) => k % 2 === 0);
    const centre = (Math.min(...xs) + Math.max(...xs)) / 2;
    const expected = map.rows.filter((_, i) => xs[i] < centre).sort((a, b) => a - b);
    await page.mouse.move(box.x + 2, box.y + 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 4, box.y + box.height / 2, { steps: 4 });
    await page.mouse.move(box.x + box.width / 2, box.y + box.height - 2, { steps: 4 });
    await page.mouse.up();
    const sent = (await page.evaluate(() => window.__vscode.posted)).filter((m: any) => m.type === 'mapSelection').at(-1);
    assert.ok(sent, 'a mapSelection was posted');
    assert.deepEqual([...sent.rows].sort((a: number, b: number) => a - b), expected);
    await page.waitForFunction((n: number) => document.querySelector('#map-selection-chip').textContent === `Map selection (${n}) ×`, expected.length);
    await page.click('#tab-table');
    assert.equal(await page.locator('#map-selection-chip').isVisible(), true);
    await page.waitForFunction((n: number) => document.querySelector('#result-count').textContent.replace(/[^\d]/g, '') === String(n), expected.length);
    const shownRows = await page.evaluate(() => [...document.querySelectorAll('#rows .row[data-row]')].map((r: any) => Number(r.dataset.row)));
    assert.ok(shownRows.length > 0 && shownRows.every((r: number) => expected.includes(r)), 'the table shows only selected rows');
    await page.click('#map-selection-chip');
    await page.waitForFunction((n: number) => document.querySelector('#result-count').textContent.replace(/[^\d]/g, '') === String(n), results.length);
    assert.equal(await page.locator('#map-selection-chip').isVisible(), false);
  });

  it('a lasso selection sends the rows inside the drawn path', async () => {
    await page.click('#tab-map');
    const map = umap();
    const box = (await page.locator('#map-canvas').boundingBox())!;
    await page.click('#map-tool-lasso');
    // A triangle covering the top-right half of the canvas (above its diagonal).
    const corners: Array<[number, number]> = [
      [box.x + 1, box.y + 1],
      [box.x + box.width - 1, box.y + 1],
      [box.x + box.width - 1, box.y + box.height - 1],
    ];
    await page.mouse.move(...corners[0]);
    await page.mouse.down();
    for (const c of corners.slice(1)) await page.mouse.move(...c, { steps: 6 });
    await page.mouse.up();
    const sent = (await page.evaluate(() => window.__vscode.posted)).filter((m: any) => m.type === 'mapSelection').at(-1);
    const expected: number[] = [];
    for (let i = 0; i < map.rows.length; i++) {
      const p = await screenOf(map, i);
      // Above the diagonal from the top-left to the bottom-right corner, with a pixel's tolerance left out.
      const side = (p.x - corners[0][0]) * (corners[2][1] - corners[0][1]) - (p.y - corners[0][1]) * (corners[2][0] - corners[0][0]);
      if (side > box.width) expected.push(map.rows[i]);
      else if (side > -box.width) expected.push(-1 - map.rows[i]);
    }
    const sure = expected.filter((r) => r >= 0);
    const borderline = expected.filter((r) => r < 0).map((r) => -1 - r);
    const got = new Set<number>(sent.rows);
    for (const r of sure) assert.ok(got.has(r), `row ${r} is inside the lasso`);
    for (const r of got) assert.ok(sure.includes(r) || borderline.includes(r), `row ${r} is outside the lasso`);
    await page.waitForFunction((n: number) => document.querySelector('#map-selection').textContent.startsWith(`${n} selected`), got.size);
    await page.click('#map-clear-selection');
    await page.waitForFunction(() => document.querySelector('#map-selection-chip').hidden && document.querySelector('#map-clear-selection').hidden);
  });

  it('the wheel zooms about the pointer and dragging pans', async () => {
    const map = umap();
    await page.click('#map-tool-pan');
    await page.click('#map-reset');
    await page.waitForTimeout(50);
    const before = await canvasPixels(page);
    const box = (await page.locator('#map-canvas').boundingBox())!;
    const centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    // The point nearest the centre stays in view when zooming about the centre.
    const positions = await Promise.all(map.rows.map((_, i) => screenOf(map, i)));
    const i = positions.reduce((best, p, k) => (Math.hypot(p.x - centre.x, p.y - centre.y) < Math.hypot(positions[best].x - centre.x, positions[best].y - centre.y) ? k : best), 0);
    /** Hovers where point i should be and checks the view's hover card names a point there. */
    const hoverExpect = async (at: { x: number; y: number }) => {
      await page.mouse.move(at.x, at.y);
      await page.waitForFunction(() => !document.querySelector('#map-hover').hidden);
      const row = Number(await page.locator('#map-hover').getAttribute('data-row'));
      assert.ok(row === map.rows[i] || Math.hypot(positions[map.rows.indexOf(row)].x - positions[i].x, positions[map.rows.indexOf(row)].y - positions[i].y) < 6 / factor, `hovered row ${row}, expected ${map.rows[i]}`);
    };
    const factor = Math.exp(400 * 0.0015);
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.wheel(0, -400);
    await page.waitForTimeout(100);
    const zoomed = await canvasPixels(page);
    assert.notEqual(zoomed.colours, before.colours, 'the picture changed');
    assert.ok(zoomed.lit < before.lit, `zoomed in, some points leave the view: ${before.lit} -> ${zoomed.lit} lit pixels`);
    const afterZoom = { x: centre.x + (positions[i].x - centre.x) * factor, y: centre.y + (positions[i].y - centre.y) * factor };
    await hoverExpect(afterZoom);
    // Drag from an empty corner 150 px to the right: every point moves with it.
    await page.mouse.move(box.x + 5, box.y + 5);
    await page.mouse.down();
    await page.mouse.move(box.x + 155, box.y + 5, { steps: 5 });
    await page.mouse.up();
    await page.waitForTimeout(100);
    await hoverExpect({ x: afterZoom.x + 150, y: afterZoom.y });
    await page.mouse.move(1, 1);
    await page.click('#map-reset');
  });

  it('Cancel stops the UMAP and keeps the points shown', async () => {
    await page.click('#map-recompute');
    await page.click('#map-cancel');
    const requestId = (await page.evaluate(() => window.__vscode.posted)).filter((m: any) => m.type === 'map').at(-1).requestId;
    await page.waitForFunction(() => document.querySelector('#map-cancel').hidden);
    const ended = hostPosts.filter((m) => m.type === 'mapEnded' && m.requestId === requestId);
    assert.deepEqual(ended.map((m) => m.type === 'mapEnded' && m.status), ['cancelled']);
    assert.match((await page.locator('#map-status').textContent())!, /cancelled/i);
    assert.ok((await canvasPixels(page)).lit > 0, 'the last map stays on screen');
  });

  it('a new request supersedes the old one, and every message the view posted passes the schema', async () => {
    await page.click('#map-recompute');
    await page.click('#map-recompute');
    await page.waitForFunction(() => document.querySelector('#map-cancel').hidden && /UMAP/.test(document.querySelector('#map-status').textContent));
    const ended = hostPosts.filter((m) => m.type === 'mapEnded');
    const requests = (await page.evaluate(() => window.__vscode.posted)).filter((m: any) => m.type === 'map').map((m: any) => m.requestId);
    const lastRequest = requests.at(-1);
    assert.ok(ended.some((m) => m.type === 'mapEnded' && m.requestId === lastRequest && m.status === 'done'));
    // The superseded request is never reported as done after the new one started.
    const staleDone = hostPosts.filter((m) => (m.type === 'mapPoints' || m.type === 'mapEnded') && m.requestId === requests.at(-2));
    assert.ok(staleDone.every((m) => m.type !== 'mapEnded' || m.status !== 'done'), 'the old request did not finish as done');
    const record = await page.evaluate(() => window.__vscode);
    assert.deepEqual(errors, [], `page errors: ${errors.join('; ')}`);
    assert.deepEqual(record.cspViolations, [], 'CSP violations');
    for (const message of record.posted) {
      const parsed = parseDatasetViewMessage(message);
      assert.ok(parsed.ok, `posted message fails the schema: ${JSON.stringify(message).slice(0, 200)}`);
    }
  });
});
