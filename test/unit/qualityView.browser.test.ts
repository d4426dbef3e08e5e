/**
 * The dataset view's quality column and filter in real Chromium: the built webview bundle, a real DatasetSession
 * over a results table from a real scan (tiny model) of the quality fixtures (test/fixtures/quality, one image
 * per cleanvision issue) plus ordinary generated images. Same harness as datasetView.browser.test.ts.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BeitModel } from '../../src/core/beitModel';
import { makeThumbnailDataUri } from '../../src/core/image';
import { mapFolders } from '../../src/core/scan/labelCheck';
import { ResultTable } from '../../src/core/scan/resultTable';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { scanDataset, type ScanResult } from '../../src/core/scan/scanner';
import { DatasetSession, type DatasetSessionDeps } from '../../src/extension/dataset/datasetSession';
import { silentLogger } from '../../src/extension/util/logger';
import { parseDatasetViewMessage, type DatasetHostMessage } from '../../src/shared/protocol';
import { convertedTinyModel } from '../helpers/fixtures';
import { serveDatasetView, type TestServer } from '../webview/server';
import { buildDatasetBundle } from '../webview/datasetBundle';

declare const document: any;
declare const window: any;

const ROOT = path.join(__dirname, '..', '..');
const QUALITY_DIR = path.join(ROOT, 'test', 'fixtures', 'quality');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results');
const haveChromium = existsSync(CHROMIUM);
const skipReason = !haveChromium && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)` : false;


describe('dataset view quality column and filter in Chromium', { skip: skipReason }, () => {
  let tmp: string;
  let model: BeitModel;
  let table: ResultTable;
  const results: ScanResult[] = [];
  let browser: Browser;
  let server: TestServer;

  before(async () => {
    if (!haveChromium) throw new Error(`Chromium is required under CI but is missing at ${CHROMIUM}`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    tmp = mkdtempSync(path.join(tmpdir(), 'beit-lens-quality-view-'));
    const data = path.join(tmp, 'data');
    const [bundle] = await Promise.all([
      buildDatasetBundle(path.join(tmp, 'bundle')),
      (async () => {
        await writeSyntheticDataset(data, { classes: ['tabby', 'balloon'], perClass: 6, width: 48, height: 36 });
        mkdirSync(path.join(data, 'photos'));
        for (const name of readdirSync(QUALITY_DIR).filter((n) => n.endsWith('.png'))) copyFileSync(path.join(QUALITY_DIR, name), path.join(data, 'photos', name));
      })(),
    ]);
    model = await BeitModel.load(await convertedTinyModel(), { provider: 'cpu' });
    const writer = await ResultTable.create(path.join(tmp, 'results.jsonl'));
    await scanDataset({ roots: [data], model, topK: 5, onResult: (r) => void (writer.append(r), results.push(r)) });
    await writer.close();
    table = await ResultTable.open(path.join(tmp, 'results.jsonl'));
    server = await serveDatasetView(bundle);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await table?.close();
    await model?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function openView(): Promise<{ page: Page; session: DatasetSession; errors: string[] }> {
    const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 })).newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    let delivery = Promise.resolve();
    const inference = {
      call: (async (name: string, args: any) => {
        if (name === 'mapFolders') return mapFolders(args.folders, model.labels, { candidates: 8 }).map((m) => ({ ...m, acceptedLabels: m.accepted.map((k) => model.labels[k]) }));
        if (name === 'thumbnail') return makeThumbnailDataUri(args.file, args.maxSide);
        throw new Error(`unexpected call ${name}`);
      }) as DatasetSessionDeps['inference']['call'],
    };
    let overrides = {};
    const session = new DatasetSession('Dataset: data', '/workspace/data', {
      inference,
      post: (message: DatasetHostMessage) => {
        delivery = delivery.then(() => page.evaluate((m) => window.postMessage(m, '*'), message)).catch(() => undefined);
      },
      openImage: () => undefined,
      copyText: async () => undefined,
      pickExportFile: async () => undefined,
      overrides: { get: () => overrides, set: (value) => void (overrides = value) },
      log: silentLogger,
      infoIntervalMs: 0,
    });
    await session.setTable(table);
    await page.exposeFunction('__vscodeForward', (message: unknown) => void session.receive(message));
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(() => document.querySelectorAll('#rows .row[data-row]').length > 0);
    return { page, session, errors };
  }

  /** name -> the chips' flags, for the rows on screen once `total` rows match. */
  async function chips(page: Page, total: number): Promise<Record<string, string[]>> {
    await page.waitForFunction((n: number) => Number(document.querySelector('#result-count').textContent.replace(/[^\d]/g, '')) === n && !document.querySelector('#rows .row.loading'), total);
    return page.evaluate(() =>
      Object.fromEntries([...document.querySelectorAll('#rows .row[data-row]')].map((r: any) => [r.querySelector('.c-path .name').textContent, [...r.querySelectorAll('.c-quality .chip')].map((c: any) => c.dataset.flag)])),
    );
  }

  it('shows each image’s flags as chips, and the flag filter narrows the table to the rows raising it', async () => {
    const { page, session, errors } = await openView();
    const byName = (name: string) => results.find((r) => path.basename(r.image) === name)!;
    assert.deepEqual(byName('dark.png').flags, ['dark']);
    const all = await chips(page, results.length);
    assert.deepEqual(all['dark.png'], ['dark']);
    assert.deepEqual(all['blurry.png'], ['blurry']);
    assert.deepEqual(all['light.png'], ['light']);
    assert.deepEqual(all['grayscale.png'], ['grayscale']);
    assert.equal(await page.locator('.row:has-text("light.png") .chip').textContent(), 'overexposed');
    assert.match((await page.locator('.row:has-text("dark.png") .c-quality').getAttribute('title'))!, /99th percentile of pixel brightness is under 0\.32/);

    // The filter lists the flags the scan raised, with counts (the generated 48x36 images raise what they raise).
    const counts = new Map(table.flagCounts().map((c) => [c.flag, c.count]));
    const options: Array<{ value: string; text: string }> = await page.evaluate(() => [...document.querySelectorAll('#filter-quality option')].map((o: any) => ({ value: o.value, text: o.textContent })));
    assert.deepEqual(options.slice(0, 2).map((o) => o.value), ['', '*']);
    for (const o of options.slice(2)) assert.match(o.text, new RegExp(`\\(${counts.get(o.value as never)}\\)$`), o.value);
    assert.ok(options.some((o) => o.value === 'blurry'));

    await page.selectOption('#filter-quality', 'dark');
    const dark = results.filter((r) => r.flags?.includes('dark')).map((r) => path.basename(r.image)).sort();
    assert.deepEqual(Object.keys(await chips(page, dark.length)).sort(), dark);
    const query = await page.evaluate(() => window.__vscode.posted.filter((m: any) => m.type === 'query').at(-1).query);
    assert.deepEqual(query.filter.flags, ['dark']);
    await page.selectOption('#filter-quality', '*');
    const flagged = results.filter((r) => r.flags?.length).length;
    const shown = await chips(page, flagged);
    assert.ok(Object.values(shown).every((f) => f.length > 0));
    await page.waitForFunction(() => [...document.querySelectorAll('#rows .row[data-row] .c-thumb')].every((c: any) => c.querySelector('img[src^="data:image/"]')));
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dataset-quality.png') });
    await page.selectOption('#filter-quality', 'blurry');
    assert.deepEqual(Object.keys(await chips(page, results.filter((r) => r.flags?.includes('blurry')).length)), ['blurry.png']);
    await page.click('#clear-filters');
    await chips(page, results.length);

    const record = await page.evaluate(() => window.__vscode);
    for (const message of record.posted) assert.ok(parseDatasetViewMessage(message).ok, JSON.stringify(message).slice(0, 200));
    assert.deepEqual(record.cspViolations, []);
    assert.deepEqual(errors, []);
    await page.close();
    session.dispose();
  });
});
