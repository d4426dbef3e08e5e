/**
 * The dataset view's webview bundle in real Chromium (Debian's, driven by playwright-core), wired to the
 * real host side: the built dist/datasetView.js on a page with the view's CSP and a stub acquireVsCodeApi,
 * whose messages go to a DatasetSession over a results table from a real scan (tiny model) of 200+
 * generated images with class folders, misfiled and corrupt files. Assertions read the DOM, the messages
 * the view posts, and what the session did with them.
 *
 * Needs /usr/bin/chromium (or CHROMIUM_PATH); without it the suite is skipped with that reason, except
 * under CI, where a missing browser is a failure.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { BeitModel } from '../../src/core/beitModel';
import { makeThumbnailDataUri } from '../../src/core/image';
import { LabelChecker, mapFolders, type LabelOverrides } from '../../src/core/scan/labelCheck';
import { searchLabels } from '../../src/core/scan/labelSearch';
import { comparePaths, ResultTable } from '../../src/core/scan/resultTable';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { scanDataset, type ScanResult } from '../../src/core/scan/scanner';
import { DatasetSession, type DatasetSessionDeps } from '../../src/extension/dataset/datasetSession';
import { silentLogger } from '../../src/extension/util/logger';
import type { FolderOverrides } from '../../src/extension/worker/workerProtocol';
import { parseDatasetViewMessage, type DatasetHostMessage } from '../../src/shared/protocol';
import { convertedTinyModel } from '../helpers/fixtures';
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
const CLASSES = ['tabby', 'river_otters', 'balloon', 'xyz'];
const ROW_HEIGHT = 56;

type Posted = { type: string; [key: string]: any };

describe('dataset view webview in Chromium', { skip: skipReason }, () => {
  let tmp: string;
  let data: string;
  let model: BeitModel;
  let table: ResultTable;
  /** Scan results in the order they were appended: row id = index. */
  const results: ScanResult[] = [];
  /** The same results in path order: the view's default order, row by row. */
  let byPath: ScanResult[];
  const rowOf = (r: ScanResult) => results.indexOf(r);
  let misfiled: string[];
  let corrupt: Record<string, RegExp>;
  let browser: Browser;
  let context: BrowserContext;
  let server: TestServer;

  before(async () => {
    if (!haveChromium) throw new Error(`Chromium is required under CI but is missing at ${CHROMIUM}: apt-get install -y chromium`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    tmp = mkdtempSync(path.join(tmpdir(), 'beit-lens-dataset-view-'));
    data = path.join(tmp, 'data');
    const [bundle] = await Promise.all([
      buildDatasetBundle(path.join(tmp, 'bundle')),
      (async () => {
        await writeSyntheticDataset(data, { classes: CLASSES, perClass: 50, width: 48, height: 36 });
        // Misfiled: pictures of another kind in the tabby and balloon folders.
        const others = await writeSyntheticDataset(path.join(tmp, 'others'), { classes: ['other'], perClass: 6, width: 48, height: 36, seed: 3 });
        misfiled = [];
        for (const [i, file] of others.entries()) {
          const target = path.join(data, i % 2 ? 'balloon' : 'tabby', `misfiled_${i}.png`);
          await writeFile(target, await readFile(file));
          misfiled.push(target);
        }
        corrupt = {
          [path.join(data, 'balloon', 'empty.jpg')]: /empty \(0 bytes\)/,
          [path.join(data, 'xyz', 'notes.png')]: /not a recognised image/,
          [path.join(data, 'tabby', 'truncated.png')]: /./,
        };
        await writeFile(path.join(data, 'balloon', 'empty.jpg'), Buffer.alloc(0));
        await writeFile(path.join(data, 'xyz', 'notes.png'), 'these are not pixels\n');
        const png = await readFile(path.join(data, 'tabby', 'tabby_00000.png'));
        await writeFile(path.join(data, 'tabby', 'truncated.png'), png.subarray(0, png.length >> 1));
      })(),
    ]);
    const code = readFileSync(bundle, 'utf8');
    assert.ok(!/\beval\(|new Function\(/.test(code), 'the bundle must run under a CSP without unsafe-eval');
    assert.ok(!code.includes('zod'), 'protocol types only: zod stays out of the webview bundle');

    model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu' });
    // As in the extension: one writer (there, the inference worker) and the view's table reading the file.
    const writer = await ResultTable.create(path.join(tmp, 'results.jsonl'));
    await scanDataset({
      roots: [data],
      model,
      topK: 5,
      batchSize: 8,
      onResult: (r) => {
        writer.append(r);
        results.push(r);
      },
    });
    await writer.close();
    table = await ResultTable.open(path.join(tmp, 'results.jsonl'));
    assert.ok(results.length >= 200, `${results.length} rows`);
    byPath = [...results].sort((a, b) => comparePaths(a.image, b.image));
    assert.notDeepEqual(byPath, results, 'the scan finished rows out of path order (cache hits, batches), as in the editor');

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
    await model?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  interface View {
    page: Page;
    session: DatasetSession;
    errors: string[];
    opened: string[];
    copied: string[];
    overrides: FolderOverrides;
    exportFile: string;
  }

  /** A page with the view, its messages going to a real DatasetSession and the session's replies back. */
  async function openView(options: { viewport?: { width: number; height: number }; state?: unknown } = {}): Promise<View> {
    const page = await context.newPage();
    if (options.viewport) await page.setViewportSize(options.viewport);
    if (options.state !== undefined) await page.addInitScript((state: unknown) => (window.__vscodeInitialState = state), options.state);
    const view = { page, errors: [] as string[], opened: [] as string[], copied: [] as string[], overrides: {} as FolderOverrides, exportFile: path.join(tmp, `export-${Date.now()}.jsonl`) } as View;
    page.on('pageerror', (err) => view.errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && view.errors.push(msg.text()));
    let delivery = Promise.resolve();
    const inference = {
      call: (async (name: string, args: any) => {
        if (name === 'mapFolders') {
          const automatic = mapFolders(args.folders, model.labels, { candidates: 8 });
          return mapFolders(args.folders, model.labels, { overrides: args.overrides as LabelOverrides, candidates: 8 }).map((m, i) => ({
            ...m,
            candidates: m.kind === 'override' ? automatic[i].candidates : m.candidates,
            acceptedLabels: m.accepted.map((k) => model.labels[k]),
          }));
        }
        if (name === 'searchLabels') return searchLabels(model.labels, args.query, args.limit);
        if (name === 'thumbnail') return makeThumbnailDataUri(args.file, args.maxSide);
        throw new Error(`unexpected call ${name}`);
      }) as DatasetSessionDeps['inference']['call'],
    };
    view.session = new DatasetSession('Dataset: data', '/workspace/data', {
      inference,
      post: (message: DatasetHostMessage) => {
        delivery = delivery.then(() => page.evaluate((m) => window.postMessage(m, '*'), message)).catch(() => undefined);
      },
      openImage: (file) => view.opened.push(file),
      copyText: async (text) => view.copied.push(text),
      pickExportFile: async () => view.exportFile,
      overrides: { get: () => view.overrides, set: (value) => (view.overrides = value) },
      log: silentLogger,
      infoIntervalMs: 0,
    });
    await view.session.setTable(table);
    await page.exposeFunction('__vscodeForward', (message: unknown) => void view.session.receive(message));
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(() => document.querySelectorAll('#rows .row[data-row]').length > 0);
    return view;
  }

  async function posted(page: Page, type?: string): Promise<Posted[]> {
    const all: Posted[] = await page.evaluate(() => window.__vscode.posted);
    return type ? all.filter((m) => m.type === type) : all;
  }

  async function lastPosted(page: Page, type: string): Promise<Posted | undefined> {
    return (await posted(page, type)).at(-1);
  }

  /** Rendered rows: id, position and the cells' text. */
  async function rendered(page: Page): Promise<Array<{ row: number; position: number; name: string; folder: string; label: string; score: string; check: string; error: boolean; thumb: string | null }>> {
    return page.evaluate(() =>
      [...document.querySelectorAll('#rows .row[data-row]')].map((r: any) => ({
        row: Number(r.dataset.row),
        position: Number(r.dataset.position),
        name: r.querySelector('.c-path .name').textContent,
        folder: r.querySelector('.c-folder').textContent,
        label: r.querySelector('.c-label').textContent,
        score: r.querySelector('.score-text')?.textContent ?? '',
        check: r.querySelector('.c-check').textContent,
        error: r.classList.contains('error'),
        thumb: r.querySelector('.c-thumb img')?.getAttribute('src') ?? null,
      })),
    );
  }

  async function resultCount(page: Page): Promise<number> {
    await page.waitForFunction(() => /^\d[\d,]* rows?$/.test(document.querySelector('#result-count').textContent));
    return Number((await page.locator('#result-count').textContent())!.replace(/[^\d]/g, ''));
  }

  /** Waits until the table shows `total` rows for the latest query and its first page is rendered. */
  async function settled(page: Page, total: number): Promise<void> {
    await page.waitForFunction((n: number) => {
      const text = document.querySelector('#result-count').textContent.replace(/[^\d]/g, '');
      const rows = document.querySelectorAll('#rows .row[data-row]').length;
      return Number(text) === n && (n === 0 || (rows > 0 && !document.querySelector('#rows .row.loading')));
    }, total);
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    // Pictures first: every row on screen that is not an error row shows its thumbnail.
    await page.waitForFunction(() => [...document.querySelectorAll('#rows .row[data-row]:not(.error) .c-thumb')].every((c: any) => c.querySelector('img[src^="data:image/"]')));
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(SCREENSHOTS, `dataset-${name}.png`) });
  }

  /** Every test ends here: no script errors, no CSP violations, and every posted message passes the schema. */
  async function finish(view: View): Promise<void> {
    const record = await view.page.evaluate(() => window.__vscode);
    await view.page.close();
    view.session.dispose();
    assert.deepEqual(view.errors, [], `page errors: ${view.errors.join('; ')}`);
    assert.deepEqual(record.cspViolations, [], 'CSP violations');
    assert.equal(record.acquired, 1);
    for (const message of record.posted) {
      const parsed = parseDatasetViewMessage(message);
      assert.ok(parsed.ok, `posted message fails the schema: ${JSON.stringify(message).slice(0, 200)} (${parsed.ok ? '' : parsed.error})`);
    }
  }

  const scoreOf = (r: ScanResult) => r.top?.[0].score;
  const pct = (s: number) => `${(s * 100).toFixed(1)}%`;

  it('renders only the rows on screen, fetches pages and thumbnails as it scrolls', async () => {
    const view = await openView();
    const { page } = view;
    assert.equal(await resultCount(page), results.length);
    assert.deepEqual((await posted(page)).map((m) => m.type).slice(0, 1), ['ready']);
    const first = await lastPosted(page, 'query');
    // Path order by default: the same for every scan of the folder, whatever order the rows were written in.
    assert.deepEqual(first, { type: 'query', requestId: first!.requestId, generation: 1, query: { mode: 'all', filter: {}, sort: { key: 'path', descending: false } }, offset: 0, limit: 100 });
    assert.equal(await page.locator('.th[data-sort="path"]').getAttribute('aria-sort'), 'ascending');
    const initial = await rendered(page);
    const viewportHeight: number = await page.locator('#viewport').evaluate((v: any) => v.clientHeight);
    assert.ok(initial.length <= Math.ceil(viewportHeight / ROW_HEIGHT) + 1 + 4 * 2, `${initial.length} rows in the DOM for a ${viewportHeight}px viewport`);
    assert.ok(initial.length < 30 && results.length > 200);
    assert.equal(await page.locator('#table').getAttribute('aria-rowcount'), String(results.length));
    assert.deepEqual(initial.map((r) => r.name), byPath.slice(0, initial.length).map((r) => path.basename(r.image)));
    assert.deepEqual(initial.map((r) => r.row), byPath.slice(0, initial.length).map(rowOf));
    const spacer: number = await page.locator('#spacer').evaluate((s: any) => s.offsetHeight);
    assert.equal(spacer, results.length * ROW_HEIGHT, 'the scroll height covers every row');

    // Thumbnails arrive for the rows on screen (real ones, made from the files).
    await page.waitForFunction(() => [...document.querySelectorAll('#rows .row[data-row]:not(.error) .c-thumb')].slice(0, 8).every((c: any) => c.querySelector('img[src^="data:image/"]')));
    const asked = await lastPosted(page, 'thumbnails');
    assert.ok(asked!.rows.length > 0 && asked!.rows.every((r: number) => initial.some((x) => x.row === r)), 'thumbnails only for rows on screen');
    await screenshot(page, 'table');

    // Scroll to row 150: page 1 is asked for, and only rows near 150 are in the DOM.
    await page.locator('#viewport').evaluate((v: any, y: number) => (v.scrollTop = y), 150 * ROW_HEIGHT);
    await page.waitForFunction(() => document.querySelector('#rows .row[data-position="150"][data-row]'));
    assert.ok((await posted(page, 'query')).some((m) => m.offset === 100), 'the second page was fetched');
    const middle = await rendered(page);
    assert.ok(middle.every((r) => r.position >= 140 && r.position <= 170), middle.map((r) => r.position).join(','));
    assert.equal(middle.find((r) => r.position === 150)!.name, path.basename(byPath[150].image));
    // And to the end.
    await page.locator('#viewport').evaluate((v: any) => (v.scrollTop = v.scrollHeight));
    await page.waitForFunction((last: number) => document.querySelector(`#rows .row[data-position="${last}"][data-row]`), results.length - 1);
    assert.ok((await posted(page, 'query')).some((m) => m.offset === 200));
    await finish(view);
  });

  it('sorts by a column and filters by folder, score range and label text', async () => {
    const view = await openView();
    const { page } = view;
    const scored = results.filter((r) => r.top);

    await page.locator('.th[data-sort="score"]').click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query.sort, { key: 'score', descending: true });
    await page.waitForFunction((s: string) => document.querySelector('#rows .row[data-position="0"] .score-text')?.textContent === s, pct(Math.max(...scored.map((r) => scoreOf(r)!))));
    assert.equal(await page.locator('.th[data-sort="score"]').getAttribute('aria-sort'), 'descending');
    await page.locator('.th[data-sort="score"]').click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query.sort, { key: 'score', descending: false });
    await page.waitForFunction((s: string) => document.querySelector('#rows .row[data-position="0"] .score-text')?.textContent === s, pct(Math.min(...scored.map((r) => scoreOf(r)!))));
    await page.locator('.th[data-sort="path"]').click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query.sort, { key: 'path', descending: false });

    await page.selectOption('#filter-folder', { label: `tabby (${results.filter((r) => r.folderLabel === 'tabby').length})` });
    assert.deepEqual((await lastPosted(page, 'query'))!.query.filter, { folderLabel: 'tabby' });
    await settled(page, results.filter((r) => r.folderLabel === 'tabby').length);
    assert.ok((await rendered(page)).every((r) => r.folder === 'tabby'));

    const threshold = [...scored.map((r) => scoreOf(r)!)].sort((a, b) => a - b)[Math.floor(scored.length / 2)];
    const min = Math.round(threshold * 100) / 100;
    await page.fill('#filter-min', String(min));
    await page.locator('#filter-min').dispatchEvent('change');
    assert.deepEqual((await lastPosted(page, 'query'))!.query.filter, { folderLabel: 'tabby', minScore: min });
    const expected = results.filter((r) => r.folderLabel === 'tabby' && r.top && r.top[0].score >= min);
    await settled(page, expected.length);
    assert.ok((await rendered(page)).every((r) => Number(r.score.slice(0, -1)) >= min * 100 - 0.05));

    const label = scored[0].top![0].label;
    const needle = label.split(/[ ,]/)[0].toUpperCase();
    await page.fill('#filter-min', '');
    await page.locator('#filter-min').dispatchEvent('change');
    await page.selectOption('#filter-folder', '*');
    await page.fill('#filter-label', needle);
    await page.waitForFunction((n: string) => window.__vscode.posted.filter((m: any) => m.type === 'query').at(-1).query.filter.labelText === n, needle);
    const matching = results.filter((r) => r.top && r.top[0].label.toUpperCase().includes(needle));
    await settled(page, matching.length);
    assert.ok((await rendered(page)).every((r) => r.label.toUpperCase().includes(needle)));

    await page.locator('#clear-filters').click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query.filter, {});
    await settled(page, results.length);
    await finish(view);
  });

  it('shows a histogram of top-1 classes; clicking a bar filters the table', async () => {
    const view = await openView();
    const { page } = view;
    const counts = new Map<number, number>();
    for (const r of results) if (r.top) counts.set(r.top[0].index, (counts.get(r.top[0].index) ?? 0) + 1);
    const expected = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    await page.waitForFunction(() => document.querySelectorAll('#histogram .bar').length > 0);
    const bars: Array<{ index: number; label: string; count: number }> = await page.locator('#histogram .bar').evaluateAll((bs: any[]) =>
      bs.map((b) => ({ index: Number(b.dataset.index), label: b.querySelector('.bar-label').textContent, count: Number(b.querySelector('.bar-count').textContent.replace(/,/g, '')) })),
    );
    assert.deepEqual(bars.map((b) => [b.index, b.count]), expected.slice(0, 15));
    assert.deepEqual(bars.map((b) => b.label), expected.slice(0, 15).map(([i]) => model.labels[i]));

    const bar = bars[1];
    await page.locator(`#histogram .bar[data-index="${bar.index}"]`).click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query.filter, { labelIndex: bar.index });
    await settled(page, bar.count);
    assert.ok((await rendered(page)).every((r) => r.label === bar.label));
    await page.waitForFunction((i: number) => document.querySelector(`#histogram .bar[data-index="${i}"]`).getAttribute('aria-pressed') === 'true', bar.index);
    await page.locator(`#histogram .bar[data-index="${bar.index}"]`).click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query.filter, {});
    await settled(page, results.length);
    await finish(view);
  });

  it('shows the folder -> label mapping with kinds, and a correction posts the override', async () => {
    const view = await openView();
    const { page } = view;
    await page.waitForFunction(() => document.querySelectorAll('#mappings tr[data-kind]').length === 4);
    const mappings: Array<{ folder: string; kind: string; label: string; match: string }> = await page.locator('#mappings tr[data-kind]').evaluateAll((rows: any[]) =>
      rows.map((r) => ({ folder: r.dataset.folder, kind: r.dataset.kind, label: r.querySelector('.mapped-label').textContent, match: r.querySelector('.kind').textContent })),
    );
    const byFolder = Object.fromEntries(mappings.map((m) => [m.folder, m]));
    assert.equal(byFolder.river_otters.kind, 'exact');
    assert.equal(byFolder.river_otters.label, 'river otter');
    assert.equal(byFolder.tabby.kind, 'fuzzy');
    assert.match(byFolder.tabby.match, /^fuzzy 0\.\d\d$/);
    assert.equal(byFolder.balloon.label, 'hot air balloon');
    assert.equal(byFolder.xyz.kind, 'none');
    assert.equal(byFolder.xyz.label, '—');
    assert.match(await page.locator('#label-summary').textContent() ?? '', /\d+ images checked: \d+ disagree/);

    await page.locator('#mappings tr[data-folder="xyz"] button[data-action="edit"]').click();
    await page.locator('#mappings .label-search').fill('lily');
    await page.waitForFunction(() => window.__vscode.posted.some((m: any) => m.type === 'searchLabels' && m.query === 'lily'));
    const choice = page.locator('#mappings .results button', { hasText: 'glacier lily' });
    await choice.waitFor();
    await screenshot(page, 'labelcheck-editor');
    await choice.click();
    assert.deepEqual(await lastPosted(page, 'setMapping'), { type: 'setMapping', folder: 'xyz', labels: [model.labels.indexOf('glacier lily')] });
    await page.waitForFunction(() => document.querySelector('#mappings tr[data-folder="xyz"]')?.dataset.kind === 'override');
    assert.equal(await page.locator('#mappings tr[data-folder="xyz"] .kind').textContent(), 'corrected');
    assert.equal(await page.locator('#mappings tr[data-folder="xyz"] .mapped-label').textContent(), 'glacier lily');
    assert.deepEqual(view.overrides, { xyz: [model.labels.indexOf('glacier lily')] });

    // Back to automatic from the same editor.
    await page.locator('#mappings tr[data-folder="xyz"] button[data-action="edit"]').click();
    await page.locator('#mappings button[data-action="auto"]').click();
    assert.deepEqual(await lastPosted(page, 'setMapping'), { type: 'setMapping', folder: 'xyz', labels: 'auto' });
    await page.waitForFunction(() => document.querySelector('#mappings tr[data-folder="xyz"]')?.dataset.kind === 'none');
    await finish(view);
  });

  it('ranks suspects by how confident the disagreement is, and lists error rows with their reasons', async () => {
    const view = await openView();
    const { page } = view;
    const checker = new LabelChecker(model.labels);
    for (const r of results) checker.add(r);
    const reference = checker.suspects();
    await page.waitForFunction((n: number) => document.querySelector('#mode-suspects').textContent === `Suspects (${n})`, reference.length);
    // As at the end of a scan in the editor.
    const classified = results.filter((r) => r.top).length;
    view.session.setScanState({ status: 'done', done: results.length, total: results.length, imagesPerSecond: 41.3, classified, cached: 0, errors: results.length - classified });
    await page.waitForFunction(() => /^Scanned \d+ images/.test(document.querySelector('#scan-text').textContent));
    await page.locator('#mode-suspects').click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query, { mode: 'suspects', filter: {}, sort: { key: 'order', descending: false } });
    await settled(page, reference.length);
    assert.equal(await page.locator('.th[data-sort="order"]').textContent(), 'Rank');
    const shown = await rendered(page);
    assert.deepEqual(shown.map((r) => results[r.row].image), reference.slice(0, shown.length).map((s) => s.image));
    const margins = shown.map((r) => /disagrees ([\d.]+)/.exec(r.check)?.[1]).filter((m): m is string => m !== undefined).map(Number);
    assert.ok(margins.length > 3, shown.map((r) => r.check).join(' | '));
    assert.deepEqual(margins, [...margins].sort((a, b) => b - a), 'most confident disagreement first');
    await page.locator('#rows .row[data-position="0"] .expand').click();
    await page.waitForFunction(() => document.querySelectorAll('#rows .row[data-position="0"] .top5 li').length === 5);
    await screenshot(page, 'suspects');

    await page.locator('#mode-errors').click();
    await settled(page, Object.keys(corrupt).length);
    const errors = await rendered(page);
    for (const e of errors) {
      const file = results[e.row].image;
      assert.ok(e.error, file);
      assert.match(e.label, corrupt[file], file);
      assert.equal(e.thumb, null);
    }
    await finish(view);
  });

  it('expands a row to its top-5, explains a clicked row, copies selected paths and exports', async () => {
    const view = await openView();
    const { page } = view;
    await settled(page, results.length);
    const firstRow = page.locator('#rows .row[data-position="0"]');
    await firstRow.locator('.expand').click();
    await page.waitForFunction(() => document.querySelectorAll('#rows .row[data-position="0"] .top5 li').length === 5);
    const top5: string[] = await page.locator('#rows .row[data-position="0"] .top5 li .top5-label').allTextContents();
    assert.deepEqual(top5, byPath[0].top!.map((p) => p.label));
    assert.equal(await rowHeight(page, 0), ROW_HEIGHT + 5 * 20 + 10);
    assert.equal(await page.evaluate(() => document.querySelector('#rows .row[data-position="1"]')?.offsetTop), ROW_HEIGHT + 5 * 20 + 10, 'the next row moves down');
    await screenshot(page, 'expanded');

    await page.locator('#rows .row[data-position="2"] .c-path').click();
    assert.deepEqual(await lastPosted(page, 'open'), { type: 'open', generation: 1, row: rowOf(byPath[2]) });
    await page.waitForFunction(() => true);
    assert.deepEqual(view.opened, [byPath[2].image]);

    await page.locator('#rows .row[data-position="4"] .c-path').click({ modifiers: ['Control'] });
    assert.equal(await page.locator('#selection-count').textContent(), '2 selected');
    assert.equal((await posted(page, 'open')).length, 1, 'ctrl-click selects without opening');
    await page.locator('#copy-paths').click();
    assert.deepEqual((await lastPosted(page, 'copyPaths'))!.rows.sort((a: number, b: number) => a - b), [rowOf(byPath[2]), rowOf(byPath[4])].sort((a, b) => a - b));
    await page.waitForFunction(() => /Copied 2 paths/.test(document.querySelector('#status').textContent));
    assert.deepEqual(view.copied[0].split('\n').sort(), [byPath[2].image, byPath[4].image].sort());

    await page.selectOption('#export-format', 'jsonl');
    await page.locator('#export-selection').click();
    assert.deepEqual(await lastPosted(page, 'export'), { type: 'export', generation: 1, scope: 'selection', format: 'jsonl', rows: (await lastPosted(page, 'copyPaths'))!.rows });
    await page.waitForFunction(() => /Exported 2 rows/.test(document.querySelector('#status').textContent));

    // The current view: the tabby folder.
    await page.selectOption('#filter-folder', { label: `tabby (${results.filter((r) => r.folderLabel === 'tabby').length})` });
    await settled(page, results.filter((r) => r.folderLabel === 'tabby').length);
    await page.locator('#export-view').click();
    const exported = await lastPosted(page, 'export');
    assert.deepEqual(exported, { type: 'export', generation: 1, scope: 'view', format: 'jsonl', query: { mode: 'all', filter: { folderLabel: 'tabby' }, sort: { key: 'path', descending: false } } });
    const tabbies = results.filter((r) => r.folderLabel === 'tabby').length;
    await page.waitForFunction((n: number) => document.querySelector('#status').textContent.startsWith(`Exported ${n} rows (JSONL)`), tabbies);
    const lines = (await readFile(view.exportFile, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.image), byPath.filter((r) => r.folderLabel === 'tabby').map((r) => r.image), 'the view’s rows, in its order');
    assert.deepEqual(Object.keys(lines.find((l) => l.top)), ['image', 'folder', 'folderLabel', 'top', 'quality', 'flags', 'sha256', 'root'], 'the CLI’s JSONL schema');

    await page.selectOption('#export-format', 'csv');
    await page.locator('#export-all').click();
    assert.deepEqual(await lastPosted(page, 'export'), { type: 'export', generation: 1, scope: 'all', format: 'csv' });
    await finish(view);
  });

  it('labels every control, and keyboard moves, expands and explains', async () => {
    const view = await openView();
    const { page } = view;
    await page.waitForFunction(() => document.querySelectorAll('#mappings tr[data-kind]').length === 4);
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('input, select, button'))
        .filter((c: any) => !(c.labels?.length > 0 || c.textContent.trim() || c.getAttribute('aria-label')))
        .map((c: any) => c.outerHTML.slice(0, 120)),
    );
    assert.deepEqual(unlabelled, []);
    await page.locator('#viewport').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => document.querySelector('#rows .row.active')?.dataset.position === '1' && document.querySelector('#rows .row.active .top5'));
    await page.keyboard.press('Enter');
    assert.deepEqual(await lastPosted(page, 'open'), { type: 'open', generation: 1, row: Number(await page.locator('#rows .row.active').getAttribute('data-row')) });
    await page.keyboard.press('End');
    await page.waitForFunction((last: number) => document.querySelector('#rows .row.active')?.dataset.position === String(last), results.length - 1);
    await finish(view);
  });
  /** A row's height, read in one evaluation (rows are replaced on every frame, so a held handle may be stale). */
  async function rowHeight(page: Page, position: number): Promise<number | undefined> {
    return page.evaluate((p: number) => document.querySelector(`#rows .row[data-position="${p}"]`)?.offsetHeight, position);
  }

  /** Cells whose text does not fit (ellipsis) among the rows on screen, as "row: text". */
  async function truncated(page: Page, selector: string): Promise<string[]> {
    return page.evaluate(
      (sel: string) => [...document.querySelectorAll(`#rows .row[data-row] ${sel}`)].filter((c: any) => c.scrollWidth > c.clientWidth + 1).map((c: any) => `${c.closest('.row').dataset.row}: ${c.textContent}`),
      selector,
    );
  }

  /** The vertical middle of each element, rounded: elements on one line share it. */
  async function lineOf(page: Page, selectors: string[]): Promise<number[]> {
    return page.evaluate((sels: string[]) => sels.map((sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return Math.round(r.top + r.height / 2);
    }), selectors);
  }

  it('at 1440 px the label and check columns show their text in full, with tooltips, and the actions fit on one line', async () => {
    const view = await openView({ viewport: { width: 1440, height: 900 } });
    const { page } = view;
    await settled(page, results.length);
    // Suspects, lowest score first.
    await page.locator('#mode-suspects').click();
    await page.waitForFunction(() => /^Suspects \(\d+\)$/.test(document.querySelector('#mode-suspects').textContent));
    await page.locator('.th[data-sort="score"]').click();
    await page.locator('.th[data-sort="score"]').click();
    assert.deepEqual((await lastPosted(page, 'query'))!.query, { mode: 'suspects', filter: {}, sort: { key: 'score', descending: false } });
    // Column headers stay on one line with the sort arrow (they share classes with the cells).
    await page.waitForFunction(() => document.querySelector('.th[data-sort="score"]').dataset.direction === 'asc');
    const headers: number[] = await page.evaluate(() => [...document.querySelectorAll('.thead .th')].map((h: any) => h.getBoundingClientRect().height));
    assert.ok(headers.every((h) => h < 40), `header heights ${headers.join(',')}`);
    await page.waitForFunction(() => document.querySelector('#rows .row[data-row]') && !document.querySelector('#rows .row.loading'));
    const cells: Array<{ label: string; labelTitle: string; check: string; checkTitle: string; dir: string | null; folder: string }> = await page.evaluate(() =>
      [...document.querySelectorAll('#rows .row[data-row]')].map((r: any) => ({
        label: r.querySelector('.c-label').textContent,
        labelTitle: r.querySelector('.c-label').title,
        check: r.querySelector('.c-check').textContent,
        checkTitle: r.querySelector('.c-check').title,
        dir: r.querySelector('.c-path .dir')?.textContent ?? null,
        folder: r.querySelector('.c-folder').textContent,
      })),
    );
    assert.ok(cells.length > 5 && cells.every((c) => /^disagrees [\d.]+/.test(c.check)), cells.map((c) => c.check).join(' | '));
    for (const c of cells) {
      assert.equal(c.labelTitle, c.label, 'the label tooltip is the full label');
      assert.ok(c.checkTitle.startsWith(`${c.check}: folder "`), `check tooltip: ${c.checkTitle}`);
      assert.equal(c.dir, null, `the folder ${c.folder} is shown once, not again under the file name`);
    }
    assert.deepEqual(await truncated(page, '.c-check'), [], 'check texts fit at 1440 px');
    await screenshot(page, 'suspects-1440');
    // The longest text a check can have (this dataset has no low scores) fits too: measured in a real cell.
    const longest: { scroll: number; client: number } = await page.evaluate(() => {
      const cell = document.querySelector('#rows .row[data-row] .c-check');
      cell.textContent = 'disagrees 0.99, low score';
      return { scroll: cell.scrollWidth, client: cell.clientWidth };
    });
    assert.ok(longest.scroll <= longest.client, `"disagrees 0.99, low score" needs ${longest.scroll}px, the column has ${longest.client}px`);
    assert.deepEqual(await truncated(page, '.c-label'), [], 'top-1 labels fit at 1440 px');
    const widths: Record<string, number> = await page.evaluate(() =>
      Object.fromEntries(['c-path', 'c-folder', 'c-label', 'c-check'].map((c) => [c, document.querySelector(`.thead .${c}`).getBoundingClientRect().width])),
    );
    assert.ok(widths['c-label'] > widths['c-path'] && widths['c-label'] > 2 * widths['c-folder'], JSON.stringify(widths));
    const actions = ['#result-count', '#thumbnail-size', '#copy-paths', '#clear-selection', '#export-format', '#export-selection', '#export-view', '#export-all'];
    const lines = await lineOf(page, actions);
    assert.equal(new Set(lines).size, 1, `one line of actions: ${actions.map((a, i) => `${a}@${lines[i]}`).join(' ')}`);
    await page.locator('#mode-all').click();
    await settled(page, results.length);
    assert.deepEqual((await lastPosted(page, 'query'))!.query.sort, { key: 'path', descending: false }, 'back to path order');
    await screenshot(page, 'table-1440');
    // An editor beside the view (the view about 1100 px wide): still one line.
    await page.setViewportSize({ width: 1100, height: 900 });
    const narrow = await lineOf(page, actions);
    assert.equal(new Set(narrow).size, 1, `one line of actions at 1100 px: ${actions.map((a, i) => `${a}@${narrow[i]}`).join(' ')}`);
    await finish(view);
  });

  it('a thumbnail size control resizes pictures and rows, keeps the top row in place and is restored with the view', async () => {
    const view = await openView({ viewport: { width: 1440, height: 900 } });
    const { page } = view;
    await settled(page, results.length);
    assert.equal(await page.locator('#thumbnail-size').inputValue(), '48');
    assert.equal(await rowHeight(page, 0), ROW_HEIGHT);
    // Scroll to row 40, then make the pictures large: row 40 stays at the top.
    await page.locator('#viewport').evaluate((v: any, y: number) => (v.scrollTop = y), 40 * ROW_HEIGHT);
    await page.waitForFunction(() => document.querySelector('#rows .row[data-position="40"][data-row]'));
    const headerHeight = await page.evaluate(() => document.querySelector('.thead').offsetHeight);
    await page.selectOption('#thumbnail-size', '96');
    const large = 96 + 8;
    await page.waitForFunction((h: number) => document.querySelector('#rows .row[data-position="40"]')?.offsetHeight === h, large);
    assert.equal(await page.locator('#spacer').evaluate((s: any) => s.offsetHeight), results.length * large, 'the scroll height follows the row height');
    assert.equal(await page.locator('#viewport').evaluate((v: any) => v.scrollTop), 40 * large, 'the top row stays at the top');
    assert.equal(await page.evaluate(() => document.querySelector('.thead').offsetHeight), headerHeight, 'the header keeps its height');
    assert.ok(headerHeight < 40, `one line of column headers (${headerHeight}px)`);
    // Read in one evaluation: rows are replaced on every frame.
    assert.equal(await page.evaluate(() => document.querySelector('#rows .row[data-position="41"]')?.offsetTop), 41 * large);
    await page.waitForFunction(() => [...document.querySelectorAll('#rows .row[data-row]:not(.error) .c-thumb')].slice(0, 6).every((c: any) => c.querySelector('img[src^="data:image/"]')?.complete));
    const pictures: Array<{ box: number[]; natural: number }> = await page.evaluate(() =>
      [...document.querySelectorAll('#rows .row[data-row]:not(.error) .c-thumb img')].map((i: any) => ({ box: [i.getBoundingClientRect().width, i.getBoundingClientRect().height], natural: Math.max(i.naturalWidth, i.naturalHeight) })),
    );
    // Shown in a 96 px box whatever the picture's own size (the extension makes thumbnails of up to 96 px).
    assert.ok(pictures.length > 0 && pictures.every((p) => p.box[0] === 96 && p.box[1] === 96 && p.natural > 0 && p.natural <= 96), JSON.stringify(pictures.slice(0, 3)));
    // Expanding still adds the top-5 under a large row.
    await page.locator('#rows .row[data-position="40"] .expand').click();
    await page.waitForFunction((h: number) => document.querySelector('#rows .row[data-position="40"]')?.offsetHeight === h, large + 5 * 20 + 10);
    await page.locator('#rows .row[data-position="40"] .expand').click();
    await screenshot(page, 'thumbnails-large-1440');
    const state = await page.evaluate(() => window.__vscode.states.at(-1));
    // The layout and the gallery's size (gallery.browser.test.ts) are kept beside the table's thumbnail size.
    assert.deepEqual(state, { folder: '/workspace/data', query: { mode: 'all', filter: {}, sort: { key: 'path', descending: false } }, thumbnailSize: 96, layout: 'table', gallerySize: 128 });
    await finish(view);

    // A reopened view (VS Code restores the state) comes back with large thumbnails; a forged size is ignored.
    const restored = await openView({ state });
    await settled(restored.page, results.length);
    assert.equal(await restored.page.locator('#thumbnail-size').inputValue(), '96');
    assert.equal(await rowHeight(restored.page, 0), large);
    await finish(restored);
    const forged = await openView({ state: { ...state, thumbnailSize: 5000 } });
    await settled(forged.page, results.length);
    assert.equal(await forged.page.locator('#thumbnail-size').inputValue(), '48');
    assert.equal(await rowHeight(forged.page, 0), ROW_HEIGHT);
    await finish(forged);
  });
});
