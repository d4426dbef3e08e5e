/**
 * The Dataset view's similarity features in real Chromium, wired to the real host side and the real inference
 * worker: a dataset with train/test split folders and a training image copied into the test split is scanned
 * by the worker (tiny model, embeddings stored), and the built dist/datasetView.js talks to a DatasetSession
 * whose similarity calls go to that worker. Checked: Find Similar from a row (chip, Similarity column equal to
 * the worker's cosines, in order; × clears it), the Uniqueness column and "Most unique", the Duplicates tab
 * (the exact pair side by side with thumbnails, flagged as leakage; selecting it and exporting the selection;
 * "Show in table").
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ResultTable, type TableRow } from '../../src/core/scan/resultTable';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { DatasetSession } from '../../src/extension/dataset/datasetSession';
import { runDatasetScan } from '../../src/extension/dataset/scanRunner';
import { InferenceClient } from '../../src/extension/inference/inferenceClient';
import { silentLogger } from '../../src/extension/util/logger';
import { parseDatasetViewMessage, type DatasetHostMessage } from '../../src/shared/protocol';
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
const TOP_K = 6;


describe('Find Similar, uniqueness and the Duplicates tab in Chromium', { skip: skipReason }, () => {
  let tmp: string;
  let data: string;
  let resultsFile: string;
  let cacheFile: string;
  let duplicate: { original: string; copy: string };
  let rows: TableRow[];
  let client: InferenceClient;
  let browser: Browser;
  let server: TestServer;
  let table: ResultTable;

  before(async () => {
    if (!haveChromium) throw new Error(`Chromium is required under CI but is missing at ${CHROMIUM}`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    tmp = mkdtempSync(path.join(tmpdir(), 'beit-lens-similarity-view-'));
    data = path.join(tmp, 'data');
    const [bundle, train] = await Promise.all([
      buildDatasetBundle(path.join(tmp, 'bundle')),
      writeSyntheticDataset(path.join(data, 'train'), { classes: ['tabby', 'balloon', 'river_otters'], perClass: 8, width: 48, height: 36, seed: 5 }),
      writeSyntheticDataset(path.join(data, 'test'), { classes: ['tabby', 'balloon', 'river_otters'], perClass: 3, width: 48, height: 36, seed: 6 }),
    ]);
    duplicate = { original: train[3], copy: path.join(data, 'test', 'tabby', 'copied_from_train.png') };
    copyFileSync(duplicate.original, duplicate.copy);

    client = new InferenceClient({ workerScript: path.join(ROOT, 'src/extension/worker/inferenceWorker.ts'), execArgv: ['--import', 'tsx'], log: silentLogger });
    const state = await client.setModel({ source: { kind: 'folder', dir: await convertedTinyModel() }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } });
    assert.equal(state.kind, 'ready');
    resultsFile = path.join(tmp, 'results.jsonl');
    cacheFile = path.join(tmp, 'scan-cache.log');
    await runDatasetScan(client, { roots: [data], resultsFile, cacheFile, topK: 5, batchSize: 8 });
    table = await ResultTable.open(resultsFile);
    rows = [];
    for await (const row of table.entries()) rows.push(row);
    assert.equal(rows.length, 34);

    server = await serveDatasetView(bundle);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await table?.close();
    await client?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const rowOf = (file: string) => rows.find((r) => r.image === file)!.row;

  it('a row’s ≈ lists its neighbours with their cosines; × clears; Most unique sorts; Duplicates shows the leaked pair', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
    const exportFile = path.join(tmp, 'selected.jsonl');
    let delivery = Promise.resolve();
    const session = new DatasetSession('Dataset: data', data, {
      inference: client,
      post: (message: DatasetHostMessage) => {
        delivery = delivery.then(() => page.evaluate((m) => window.postMessage(m, '*'), message)).catch(() => undefined);
      },
      openImage: () => undefined,
      copyText: async () => undefined,
      pickExportFile: async () => exportFile,
      overrides: { get: () => ({}), set: () => undefined },
      log: silentLogger,
      infoIntervalMs: 0,
      embeddings: { resultsFile, cacheFile, indexFile: path.join(tmp, 'results.index') },
      similarTopK: () => TOP_K,
    });
    try {
      await session.setTable(table);
      await page.exposeFunction('__vscodeForward', (message: unknown) => void session.receive(message));
      await page.goto(`${server.origin}/`);
      // The similarity features appear once the worker has the embeddings: the ≈ buttons, the Duplicates tab.
      await page.waitForFunction(() => !document.querySelector('#tab-duplicates').hidden && document.querySelector('#rows .row[data-row] .find-similar:not([hidden])'));
      assert.equal(await page.locator('#most-unique').isVisible(), true);
      assert.equal(await page.locator('.thead .c-uniq').isVisible(), true);
      assert.equal(await page.locator('.thead .c-sim').isVisible(), false, 'no Similarity column without a Find Similar result');

      // Find Similar on the original of the leaked pair.
      const query = rowOf(duplicate.original);
      const expected = await client.call('similarImages', { handle: (await client.call('loadEmbeddings', { resultsFile, cacheFile })).handle, query: { row: query }, k: TOP_K });
      // Narrow the table to the tabby folders (train and test) so the row is on screen, then its ≈ button.
      await page.selectOption('#filter-folder', '=tabby');
      await page.waitForFunction(() => document.querySelector('#result-count').textContent === '12 rows' && !document.querySelector('#rows .row.loading'));
      await page.locator(`#rows .row[data-row="${query}"] .find-similar`).click();
      await page.waitForFunction(() => !document.querySelector('#row-set').hidden);
      const chip = await page.locator('#row-set .chip-text').textContent();
      assert.equal(chip, `Similar to ${path.basename(duplicate.original)} (${TOP_K})`);
      await page.waitForFunction((n: number) => document.querySelectorAll('#rows .row[data-row]:not(.loading)').length === n && document.querySelector('#result-count').textContent === `${n} rows`, TOP_K);
      assert.equal(await page.locator('.thead .c-sim').isVisible(), true);
      const shown = await page.evaluate(() => [...document.querySelectorAll('#rows .row[data-row]')].map((r: any) => ({ row: Number(r.dataset.row), similarity: r.querySelector('.c-sim').textContent })));
      assert.deepEqual(shown.map((s) => s.row), expected.map((n) => n.row), 'most similar first, as the worker ranked them');
      assert.deepEqual(shown.map((s) => s.similarity), expected.map((n) => n.similarity.toFixed(3)));
      assert.equal(shown[0].row, rowOf(duplicate.copy), 'the exact copy comes first');
      assert.equal(shown[0].similarity, '1.000');
      await page.waitForFunction(() => [...document.querySelectorAll('#rows .row[data-row] .c-thumb')].every((c: any) => c.querySelector('img[src^="data:image/"]')));
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dataset-similar.png') });

      // × goes back to every row, without the Similarity column.
      await page.locator('#clear-row-set').click();
      await page.waitForFunction(() => document.querySelector('#row-set').hidden && document.querySelector('#result-count').textContent === '34 rows');
      assert.equal(await page.locator('.thead .c-sim').isVisible(), false);

      // Most unique first.
      await page.locator('#most-unique').click();
      await page.waitForFunction(() => document.querySelector('.thead .c-uniq').getAttribute('aria-sort') === 'descending' && document.querySelector('#result-count').textContent === '34 rows' && document.querySelectorAll('#rows .row[data-row] .c-uniq .score-text').length >= 8 && !document.querySelector('#rows .row.loading'));
      const uniq = await page.evaluate(() => [...document.querySelectorAll('#rows .row[data-row] .c-uniq .score-text')].map((c: any) => Number(c.textContent)));
      assert.ok(uniq.length >= 8, `${uniq.length} uniqueness cells`);
      for (let i = 1; i < uniq.length; i++) assert.ok(uniq[i - 1] >= uniq[i], `not descending at ${i}: ${uniq}`);
      await page.locator('#least-unique').click();
      await page.waitForFunction(() => document.querySelector('.thead .c-uniq').getAttribute('aria-sort') === 'ascending' && document.querySelector('#result-count').textContent === '34 rows' && document.querySelectorAll('#rows .row[data-row] .c-uniq .score-text').length >= 8 && !document.querySelector('#rows .row.loading'));
      const least = await page.evaluate(() => [...document.querySelectorAll('#rows .row[data-row] .c-uniq .score-text')].map((c: any) => Number(c.textContent)));
      for (let i = 1; i < least.length; i++) assert.ok(least[i - 1] <= least[i], `not ascending at ${i}: ${least}`);
      assert.ok(least[0] <= uniq[uniq.length - 1]);

      // The Duplicates tab: the pair, exact, flagged as leakage between train and test.
      await page.locator('#tab-duplicates').click();
      await page.waitForFunction(() => document.querySelector('.dup-group[data-kind="exact"]'));
      const group = page.locator('.dup-group[data-kind="exact"]').first();
      assert.match((await group.locator('.leak-badge').textContent())!, /Leakage: test \+ train/);
      assert.deepEqual((await group.locator('.dup-name').allTextContents()).sort(), [path.basename(duplicate.copy), path.basename(duplicate.original)].sort());
      assert.match((await page.locator('#dup-summary').textContent())!, /span two split folders \(test, train\)/);
      await page.waitForFunction(() => [...document.querySelectorAll('.dup-group[data-kind="exact"] img')].every((img: any) => img.getAttribute('src')?.startsWith('data:image/')));
      // The threshold control asks again: at 0.5 the tiny random model links far more images.
      const before = await page.locator('.dup-group').count();
      await page.locator('#dup-threshold').fill('0.5');
      await page.waitForFunction((n: number) => document.querySelectorAll('.dup-group').length !== n || /near at cosine ≥ 0.5\)/.test(document.querySelector('#dup-summary').textContent), before);
      await page.locator('#dup-threshold').fill('0.99');
      await page.waitForFunction(() => /cosine ≥ 0.99\b/.test(document.querySelector('#dup-summary').textContent) && document.querySelector('.dup-group[data-kind="exact"]'));
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dataset-duplicates.png') });

      // Select the group and export the selection through the view's one export path.
      await page.locator('.dup-group[data-kind="exact"] button[data-action="select-group"]').first().click();
      await page.waitForFunction(() => document.querySelector('#dup-selection').textContent === '2 selected');
      await page.locator('#dup-export').click();
      await page.waitForFunction(() => /Exported 2 rows/.test(document.querySelector('#status').textContent));
      const exported = readFileSync(exportFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line).image).sort();
      assert.deepEqual(exported, [duplicate.copy, duplicate.original].sort());

      // Show in table: the table tab, just the group, with its chip.
      await page.locator('.dup-group[data-kind="exact"] button[data-action="show-group"]').first().click();
      await page.waitForFunction(() => document.querySelector('#tab-table').getAttribute('aria-selected') === 'true' && document.querySelector('#result-count').textContent === '2 rows' && !document.querySelector('#row-set').hidden);
      assert.match((await page.locator('#row-set .chip-text').textContent())!, /^Exact duplicates of .+ \(2\)$/);

      const all = (await page.evaluate(() => window.__vscode.posted)) as unknown[];
      for (const m of all) assert.equal(parseDatasetViewMessage(m).ok, true, JSON.stringify(m));
      assert.deepEqual(errors, []);
    } finally {
      session.dispose();
      await context.close();
    }
  });
});
