/**
 * The dataset view's Gallery mode in real Chromium (Debian's, driven by playwright-core): the built
 * dist/datasetView.js on a page with the view's CSP, its messages going to a real DatasetSession over a real
 * 10,000-row results file. The rows' files are hard links to a dozen real PNGs, so every thumbnail is made by
 * sharp from a file at the row's own path. Assertions read the DOM, the messages the view posts and stores,
 * and the thumbnail calls the session made.
 *
 * Needs /usr/bin/chromium (or CHROMIUM_PATH); without it the suite is skipped with that reason, except
 * under CI, where a missing browser is a failure.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { link, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { makeThumbnailDataUri } from '../../src/core/image';
import { comparePaths, ResultTable } from '../../src/core/scan/resultTable';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import type { ScanResult } from '../../src/core/scan/scanner';
import { DatasetSession, type DatasetSessionDeps } from '../../src/extension/dataset/datasetSession';
import { silentLogger } from '../../src/extension/util/logger';
import { parseDatasetViewMessage, type DatasetHostMessage } from '../../src/shared/protocol';
import { CAPTION_HEIGHT, GALLERY_GAP } from '../../src/webview/dataset/gridLayout';
import { buildDatasetBundle } from '../webview/datasetBundle';
import { serveDatasetView, type TestServer } from '../webview/server';

// Page-side callbacks run in Chromium; the root tsconfig has no DOM lib, so they see the page untyped.
declare const document: any;
declare const window: any;

const ROOT = path.join(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results');
const haveChromium = existsSync(CHROMIUM);
const skipReason = !haveChromium && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)` : false;
const ROWS = 10_000;
const CLASSES = ['tabby', 'balloon', 'harp_seal', 'river_otter'];
/** Every 250th row is a file that could not be decoded. */
const isErrorRow = (i: number) => i % 250 === 7;

type Posted = { type: string; [key: string]: any };

describe('dataset view gallery in Chromium', { skip: skipReason }, () => {
  let tmp: string;
  let table: ResultTable;
  /** Row id = index. */
  const results: ScanResult[] = [];
  let byPath: ScanResult[];
  const rowOf = (r: ScanResult) => results.indexOf(r);
  let browser: Browser;
  let context: BrowserContext;
  let server: TestServer;

  before(async () => {
    if (!haveChromium) throw new Error(`Chromium is required under CI but is missing at ${CHROMIUM}: apt-get install -y chromium`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    tmp = mkdtempSync(path.join(tmpdir(), 'beit-lens-gallery-'));
    const [bundle, sources] = await Promise.all([
      buildDatasetBundle(path.join(tmp, 'bundle')),
      writeSyntheticDataset(path.join(tmp, 'sources'), { classes: ['s'], perClass: 12, width: 64, height: 48 }),
    ]);
    const writer = await ResultTable.create(path.join(tmp, 'results.jsonl'));
    for (const c of CLASSES) await mkdir(path.join(tmp, 'data', c), { recursive: true });
    // Written out of path order, as a scan's batches finish.
    for (let k = 0; k < ROWS; k++) {
      const i = (k * 7919) % ROWS;
      const folderLabel = CLASSES[i % CLASSES.length];
      const image = path.join(tmp, 'data', folderLabel, `img_${String(i).padStart(5, '0')}.png`);
      const result: ScanResult = isErrorRow(i)
        ? { image, folder: folderLabel, folderLabel, error: `${image}: not a recognised image`, errorCode: 'IMAGE_UNSUPPORTED', source: 'file', seq: k, root: 0, rootName: tmp }
        : { image, folder: folderLabel, folderLabel, top: [{ index: i % 7, label: `label ${i % 7}`, score: 0.3 + (i % 70) / 100 }], source: 'model', seq: k, root: 0, rootName: tmp };
      if (!isErrorRow(i)) await link(sources[i % sources.length], image);
      writer.append(result);
      results.push(result);
    }
    await writer.close();
    table = await ResultTable.open(path.join(tmp, 'results.jsonl'));
    byPath = [...results].sort((a, b) => comparePaths(a.image, b.image));

    server = await serveDatasetView(bundle);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await table?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  interface View {
    page: Page;
    session: DatasetSession;
    errors: string[];
    opened: string[];
    /** Every thumbnail the session asked the worker for. */
    thumbnailCalls: Array<{ file: string; maxSide: number }>;
  }

  async function openView(options: { state?: unknown } = {}): Promise<View> {
    const page = await context.newPage();
    if (options.state !== undefined) await page.addInitScript((state: unknown) => (window.__vscodeInitialState = state), options.state);
    const view: View = { page, session: undefined as unknown as DatasetSession, errors: [], opened: [], thumbnailCalls: [] };
    page.on('pageerror', (err) => view.errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && view.errors.push(msg.text()));
    let delivery = Promise.resolve();
    const inference = {
      call: (async (name: string, args: any) => {
        if (name === 'thumbnail') {
          view.thumbnailCalls.push({ file: args.file, maxSide: args.maxSide });
          return makeThumbnailDataUri(args.file, args.maxSide);
        }
        if (name === 'mapFolders') return [];
        throw new Error(`unexpected call ${name}`);
      }) as DatasetSessionDeps['inference']['call'],
    };
    view.session = new DatasetSession('Dataset: data', '/workspace/data', {
      inference,
      post: (message: DatasetHostMessage) => {
        delivery = delivery.then(() => page.evaluate((m) => window.postMessage(m, '*'), message)).catch(() => undefined);
      },
      openImage: (file) => view.opened.push(file),
      copyText: async () => undefined,
      pickExportFile: async () => undefined,
      overrides: { get: () => ({}), set: () => undefined },
      log: silentLogger,
      infoIntervalMs: 0,
    });
    await view.session.setTable(table);
    await page.exposeFunction('__vscodeForward', (message: unknown) => void view.session.receive(message));
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(() => document.querySelectorAll('#rows .row[data-row], #gallery-cells .g-cell[data-row]').length > 0);
    return view;
  }

  async function posted(page: Page, type: string): Promise<Posted[]> {
    return (await page.evaluate(() => window.__vscode.posted)).filter((m: Posted) => m.type === type);
  }

  async function lastState(page: Page): Promise<any> {
    return (await page.evaluate(() => window.__vscode.states)).at(-1);
  }

  /** Cells in the DOM: row id, position, caption, box, whether they show a picture and an error badge. */
  async function cells(page: Page): Promise<Array<{ row: number; position: number; label: string; score: string; left: number; top: number; width: number; img: string | null; error: boolean; selected: boolean; active: boolean }>> {
    return page.evaluate(() =>
      [...document.querySelectorAll('#gallery-cells .g-cell[data-row]')].map((c: any) => ({
        row: Number(c.dataset.row),
        position: Number(c.dataset.position),
        label: c.querySelector('.g-label').textContent,
        score: c.querySelector('.g-score')?.textContent ?? '',
        left: c.offsetLeft,
        top: c.offsetTop,
        width: c.offsetWidth,
        img: c.querySelector('.g-thumb img')?.getAttribute('src') ?? null,
        error: !!c.querySelector('.g-badge.g-error'),
        selected: c.getAttribute('aria-selected') === 'true',
        active: c.classList.contains('active'),
      })),
    );
  }

  /** Every cell on screen that is not an error shows a picture. */
  async function picturesShown(page: Page): Promise<void> {
    await page.waitForFunction(() => {
      const viewport = document.querySelector('#gallery-viewport').getBoundingClientRect();
      const onScreen = [...document.querySelectorAll('#gallery-cells .g-cell[data-row]:not(.error)')].filter((c: any) => {
        const box = c.getBoundingClientRect();
        return box.bottom > viewport.top && box.top < viewport.bottom;
      });
      return onScreen.length > 0 && onScreen.every((c: any) => c.querySelector('.g-thumb img[src^="data:image/"]'));
    });
  }

  async function finish(view: View): Promise<void> {
    const record = await view.page.evaluate(() => window.__vscode);
    await view.page.close();
    view.session.dispose();
    assert.deepEqual(view.errors, [], `page errors: ${view.errors.join('; ')}`);
    assert.deepEqual(record.cspViolations, [], 'CSP violations');
    for (const message of record.posted) {
      const parsed = parseDatasetViewMessage(message);
      assert.ok(parsed.ok, `posted message fails the schema: ${JSON.stringify(message).slice(0, 200)} (${parsed.ok ? '' : parsed.error})`);
    }
  }

  it('shows the table query as a grid with only the cells on screen, and thumbnails for those cells only', async () => {
    const view = await openView();
    const { page } = view;
    await page.locator('#layout-gallery').click();
    assert.equal(await page.locator('#table').isVisible(), false);
    assert.equal(await page.locator('#gallery').isVisible(), true);
    assert.equal(await page.locator('#thumbnail-size').isVisible(), false, "the table's size select gives way to the slider");
    assert.equal(await page.locator('#gallery-size').inputValue(), '128');
    await page.waitForFunction(() => document.querySelectorAll('#gallery-cells .g-cell[data-row]').length > 0 && !document.querySelector('#gallery-cells .g-cell.loading'));
    const { width, height } = await page.locator('#gallery-viewport').evaluate((v: any) => ({ width: v.clientWidth, height: v.clientHeight }));
    const columns = Math.floor((width - GALLERY_GAP) / (128 + GALLERY_GAP));
    const pitch = 128 + CAPTION_HEIGHT + GALLERY_GAP;
    const shown = await cells(page);
    assert.ok(shown.length <= (Math.ceil(height / pitch) + 2) * columns, `${shown.length} cells in the DOM for ${columns} columns of a ${height}px viewport`);
    assert.ok(shown.length < 100, `${shown.length} cells for ${ROWS} rows`);
    assert.equal(await page.locator('#gallery-viewport').getAttribute('aria-setsize'), String(ROWS));
    assert.equal(await page.locator('#gallery-spacer').evaluate((s: any) => s.offsetHeight), Math.ceil(ROWS / columns) * pitch + GALLERY_GAP, 'the scroll height covers every row of the grid');
    // Path order, row after row, like the table.
    assert.deepEqual(shown.map((c) => c.row), byPath.slice(0, shown.length).map(rowOf));
    assert.deepEqual(shown.slice(0, columns + 1).map((c) => [c.left, c.top, c.width]), [...Array(columns + 1).keys()].map((p) => [GALLERY_GAP + (p % columns) * (128 + GALLERY_GAP), GALLERY_GAP + Math.floor(p / columns) * pitch, 128]));
    const first = byPath[0];
    assert.equal(shown[0].label, first.top![0].label);
    assert.equal(shown[0].score, `${(first.top![0].score * 100).toFixed(1)}%`);

    // Thumbnails at the side a 128 px cell needs, for the cells on screen only, made from those rows' files.
    await picturesShown(page);
    const asked = (await posted(page, 'thumbnails')).at(-1)!;
    assert.equal(asked.side, 192);
    const inDom = new Set(shown.map((c) => c.row));
    assert.ok(asked.rows.every((r: number) => inDom.has(r)), 'thumbnails asked only for cells in the DOM');
    // (The table, shown first, asked for its own rows at the default side.)
    const made = view.thumbnailCalls.filter((c) => c.maxSide === 192);
    assert.ok(made.length > 0 && made.length <= shown.length, `${made.length} gallery thumbnails made for ${shown.length} cells`);
    assert.ok(made.every((c) => shown.some((s) => results[s.row].image === c.file)), 'made from the files of cells in the DOM');
    const errorImages = new Set(results.filter((r) => r.error !== undefined).map((r) => r.image));
    assert.ok(!view.thumbnailCalls.some((c) => errorImages.has(c.file)), 'no thumbnail for an error row');
    assert.ok(view.thumbnailCalls.every((c) => c.maxSide === 192 || c.maxSide === 96));
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dataset-gallery.png') });

    // Far down: only cells near there exist; the pages and thumbnails asked for are theirs.
    const target = 6000;
    await page.locator('#gallery-viewport').evaluate((v: any, y: number) => (v.scrollTop = y), Math.floor(target / columns) * pitch);
    await page.waitForFunction((p: number) => document.querySelector(`#gallery-cells .g-cell[data-position="${p}"][data-row]`), target);
    const far = await cells(page);
    assert.ok(far.every((c) => c.position >= target - 2 * columns && c.position <= target + 40 * columns), far.map((c) => c.position).join(','));
    assert.ok(far.length < 100);
    assert.ok((await posted(page, 'query')).some((m) => m.offset === 6000), 'the page of row 6000 was fetched');
    assert.equal(far.find((c) => c.position === target)!.row, rowOf(byPath[target]));
    await picturesShown(page);
    const later = (await posted(page, 'thumbnails')).at(-1)!;
    const farRows = new Set((await cells(page)).map((c) => c.row));
    assert.ok(later.rows.every((r: number) => farRows.has(r)), 'the latest request names only the cells now on screen');
    // The error rows there have a badge and no picture.
    const errorCells = far.filter((c) => results[c.row].error !== undefined);
    assert.ok(errorCells.every((c) => c.error && c.img === null), 'error rows have a badge and no picture');
    await finish(view);
  });

  it('resizes with the slider, asks for larger thumbnails, and keeps the size and layout in the state', async () => {
    const view = await openView({ state: { folder: '/workspace/data', layout: 'gallery', gallerySize: 64 } });
    const { page } = view;
    assert.equal(await page.locator('#gallery').isVisible(), true, 'the stored layout is restored');
    assert.equal(await page.locator('#gallery-size').inputValue(), '64');
    await page.waitForFunction((left: number) => document.querySelector('#gallery-cells .g-cell[data-position="1"][data-row]')?.offsetLeft === left, GALLERY_GAP + 64 + GALLERY_GAP);
    await picturesShown(page);
    assert.equal((await posted(page, 'thumbnails')).at(-1)!.side, 96);
    const small = (await cells(page)).length;

    await page.locator('#gallery-size').fill('256');
    // Laid out again: the second cell sits one 256 px cell and a gap to the right of the first.
    await page.waitForFunction((left: number) => document.querySelector('#gallery-cells .g-cell[data-position="1"][data-row]')?.offsetLeft === left, GALLERY_GAP + 256 + GALLERY_GAP);
    const big = await cells(page);
    assert.ok(big.length < small, `${big.length} cells at 256 px, ${small} at 64 px`);
    assert.equal(big[0].width, 256);
    // (Read in one go: arriving thumbnails re-render the cells, so a located element may be gone a moment later.)
    assert.equal(await page.evaluate(() => document.querySelector('#gallery-cells .g-cell[data-row] .g-thumb').offsetHeight), 256);
    await page.waitForFunction(() => (window.__vscode.posted as Posted[]).some((m) => m.type === 'thumbnails' && m.side === 320));
    const state = await lastState(page);
    assert.equal(state.gallerySize, 256);
    assert.equal(state.layout, 'gallery');
    // The larger pictures replace the small ones (the session made them at 320 px from the same files).
    await waitFor(() => view.thumbnailCalls.some((c) => c.maxSide === 320));
    const shownRows = new Set((await cells(page)).map((c) => results[c.row].image));
    assert.ok(view.thumbnailCalls.filter((c) => c.maxSide === 320).every((c) => shownRows.has(c.file)), '320 px thumbnails only for the cells shown');

    // Back to the table: the table's own size select, and the layout remembered.
    await page.locator('#layout-table').click();
    assert.equal(await page.locator('#table').isVisible(), true);
    assert.equal(await page.locator('#gallery').isVisible(), false);
    assert.equal((await lastState(page)).layout, 'table');
    assert.equal((await lastState(page)).gallerySize, 256);
    await finish(view);
  });

  it('selects with click, Shift and Ctrl as the table does, opens on double-click and Enter, and moves with the keys', async () => {
    const view = await openView({ state: { folder: '/workspace/data', layout: 'gallery', gallerySize: 128 } });
    const { page } = view;
    await page.waitForFunction(() => document.querySelectorAll('#gallery-cells .g-cell[data-row]').length > 8 && !document.querySelector('#gallery-cells .g-cell.loading'));
    const cell = (p: number) => page.locator(`#gallery-cells .g-cell[data-position="${p}"]`);
    const selectedRows = async () => (await cells(page)).filter((c) => c.selected).map((c) => c.position);

    await cell(1).click();
    assert.deepEqual(await selectedRows(), [1]);
    assert.deepEqual(view.opened, [], 'a click selects; it does not open');
    await cell(4).click({ modifiers: ['Shift'] });
    assert.deepEqual(await selectedRows(), [1, 2, 3, 4]);
    await cell(2).click({ modifiers: ['Control'] });
    assert.deepEqual(await selectedRows(), [1, 3, 4]);
    assert.equal(await page.locator('#selection-count').textContent(), '3 selected');
    assert.equal(await page.locator('#copy-paths').isEnabled(), true);

    await cell(3).dblclick();
    await waitFor(() => view.opened.length === 1);
    assert.deepEqual(view.opened, [byPath[3].image]);
    assert.deepEqual(await selectedRows(), [3], "a double-click's first click is a plain one: it makes the cell the selection");

    // Keys: right and down (a row of the grid), Enter opens, Space toggles.
    const columns = await page.evaluate(() => {
      const all = [...document.querySelectorAll('#gallery-cells .g-cell[data-row]')] as any[];
      return all.filter((c) => c.offsetTop === all[0].offsetTop).length;
    });
    await page.locator('#gallery-viewport').focus();
    await page.keyboard.press('ArrowRight');
    assert.equal((await cells(page)).find((c) => c.active)!.position, 4);
    await page.keyboard.press('ArrowDown');
    assert.equal((await cells(page)).find((c) => c.active)!.position, 4 + columns);
    await page.keyboard.press('Space');
    assert.ok((await selectedRows()).includes(4 + columns));
    await page.keyboard.press('Enter');
    await waitFor(() => view.opened.length === 2);
    assert.equal(view.opened[1], byPath[4 + columns].image);
    await page.keyboard.press('End');
    await page.waitForFunction((last: number) => document.querySelector(`#gallery-cells .g-cell.active[data-position="${last}"]`), ROWS - 1);
    assert.ok((await posted(page, 'query')).some((m) => m.offset === Math.floor((ROWS - 1) / 100) * 100), 'End fetched the last page');

    // The selection is the table's: switching layouts keeps it.
    await page.locator('#layout-table').click();
    assert.equal(await page.locator('#selection-count').textContent(), '2 selected');
    await finish(view);
  });

  it("follows the table's filters and sort, and sorts from its own menu", async () => {
    const view = await openView({ state: { folder: '/workspace/data', layout: 'table' } });
    const { page } = view;
    await page.locator('.th[data-sort="score"]').click();
    await page.selectOption('#filter-folder', { label: `balloon (${results.filter((r) => r.folderLabel === 'balloon').length.toLocaleString('en-US')})` });
    await page.locator('#layout-gallery').click();
    const expected = results.filter((r) => r.folderLabel === 'balloon');
    await page.waitForFunction((n: number) => document.querySelector('#gallery-viewport').getAttribute('aria-setsize') === String(n) && document.querySelectorAll('#gallery-cells .g-cell[data-row]').length > 0 && !document.querySelector('#gallery-cells .g-cell.loading'), expected.length);
    const shown = await cells(page);
    assert.ok(shown.every((c) => results[c.row].folderLabel === 'balloon'));
    const scores = shown.map((c) => results[c.row].top?.[0].score ?? -1);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a), 'highest score first, as the table was sorted');
    assert.equal(await page.locator('#gallery-sort').inputValue(), 'score-desc', "the gallery's sort menu shows the table's order");

    // The gallery's own sort menu (it has no column headers) sets the same query's sort.
    await page.selectOption('#gallery-sort', 'label');
    assert.deepEqual((await posted(page, 'query')).at(-1)!.query.sort, { key: 'label', descending: false });
    await page.waitForFunction(() => document.querySelectorAll('#gallery-cells .g-cell[data-row]').length > 0 && !document.querySelector('#gallery-cells .g-cell.loading') && document.querySelector('#gallery-cells .g-cell[data-position="0"] .g-label')?.textContent === 'label 0');
    const labels = (await cells(page)).map((c) => c.label);
    assert.deepEqual(labels, [...labels].sort(), 'top-1 label order');
    await page.locator('#layout-table').click();
    assert.equal(await page.locator('.th[data-sort="label"]').getAttribute('aria-sort'), 'ascending', 'the table shows the order chosen in the gallery');
    await page.locator('#layout-gallery').click();

    // Errors only: every cell carries the error badge and its code.
    await page.locator('#mode-errors').click();
    await page.waitForFunction(() => document.querySelectorAll('#gallery-cells .g-cell[data-row]').length > 0 && !document.querySelector('#gallery-cells .g-cell.loading'));
    const errors = await cells(page);
    assert.ok(errors.length > 0 && errors.every((c) => c.error && c.label === 'IMAGE_UNSUPPORTED' && c.img === null));
    await finish(view);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
