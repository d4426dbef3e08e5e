/**
 * The Model view's webview bundle in real Chromium (Debian's, driven by playwright-core): the built
 * dist/modelView.js on a page with a strict CSP and a stub acquireVsCodeApi, fed what the worker's modelInfo call
 * returns for a real converted model whose id2label skips a key. Assertions read the DOM and what the view posts.
 *
 * Needs /usr/bin/chromium (or CHROMIUM_PATH); without it the suite is skipped with that reason, except under CI,
 * where a missing browser is a failure.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import webpack, { type Configuration } from 'webpack';
import { BeitModel } from '../../src/core/beitModel';
import { describeModel } from '../../src/core/modelInfo';
import { parseModelViewMessage, type ModelInfoDto } from '../../src/shared/protocol';
import { gappedTinyModel } from '../helpers/gappedModel';
import { serveModelView, type TestServer } from '../webview/server';

// Page-side callbacks run in Chromium; the root tsconfig has no DOM lib, so they see the page untyped.
declare const document: any;
declare const window: any;

const ROOT = path.join(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results');
const haveChromium = existsSync(CHROMIUM);
const skipReason = !haveChromium && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)` : false;

async function buildModelViewBundle(outDir: string): Promise<string> {
  const configs = require(path.join(ROOT, 'webpack.config.js')) as Configuration[];
  const config = configs.find((c) => c.name === 'webview');
  assert.ok(config, 'webpack.config.js has no "webview" configuration');
  await new Promise<void>((resolve, reject) =>
    webpack({ ...config, mode: 'production', entry: { modelView: (config.entry as Record<string, string>).modelView }, output: { ...config.output, path: outDir } }, (err, stats) => {
      if (err) reject(err);
      else if (stats?.hasErrors()) reject(new Error(stats.toString('errors-only')));
      else resolve();
    }),
  );
  return path.join(outDir, 'modelView.js');
}

const rowsOf = (page: Page, testId: string) =>
  page.evaluate((id) => [...document.querySelectorAll(`[data-testid="${id}"] tbody tr`)].map((tr: any) => [...tr.children].map((td: any) => td.textContent)), testId);

describe('Model view webview in Chromium', { skip: skipReason }, () => {
  let tmp: string;
  let info: ModelInfoDto;
  let browser: Browser;
  let server: TestServer;

  before(async () => {
    if (!haveChromium) throw new Error(`Chromium is required under CI but is missing at ${CHROMIUM}: apt-get install -y chromium`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    tmp = mkdtempSync(path.join(tmpdir(), 'beit-lens-model-view-'));
    const [bundle, dir] = await Promise.all([buildModelViewBundle(path.join(tmp, 'bundle')), gappedTinyModel(path.join(tmp, 'model'))]);
    const model = await BeitModel.load(dir, { provider: 'cpu' });
    try {
      info = await describeModel(model);
    } finally {
      await model.dispose();
    }
    server = await serveModelView(bundle);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('shows configuration, inputs and outputs, parameters, precision, provider, files and a searchable label list with the gap', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage();
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await page.goto(`${server.origin}/`);
    await page.waitForFunction(() => window.__vscode?.posted.length > 0);
    const posted = await page.evaluate(() => window.__vscode.posted);
    assert.deepEqual(posted, [{ type: 'ready' }]);
    assert.ok(parseModelViewMessage(posted[0]).ok, 'the host accepts what the view posts');
    assert.equal(await page.textContent('[data-testid="status"]'), 'Loading the model…');

    await page.evaluate((m) => window.postMessage(m, '*'), { type: 'modelInfo', info });
    await page.waitForSelector('[data-testid="label-table"]');

    const summary = Object.fromEntries(await rowsOf(page, 'summary'));
    assert.equal(summary['parameters'], info.parameters!.toLocaleString('en-US'));
    assert.ok(info.parameters! > 50_000);
    assert.equal(summary['weights dtype'], 'fp32');
    assert.equal(summary['compute type'], 'fp32');
    assert.equal(summary['provider in use'], 'cpu');
    assert.equal(summary['architecture'], 'BeitForImageClassification');
    assert.deepEqual(await rowsOf(page, 'config'), [['32', '2', '4', '8', '128', '224x224', '16x16', '14x14', '197', '1', 'mean', '1e-12']]);

    const io = await rowsOf(page, 'io');
    assert.deepEqual(io.find((r) => r[0] === 'model.logits.onnx' && r[2] === 'input')?.slice(3), ['pixel_values', 'float32', `[${info.graphs[0].inputs[0].shape[0]}, 3, 224, 224]`]);
    assert.deepEqual(io.find((r) => r[0] === 'model.logits.onnx' && r[2] === 'output')?.slice(3, 5), ['logits', 'float32']);
    assert.ok(io.filter((r) => r[0] === 'model.onnx' && r[2] === 'output').length >= 3, 'the explain graph lists attentions and patch logits');

    const files = Object.fromEntries(await rowsOf(page, 'files'));
    for (const f of ['model.onnx', 'model.logits.onnx', 'model.weights', 'config.json', 'beit-lens.json']) assert.match(files[f] ?? '', /^\d+(\.\d)? (B|KB|MB)$/, f);

    assert.match(await page.textContent('[data-testid="gaps"]') ?? '', /id2label skips key 3:/);
    const all = await rowsOf(page, 'label-table');
    assert.equal(all.length, 10);
    assert.equal(await page.textContent('[data-testid="label-count"]'), '10 labels match');
    // Before the gap index and key agree; from it on, the key is one more, and those rows are marked.
    assert.deepEqual(all.map((r) => [r[0], r[1], r[2]]), info.labels.map((l, i) => [String(i), String(i < 3 ? i : i + 1), l]));
    const shifted = await page.evaluate(() => [...document.querySelectorAll('[data-testid="label-table"] tbody tr.shifted')].length);
    assert.equal(shifted, 7);

    // A word of a fixture label finds exactly that label.
    const target = info.labels[5];
    const word = target.split(/[ ,]+/).find((w) => w.length > 3)!;
    await page.fill('[data-testid="label-filter"]', word.toUpperCase());
    const found = await rowsOf(page, 'label-table');
    assert.deepEqual(found, info.labels.flatMap((l, i) => (l.toLowerCase().includes(word.toLowerCase()) ? [[String(i), String(i < 3 ? i : i + 1), l]] : [])));
    assert.ok(found.some((r) => r[2] === target));
    await page.screenshot({ path: path.join(SCREENSHOTS, 'model-view.png'), fullPage: true });

    // A number finds the label with that index and the one with that id2label key.
    await page.fill('[data-testid="label-filter"]', '4');
    assert.deepEqual(await rowsOf(page, 'label-table'), [
      ['3', '4', info.labels[3]],
      ['4', '5', info.labels[4]],
    ]);
    await page.fill('[data-testid="label-filter"]', '#3');
    assert.deepEqual(await rowsOf(page, 'label-table'), [['3', '4', info.labels[3]]], 'key 3 is the gap: only index 3 matches');
    await page.fill('[data-testid="label-filter"]', 'no such label anywhere');
    assert.equal(await page.textContent('[data-testid="label-count"]'), '0 labels match');

    // The label text is text, never markup.
    await page.evaluate((m) => window.postMessage(m, '*'), { type: 'modelInfo', info: { ...info, labels: ['<img src=x onerror=alert(1)>', ...info.labels.slice(1)] } });
    await page.waitForFunction(() => document.querySelector('[data-testid="label-count"]')?.textContent === '10 labels match');
    assert.equal(await page.evaluate(() => document.querySelectorAll('[data-testid="label-table"] img').length), 0);
    assert.deepEqual(await page.evaluate(() => window.__vscode.cspViolations), []);
    assert.deepEqual(consoleErrors, []);

    // Graphs on beitLens.endpoint: the row says where, in place of the local provider.
    await page.evaluate((m) => window.postMessage(m, '*'), { type: 'modelInfo', info: { ...info, remote: { endpoints: ['http://gpu-a:8000', 'https://gpu-b:8000'], modelName: 'beit' } } });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="summary"] td')].some((td: any) => td.textContent === 'runs on'));
    const remoteSummary = Object.fromEntries(await rowsOf(page, 'summary'));
    assert.equal(remoteSummary['runs on'], 'http://gpu-a:8000, https://gpu-b:8000 (model beit, beitLens.endpoint)');
    assert.equal(remoteSummary['provider in use'], undefined);

    // An error from the host replaces the view with one line.
    await page.evaluate(() => window.postMessage({ type: 'error', message: 'no model: run BEiT Lens: Download Model' }, '*'));
    assert.equal(await page.textContent('[data-testid="status"]'), 'no model: run BEiT Lens: Download Model');
  });

  it('the host drops anything but ready', () => {
    assert.ok(parseModelViewMessage({ type: 'ready' }).ok);
    assert.equal(parseModelViewMessage({ type: 'ready', extra: 1 }).ok, false);
    assert.equal(parseModelViewMessage({ type: 'modelInfo' }).ok, false);
    assert.equal(parseModelViewMessage('ready').ok, false);
  });
});
