/**
 * The explanation panel's webview bundle in real Chromium (Debian's, driven by playwright-core):
 * the built dist/webview.js on a page with the panel's CSP and a stub acquireVsCodeApi, fed the
 * tiny fixture model's real explanation of a fixture image. Assertions read the overlay canvas's
 * pixels, the DOM text and the messages the panel posts.
 *
 * Needs /usr/bin/chromium (apt-get install -y chromium) or CHROMIUM_PATH. Without it the browser
 * suite is skipped with that reason, except under CI, where a missing browser is a failure. The
 * DOM-free parts of the bundle (message checks, geometry, state, formatting) are tested first, in
 * Node, with or without a browser.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import webpack, { type Configuration } from 'webpack';
import fc from 'fast-check';
import { colormap, COLORMAP_BOTTOM, COLORMAP_TOP } from '../../src/webview/colormap';
import { roundedPercents } from '../../src/webview/format';
import { patchAt, patchRect } from '../../src/webview/geometry';
import { asExtensionMessage } from '../../src/webview/messages';
import { restoreState } from '../../src/webview/state';
import { parseWebviewMessage, type ExplanationDto, type ExtensionToWebviewMessage } from '../../src/shared/protocol';
import { layoutLegendStrip, legendSpec, paintLegendStrip } from '../../src/shared/legendStrip';
import sharp from 'sharp';
import { loadWebviewFixture, type WebviewFixture } from '../webview/fixture';
import { serveImage, servePanel, type TestServer } from '../webview/server';

// Page-side callbacks run in Chromium; the root tsconfig has no DOM lib, so they see the page untyped.
declare const document: any;
declare const window: any;

const ROOT = path.join(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results');
const haveChromium = existsSync(CHROMIUM);
const skipReason = !haveChromium && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)` : false;

type Rgba = [number, number, number, number];
type Posted = { type: string; [key: string]: unknown };

/**
 * Builds the webview exactly as shipped (production mode) into a temporary folder, so the test
 * neither depends on nor overwrites whatever is in dist/. Returns the bundle's path.
 */
async function buildWebviewBundle(outDir: string): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const configs = require(path.join(ROOT, 'webpack.config.js')) as Configuration[];
  const config = configs.find((c) => c.name === 'webview');
  assert.ok(config, 'webpack.config.js has no "webview" configuration');
  await new Promise<void>((resolve, reject) =>
    webpack({ ...config, mode: 'production', output: { ...config.output, path: outDir } }, (err, stats) => {
      if (err) reject(err);
      else if (stats?.hasErrors()) reject(new Error(stats.toString('errors-only')));
      else resolve();
    }),
  );
  return path.join(outDir, 'webview.js');
}

function assertColor(actual: readonly number[], expected: readonly number[], tolerance: number, what: string): void {
  const off = expected.map((e, i) => Math.abs(actual[i] - e));
  assert.ok(
    off.every((d) => d <= tolerance),
    `${what}: expected rgb(${expected.map(Math.round).join(', ')}) ±${tolerance}, got rgba(${actual.join(', ')})`,
  );
}

function argmax(values: readonly number[]): number {
  return values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
}

function argmin(values: readonly number[]): number {
  return values.reduce((best, v, i) => (v < values[best] ? i : best), 0);
}

/** The canvas pixel at a patch's centre; the canvas backing store has the image's size here. */
function patchCentre(patch: number, grid: number, width: number, height: number): [number, number] {
  const row = Math.floor(patch / grid);
  const col = patch % grid;
  return [Math.floor(((col + 0.5) * width) / grid), Math.floor(((row + 0.5) * height) / grid)];
}

/**
 * Max colour change per LUT step near the top of viridis is about 3 levels; sampling half a pixel off
 * a patch centre moves the bilinear value by ~1% of a neighbour's difference, a few LUT steps.
 */
const HEAT_TOLERANCE = 12;
/** Alpha below 255 is stored premultiplied, so colours read back can be off by a level or two. */
const FLAT_TOLERANCE = 3;

/** A small but complete explanation (2x2 patches) for the message checks. */
function tinyExplanation(): ExplanationDto {
  return {
    requestId: 1,
    image: { src: 'data:image/png;base64,AAAA', name: 'a.png', width: 4, height: 3 },
    top: [{ index: 2, label: 'cat', score: 0.5 }],
    grid: 2,
    leadingTokens: 1,
    layers: 1,
    heads: 2,
    rollout: { headFusion: 'mean', discardRatio: 0.9, map: [1, 0.5, 0.25, 0] },
    patchArgmax: [2, 2, 0, 1],
    patchScore: [0.5, 0.4, 0.3, 0.2],
    legend: [
      { index: 2, label: 'cat', patches: 2, share: 0.5, color: [1, 2, 3] },
      { index: 0, label: 'dog', patches: 1, share: 0.25, color: [4, 5, 6] },
      { index: 1, label: 'eel', patches: 1, share: 0.25, color: [7, 8, 9] },
    ],
    provider: 'cpu',
  };
}

describe('webview bundle, DOM-free parts', () => {
  it('accepts every well-formed message and checks map lengths against the current grid', () => {
    const e = tinyExplanation();
    const valid: ExtensionToWebviewMessage[] = [
      { type: 'loading', requestId: 1, image: 'a.png' },
      { type: 'explanation', explanation: e },
      { type: 'rollout', requestId: 1, headFusion: 'max', discardRatio: 0, map: [0, 0, 0, 1] },
      { type: 'classHeatmap', requestId: 1, classIndex: 3, label: 'x', logits: [-1, 2, 3, 4] },
      { type: 'patchAttention', requestId: 1, patch: 3, layer: 0, head: 'mean', map: [0.1, 0.2, 0.3, 0.4] },
      { type: 'patchAttention', requestId: 1, patch: 3, layer: 0, head: 1, map: [0.1, 0.2, 0.3, 0.4] },
      { type: 'error', requestId: 1, message: 'no' },
      { type: 'exported', file: '/tmp/a.png' },
    ];
    for (const m of valid) assert.equal(asExtensionMessage(m, 4), m, m.type);
    assert.equal(asExtensionMessage(valid[2], 9), undefined, 'a 2x2 map does not fit a 3x3 grid');
    assert.equal(asExtensionMessage(valid[2], undefined), undefined, 'no reply before an explanation');
  });

  it('never throws on arbitrary or mutated messages, and rejects what breaks the shape', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true }), fc.option(fc.nat(300)), (data, patches) => {
        asExtensionMessage(data, patches ?? undefined);
      }),
      { numRuns: 2000 },
    );
    const fields = ['requestId', 'image', 'top', 'grid', 'layers', 'heads', 'rollout', 'patchArgmax', 'patchScore', 'legend', 'provider'] as const;
    const bad = fc.constantFrom<unknown>(undefined, null, Number.NaN, -1, 1.5, true, {}, [{ index: -1 }]);
    fc.assert(
      fc.property(fc.constantFrom(...fields), bad, (field, value) => {
        const explanation: Record<string, unknown> = { ...tinyExplanation(), [field]: value };
        assert.equal(asExtensionMessage({ type: 'explanation', explanation }, undefined), undefined, `${field} = ${String(value)}`);
      }),
      { numRuns: 500 },
    );
  });

  it('rounds legend shares so they add up to exactly 100%', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 196 }), { minLength: 1, maxLength: 40 }), (counts) => {
        const total = counts.reduce((a, b) => a + b, 0);
        const shown = roundedPercents(counts.map((c) => c / total)).map(Number);
        assert.equal(Math.round(shown.reduce((a, b) => a + b, 0) * 10), 1000);
        shown.forEach((s, i) => assert.ok(Math.abs(s - (counts[i] / total) * 100) < 0.1 + 1e-9));
      }),
    );
  });

  it('tiles any surface with patches, and maps every pixel back to the patch drawn there', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 16 }), (width, height, grid) => {
        const owner = new Int32Array(width * height).fill(-1);
        for (let p = 0; p < grid * grid; p++) {
          const r = patchRect(p, grid, width, height);
          for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) {
            assert.equal(owner[y * width + x], -1, 'patches overlap');
            owner[y * width + x] = p;
          }
        }
        for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
          assert.equal(patchAt(x + 0.5, y + 0.5, width, height, grid)?.index, owner[y * width + x], `pixel ${x},${y}`);
        }
      }),
      { numRuns: 60 },
    );
    assert.equal(patchAt(640, 10, 640, 480, 14), undefined);
    assert.equal(patchAt(-0.01, 10, 640, 480, 14), undefined);
    assert.deepEqual(patchAt(639.9, 479.9, 640, 480, 14), { row: 13, col: 13, index: 195 });
  });

  it('restores only valid state fields, preferring the image path the host wrote into the page', () => {
    assert.deepEqual(restoreState(undefined, undefined), { overlay: 'rollout', opacity: 0.6 });
    assert.deepEqual(restoreState({ overlay: 'patches', opacity: 0.2, imagePath: '/a.png' }, undefined), { imagePath: '/a.png', overlay: 'patches', opacity: 0.2 });
    assert.deepEqual(restoreState({ overlay: 'patches', opacity: 0.2, imagePath: '/a.png' }, '/b.png'), { imagePath: '/b.png', overlay: 'patches', opacity: 0.2 });
    assert.deepEqual(restoreState({ overlay: 'eval', opacity: 7, imagePath: 3 }, undefined), { overlay: 'rollout', opacity: 0.6 });
    assert.deepEqual(restoreState('junk', ''), { overlay: 'rollout', opacity: 0.6 });
  });
});

describe('explanation panel webview in Chromium', { skip: skipReason }, () => {
  let browser: Browser;
  let context: BrowserContext;
  let panelServer: TestServer;
  let imageServer: TestServer;
  let fixture: WebviewFixture;
  let explanation: ExplanationDto;
  let grid: number;
  let bundleDir: string;

  before(async () => {
    if (!haveChromium) throw new Error(`Chromium is required under CI but is missing at ${CHROMIUM}: apt-get install -y chromium`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    bundleDir = mkdtempSync(path.join(tmpdir(), 'beit-lens-webview-bundle-'));
    let bundle: string;
    [fixture, bundle] = await Promise.all([loadWebviewFixture({ requestId: 7 }), buildWebviewBundle(bundleDir)]);
    const code = readFileSync(bundle, 'utf8');
    assert.ok(!/\beval\(|new Function\(/.test(code), 'the bundle must run under a CSP without unsafe-eval');
    assert.ok(!code.includes('zod'), 'protocol types only: zod stays out of the webview bundle');
    explanation = fixture.explanation;
    grid = explanation.grid;
    imageServer = await serveImage(fixture.imageBytes, 'image/jpeg');
    panelServer = await servePanel(bundle, [imageServer.origin]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    // One context for all tests: a context per test costs seconds on a busy machine, and each test
    // still gets its own page, init script and VS Code stub.
    context = await browser.newContext({ viewport: { width: 1180, height: 760 }, deviceScaleFactor: 1 });
  });

  after(async () => {
    await browser?.close();
    await panelServer?.close();
    await imageServer?.close();
    await fixture?.dispose();
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  });

  interface Panel {
    page: Page;
    errors: string[];
    warnings: string[];
  }

  async function openPanel(initialState?: unknown): Promise<Panel> {
    const page = await context.newPage();
    const errors: string[] = [];
    const warnings: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
      if (msg.type() === 'warning') warnings.push(msg.text());
    });
    if (initialState !== undefined) await page.addInitScript((s) => (window.__vscodeInitialState = s), initialState);
    await page.goto(`${panelServer.origin}/`);
    await page.waitForFunction(() => window.__vscode?.posted.some((m: Posted) => m.type === 'ready'));
    return { page, errors, warnings };
  }

  async function openWithExplanation(dto: ExplanationDto = explanation, initialState?: unknown): Promise<Panel> {
    const panel = await openPanel(initialState);
    await send(panel.page, { type: 'explanation', explanation: dto });
    await panel.page.waitForFunction(() => {
      const img = document.querySelector('#image');
      return img.complete && img.naturalWidth > 0;
    });
    return panel;
  }

  /** Resolves once the panel's own listener (registered first) has handled the message. */
  async function send(page: Page, message: ExtensionToWebviewMessage | unknown): Promise<void> {
    await page.evaluate(
      (m) =>
        new Promise<void>((resolve) => {
          window.addEventListener('message', () => resolve(), { once: true });
          window.postMessage(m, '*');
        }),
      message,
    );
  }

  async function posted(page: Page): Promise<Posted[]> {
    return page.evaluate(() => window.__vscode.posted);
  }

  async function lastPosted(page: Page, type: string): Promise<Posted | undefined> {
    return (await posted(page)).filter((m) => m.type === type).at(-1);
  }

  async function pixel(page: Page, x: number, y: number): Promise<Rgba> {
    return page.evaluate(([px, py]) => Array.from(document.querySelector('#overlay').getContext('2d').getImageData(px, py, 1, 1).data) as Rgba, [x, y] as const);
  }

  async function canvasInfo(page: Page): Promise<{ width: number; height: number; overlay: string; frame: number }> {
    return page.evaluate(() => {
      const c = document.querySelector('#overlay');
      return { width: c.width, height: c.height, overlay: c.dataset.overlay, frame: Number(c.dataset.frame) };
    });
  }

  async function patchPixel(page: Page, patch: number): Promise<Rgba> {
    const { width, height } = await canvasInfo(page);
    return pixel(page, ...patchCentre(patch, grid, width, height));
  }

  /** A hash of the whole overlay, to tell whether a message changed what is drawn. */
  async function canvasDigest(page: Page): Promise<number> {
    return page.evaluate(() => {
      const c = document.querySelector('#overlay');
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let h = 2166136261;
      for (let i = 0; i < data.length; i += 7) h = Math.imul(h ^ data[i], 16777619);
      return h >>> 0;
    });
  }

  /** Client coordinates of a patch's centre on screen, for real mouse clicks. */
  async function patchOnScreen(page: Page, patch: number): Promise<{ x: number; y: number }> {
    const box = await page.locator('#overlay').boundingBox();
    assert.ok(box);
    const row = Math.floor(patch / grid);
    const col = patch % grid;
    return { x: box.x + ((col + 0.5) / grid) * box.width, y: box.y + ((row + 0.5) / grid) * box.height };
  }

  async function setRange(page: Page, selector: string, value: number): Promise<void> {
    await page.locator(selector).evaluate((input: any, v: number) => {
      input.value = String(v);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    }, value);
  }

  async function screenshot(page: Page, name: string, options: { keepPointer?: boolean } = {}): Promise<void> {
    if (!options.keepPointer) await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(SCREENSHOTS, `webview-${name}.png`), fullPage: true });
  }

  /** Every test ends here: no script errors, no CSP violations, and every posted message is valid. */
  async function finish({ page, errors }: Panel): Promise<void> {
    const record = await page.evaluate(() => window.__vscode);
    await page.close();
    assert.deepEqual(errors, [], `page errors: ${errors.join('; ')}`);
    assert.deepEqual(record.cspViolations, [], 'CSP violations');
    assert.equal(record.acquired, 1, 'acquireVsCodeApi is called once');
    for (const message of record.posted) {
      const parsed = parseWebviewMessage(message);
      assert.ok(parsed.ok, `posted message fails the protocol schema: ${JSON.stringify(message).slice(0, 200)} (${parsed.ok ? '' : parsed.error})`);
    }
  }

  it('posts ready and stores the image path the host wrote into the page', async () => {
    const panel = await openPanel();
    const states = await panel.page.evaluate(() => window.__vscode.states);
    assert.deepEqual((await posted(panel.page)).map((m) => m.type), ['ready']);
    assert.deepEqual(states.at(-1), { imagePath: '/workspace/images/gradient_640x480.jpg', overlay: 'rollout', opacity: 0.6 });
    await finish(panel);
  });

  it('draws the attention rollout through the colormap, top colour at the most attended patch', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    const info = await canvasInfo(page);
    assert.deepEqual([info.width, info.height, info.overlay], [explanation.image.width, explanation.image.height, 'rollout']);
    const map = explanation.rollout.map;
    const hottest = argmax(map);
    assert.equal(map[hottest], 1, 'the core scales rollout to its maximum');
    const top = await patchPixel(page, hottest);
    assertColor(top, COLORMAP_TOP, HEAT_TOLERANCE, `most attended patch ${hottest}`);
    assert.equal(top[3], Math.round(0.6 * 255), 'alpha is the default opacity');
    for (const patch of [argmin(map), 0, grid * grid - 1, 5 * grid + 9]) {
      assertColor(await patchPixel(page, patch), colormap(map[patch]), HEAT_TOLERANCE, `patch ${patch} (rollout ${map[patch].toFixed(3)})`);
    }
    assert.match(await page.locator('#title').textContent() ?? '', /gradient_640x480\.jpg/);
    await screenshot(page, 'rollout');
    await finish(panel);
  });

  it('asks for a new rollout when head fusion or discard ratio change and draws only the latest reply', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    await page.selectOption('#head-fusion', 'max');
    assert.deepEqual(await lastPosted(page, 'setRollout'), { type: 'setRollout', requestId: 7, headFusion: 'max', discardRatio: 0.9 });
    await setRange(page, '#discard-ratio', 0.5);
    assert.deepEqual(await lastPosted(page, 'setRollout'), { type: 'setRollout', requestId: 7, headFusion: 'max', discardRatio: 0.5 });
    assert.equal(await page.locator('#discard-ratio-value').textContent(), '0.50');

    const before = await canvasDigest(page);
    await send(page, fixture.rollout('max', 0.9)); // the answer to the first, superseded request
    assert.equal(await canvasDigest(page), before, 'a reply to a superseded request is not drawn');

    const reply = fixture.rollout('max', 0.5);
    await send(page, reply);
    assert.notEqual(await canvasDigest(page), before);
    assertColor(await patchPixel(page, argmax(reply.map)), COLORMAP_TOP, HEAT_TOLERANCE, 'hottest patch of the new rollout');
    for (const patch of [argmin(reply.map), 3 * grid + 4, 11 * grid + 2]) {
      assertColor(await patchPixel(page, patch), colormap(reply.map[patch]), HEAT_TOLERANCE, `patch ${patch} of the new rollout`);
    }
    assert.match((await page.locator('#overlay').getAttribute('aria-label')) ?? '', /max head fusion, discard ratio 0\.50/);
    await finish(panel);
  });

  it('colours each patch with its legend class colour at the set opacity, and the legend adds up to 100%', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    await page.getByRole('radio', { name: 'Patch predictions' }).check();
    assert.equal((await canvasInfo(page)).overlay, 'patches');
    assert.deepEqual(await lastPosted(page, 'state'), { type: 'state', overlay: 'patches', opacity: 0.6 });

    for (const entry of explanation.legend) {
      const patch = explanation.patchArgmax.indexOf(entry.index);
      const rgba = await patchPixel(page, patch);
      assertColor(rgba, entry.color, FLAT_TOLERANCE, `patch ${patch} of class ${entry.label}`);
      assert.equal(rgba[3], 153, 'alpha is 60% opacity');
    }

    const items: { label: string; share: string; swatch: string }[] = await page.locator('#legend li').evaluateAll((lis: any[]) =>
      lis.map((li) => ({ label: li.querySelector('.label').textContent, share: li.querySelector('.share').textContent, swatch: window.getComputedStyle(li.querySelector('.swatch')).backgroundColor })),
    );
    assert.deepEqual(items.map((i) => i.label), explanation.legend.map((l) => l.label), 'legend names the fixture labels, most patches first');
    assert.ok(items.some((i) => i.label === 'crème brûlée, burnt cream'), 'non-ASCII labels come through as text');
    const shares = items.map((i) => Number(/^([\d.]+)%$/.exec(i.share)?.[1]));
    assert.equal(Math.round(shares.reduce((a, b) => a + b, 0) * 10), 1000, `shares ${shares.join(', ')} add up to 100%`);
    shares.forEach((s, i) => assert.ok(Math.abs(s - explanation.legend[i].share * 100) <= 0.1, `share of ${explanation.legend[i].label}`));
    items.forEach((item, i) => assert.equal(item.swatch, `rgb(${explanation.legend[i].color.join(', ')})`));
    await screenshot(page, 'patches');
    await finish(panel);
  });

  it('changes the overlay alpha with the opacity slider and persists it', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    const patch = argmax(explanation.rollout.map);
    await setRange(page, '#opacity', 30);
    assert.equal((await patchPixel(page, patch))[3], Math.round(0.3 * 255));
    assert.deepEqual(await lastPosted(page, 'state'), { type: 'state', overlay: 'rollout', opacity: 0.3 });
    assert.deepEqual(await page.evaluate(() => window.__vscode.states.at(-1)), { imagePath: '/workspace/images/gradient_640x480.jpg', overlay: 'rollout', opacity: 0.3 });
    await setRange(page, '#opacity', 100);
    const opaque = await patchPixel(page, patch);
    assert.equal(opaque[3], 255);
    assertColor(opaque, COLORMAP_TOP, HEAT_TOLERANCE, 'fully opaque hottest patch');
    await setRange(page, '#opacity', 0);
    assert.equal((await patchPixel(page, patch))[3], 0);
    assert.equal(await page.locator('#opacity-value').textContent(), '0%');
    await finish(panel);
  });

  it('requests a class heatmap for a clicked top-K label and draws the reply', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    const labels = await page.locator('.top-k .label').allTextContents();
    assert.deepEqual(labels, explanation.top.map((p) => p.label));
    const chosen = explanation.top[1];
    const before = await canvasDigest(page);
    await page.getByRole('button', { name: chosen.label }).first().click();
    assert.deepEqual(await lastPosted(page, 'selectClass'), { type: 'selectClass', requestId: 7, classIndex: chosen.index });
    assert.equal(await canvasDigest(page), before, 'nothing changes until the reply');

    await send(page, fixture.classHeatmap(explanation.top[2].index)); // not what was asked for last
    assert.equal(await canvasDigest(page), before);

    const reply = fixture.classHeatmap(chosen.index);
    await send(page, reply);
    assert.equal((await canvasInfo(page)).overlay, 'class');
    assert.ok(await page.getByRole('radio', { name: 'Class heatmap' }).isChecked());
    assert.notEqual(await canvasDigest(page), before, 'the class heatmap changes the pixels');
    assertColor(await patchPixel(page, argmax(reply.logits)), COLORMAP_TOP, HEAT_TOLERANCE, 'patch with the highest logit');
    assertColor(await patchPixel(page, argmin(reply.logits)), COLORMAP_BOTTOM, HEAT_TOLERANCE, 'patch with the lowest logit');
    const min = Math.min(...reply.logits);
    const range = Math.max(...reply.logits) - min;
    for (const patch of [0, 6 * grid + 6, 13 * grid + 1]) {
      assertColor(await patchPixel(page, patch), colormap((reply.logits[patch] - min) / range), HEAT_TOLERANCE, `patch ${patch}, min-max scaled logit`);
    }
    assert.equal(await page.locator(`.top-k button[data-class-index="${chosen.index}"]`).getAttribute('aria-pressed'), 'true');
    assert.match((await page.locator('.scale-caption').textContent()) ?? '', new RegExp(`logits of ${chosen.label}`));
    await screenshot(page, 'class');
    await finish(panel);
  });

  it('round-trips a clicked patch: selectPatch for that patch, attention drawn, patch highlighted', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    const clicked = 3 * grid + 10;
    const lastLayer = explanation.layers - 1;

    const at = await patchOnScreen(page, clicked);
    await page.mouse.move(at.x, at.y);
    const tooltip = await page.locator('#patch-tooltip').innerText();
    assert.match(tooltip, new RegExp(`Patch ${clicked} \\(row 3, col 10; token ${explanation.leadingTokens + clicked}\\)`));
    const cls = explanation.patchArgmax[clicked];
    const label = explanation.legend.find((l) => l.index === cls)?.label ?? '';
    assert.ok(tooltip.includes(`${label}: ${(explanation.patchScore[clicked] * 100).toFixed(1)}%`), `tooltip shows argmax label and score: ${tooltip}`);
    assert.ok(tooltip.includes(`Rollout ${explanation.rollout.map[clicked].toFixed(3)}`), tooltip);

    await page.mouse.click(at.x, at.y);
    assert.deepEqual(await lastPosted(page, 'selectPatch'), { type: 'selectPatch', requestId: 7, patch: clicked, layer: lastLayer, head: 'mean' });
    await page.selectOption('#head', '1');
    assert.deepEqual(await lastPosted(page, 'selectPatch'), { type: 'selectPatch', requestId: 7, patch: clicked, layer: lastLayer, head: 1 });

    const before = await canvasDigest(page);
    await send(page, fixture.patchAttention(clicked, lastLayer, 'mean')); // superseded by the head change
    assert.equal(await canvasDigest(page), before);

    const reply = fixture.patchAttention(clicked, lastLayer, 1);
    await send(page, reply);
    assert.equal((await canvasInfo(page)).overlay, 'patchAttention');
    assert.ok(await page.getByRole('radio', { name: 'Attention from a patch' }).isChecked());
    const hottest = argmax(reply.map);
    assertColor(await patchPixel(page, hottest), COLORMAP_TOP, HEAT_TOLERANCE, `patch ${hottest}, most attended from ${clicked}`);
    assertColor(await patchPixel(page, argmin(reply.map)), COLORMAP_BOTTOM, HEAT_TOLERANCE, 'least attended patch');

    // The clicked patch is outlined in the theme's focus colour (#0078d4 in the test theme).
    const { width, height } = await canvasInfo(page);
    const x0 = Math.round((10 * width) / grid);
    const yMid = Math.floor((3.5 * height) / grid);
    assertColor(await pixel(page, x0 + 1, yMid), [0, 0x78, 0xd4], 2, 'outline of the clicked patch');
    assert.match((await page.locator('.scale-caption').textContent()) ?? '', new RegExp(`attention of patch ${clicked}, layer ${lastLayer + 1}, head 2`));
    await screenshot(page, 'patch-attention');
    const hovered = await patchOnScreen(page, hottest);
    await page.mouse.move(hovered.x, hovered.y);
    assert.match(await page.locator('#patch-tooltip').innerText(), new RegExp(`Attention from patch ${clicked}: ${reply.map[hottest].toFixed(4)}`));
    await screenshot(page, 'tooltip', { keepPointer: true });
    await finish(panel);
  });

  it('selects patches from the keyboard', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    await page.locator('#overlay').focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowUp');
    const centre = Math.floor(grid / 2) * grid + Math.floor(grid / 2);
    const expected = centre - grid + 1;
    assert.match(await page.locator('#patch-tooltip').innerText(), new RegExp(`Patch ${expected} `));
    await page.keyboard.press('Enter');
    assert.deepEqual(await lastPosted(page, 'selectPatch'), { type: 'selectPatch', requestId: 7, patch: expected, layer: explanation.layers - 1, head: 'mean' });
    await finish(panel);
  });

  it('exports the image with the overlay composited as a PNG data URL', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    await page.getByRole('radio', { name: 'Patch predictions' }).check();
    await page.getByRole('button', { name: 'Export PNG' }).click();
    const message = await lastPosted(page, 'exportPng');
    assert.ok(message);
    assert.equal(message.suggestedName, 'gradient_640x480-patches.png');
    const dataUrl = String(message.dataUrl);
    assert.ok(dataUrl.startsWith('data:image/png;base64,'));
    const png = Buffer.from(dataUrl.slice('data:image/png;base64,'.length), 'base64');
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    // The image, then the legend strip the CLI draws too: same layout, same painter.
    const spec = legendSpec({ kind: 'patches', entries: explanation.legend }, explanation.top[0], 0.6);
    const strip = layoutLegendStrip(explanation.image.width, spec);
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [explanation.image.width, explanation.image.height + strip.height], 'PNG IHDR size: image plus legend strip');

    // Decode the export and the bare image in the page: each export pixel is image blended with class colour.
    const patch = explanation.patchArgmax.indexOf(explanation.legend[0].index);
    const [x, y] = patchCentre(patch, grid, explanation.image.width, explanation.image.height);
    const [exported, bare]: number[][] = await page.evaluate(
      ([sources, px, py]) =>
        Promise.all(
          sources.map(async (src: string) => {
            const img = new window.Image();
            img.src = src;
            await img.decode();
            const c = document.createElement('canvas');
            c.width = img.naturalWidth;
            c.height = img.naturalHeight;
            const ctx = c.getContext('2d');
            ctx.drawImage(img, 0, 0, c.width, c.height);
            return Array.from(ctx.getImageData(px, py, 1, 1).data) as number[];
          }),
        ),
      [[dataUrl, explanation.image.src], x, y] as const,
    );
    const a = 153 / 255;
    const color = explanation.legend[0].color;
    assertColor(exported, color.map((c, i) => bare[i] * (1 - a) + c * a), FLAT_TOLERANCE, 'exported pixel = image blended with class colour at 60%');
    assert.equal(exported[3], 255);

    // Every strip pixel is what the shared painter makes: swatches in the legend colours, text, background.
    const expectedStrip = paintLegendStrip(explanation.image.width, spec).rgba;
    const stripPixels: number[] = await page.evaluate(
      async ([src, top]) => {
        const img = new window.Image();
        img.src = src;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return Array.from(ctx.getImageData(0, top, c.width, c.height - top).data) as number[];
      },
      [dataUrl, explanation.image.height] as const,
    );
    assert.equal(stripPixels.length, expectedStrip.length);
    let differing = 0;
    for (let i = 0; i < stripPixels.length; i++) if (stripPixels[i] !== expectedStrip[i]) differing++;
    assert.equal(differing, 0, 'legend strip pixels equal the shared painter');
    const swatches = strip.items.filter((i) => i.kind === 'swatch');
    assert.equal(swatches.length, Math.min(explanation.legend.length, swatches.length));
    assert.ok(swatches.length > 0);
    for (const [i, sw] of swatches.entries()) {
      if (sw.kind !== 'swatch') continue;
      const o = ((sw.y + (sw.size >> 1)) * explanation.image.width + sw.x + (sw.size >> 1)) * 4;
      assert.deepEqual(stripPixels.slice(o, o + 3), explanation.legend[i].color, `swatch ${i}`);
    }

    // Saved: the file and a Reveal action, which asks the extension to show the file it wrote.
    await send(page, { type: 'exported', file: '/workspace/out/gradient_640x480-patches.png' });
    assert.match(await page.locator('#export-done').innerText(), /Saved \/workspace\/out\/gradient_640x480-patches\.png/);
    const reveal = page.getByRole('button', { name: 'Reveal in Explorer' });
    assert.ok(await reveal.isVisible());
    await screenshot(page, 'export-reveal');
    await reveal.click();
    assert.deepEqual(await lastPosted(page, 'revealExport'), { type: 'revealExport' });
    await finish(panel);
  });

  it('loads a webview-resource-like image from another origin with CORS, so export still works', async () => {
    const dto = { ...explanation, image: { ...explanation.image, src: `${imageServer.origin}/gradient_640x480.jpg` } };
    const panel = await openWithExplanation(dto);
    const { page } = panel;
    assert.equal(await page.locator('#image').getAttribute('crossorigin'), 'anonymous');
    await page.getByRole('button', { name: 'Export PNG' }).click();
    const message = await lastPosted(page, 'exportPng');
    assert.ok(String(message?.dataUrl).startsWith('data:image/png;base64,'), 'canvas is not tainted');
    await finish(panel);
  });

  it('ignores replies for another explanation and explanations superseded by a newer request', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    // Ask for one of each, then answer each for the wrong explanation.
    await page.selectOption('#head-fusion', 'min');
    await page.getByRole('button', { name: explanation.top[0].label }).first().click();
    const target = await patchOnScreen(page, 20);
    await page.mouse.click(target.x, target.y);
    const before = await canvasDigest(page);
    const frame = (await canvasInfo(page)).frame;
    await send(page, fixture.rollout('min', 0.9, 6));
    await send(page, fixture.classHeatmap(explanation.top[0].index, 8));
    await send(page, fixture.patchAttention(20, 1, 'mean', 99));
    await send(page, { type: 'error', requestId: 3, message: 'an old failure' });
    assert.equal((await canvasInfo(page)).frame, frame, 'no stale reply triggered a redraw');
    assert.equal(await canvasDigest(page), before);
    assert.equal(await page.locator('#status').innerText().then((t) => t.includes('old failure')), false);

    // A new request for another image is under way: the old explanation arriving late is dropped.
    await send(page, { type: 'loading', requestId: 9, image: 'other.png' });
    await send(page, { type: 'explanation', explanation: { ...explanation, requestId: 8, image: { ...explanation.image, name: 'late.png' } } });
    assert.equal(await page.locator('#title').innerText(), 'gradient_640x480.jpg');
    await send(page, { type: 'explanation', explanation: { ...explanation, requestId: 9, image: { ...explanation.image, name: 'other.png' } } });
    assert.equal(await page.locator('#title').innerText(), 'other.png');
    await send(page, fixture.rollout('max', 0.5, 7));
    assert.equal(await page.locator('#head-fusion').inputValue(), 'mean', 'the previous explanation’s replies are stale now');

    await send(page, { type: 'error', requestId: 9, message: 'worker restarted' });
    assert.equal(await page.locator('#status').innerText(), 'worker restarted');
    assert.equal(await page.locator('#status').getAttribute('data-kind'), 'error');
    await finish(panel);
  });

  it('drops unknown and malformed messages without throwing', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    const before = await canvasDigest(page);
    const junk: unknown[] = [
      { type: 'selfDestruct' },
      { type: 'explanation' },
      { type: 'explanation', explanation: { ...explanation, grid: 15 } },
      { type: 'explanation', explanation: { ...explanation, patchArgmax: explanation.patchArgmax.slice(1) } },
      { type: 'rollout', requestId: 7, headFusion: 'median', discardRatio: 0.5, map: explanation.rollout.map },
      { type: 'rollout', requestId: 7, headFusion: 'mean', discardRatio: 0.5, map: [1, 2, 3] },
      { type: 'classHeatmap', requestId: 7, classIndex: -1, label: 'x', logits: explanation.rollout.map },
      { type: 'patchAttention', requestId: 7, patch: 1, layer: 0, head: 'all', map: explanation.rollout.map },
      { type: 'error', requestId: 'seven', message: 'x' },
      null,
      'explanation',
      42,
      [{ type: 'loading' }],
    ];
    for (const message of junk) await send(page, message);
    assert.equal(await canvasDigest(page), before);
    assert.ok(panel.warnings.filter((w) => w.startsWith('BEiT Lens: dropped')).length >= junk.length, 'each dropped message is logged');
    // Still alive: a valid reply afterwards is drawn.
    await page.getByRole('radio', { name: 'Patch predictions' }).check();
    assert.equal((await canvasInfo(page)).overlay, 'patches');
    assert.notEqual(await canvasDigest(page), before);
    await finish(panel);
  });

  it('restores overlay and opacity from saved state, and asks for the class heatmap it needs', async () => {
    const panel = await openWithExplanation(explanation, { imagePath: '/old/path.png', overlay: 'class', opacity: 0.35 });
    const { page } = panel;
    assert.ok(await page.getByRole('radio', { name: 'Class heatmap' }).isChecked());
    assert.equal(await page.locator('#opacity').inputValue(), '35');
    assert.deepEqual(await page.evaluate(() => window.__vscode.states[0]), { imagePath: '/workspace/images/gradient_640x480.jpg', overlay: 'class', opacity: 0.35 });
    assert.deepEqual(await lastPosted(page, 'selectClass'), { type: 'selectClass', requestId: 7, classIndex: explanation.top[0].index });
    const reply = fixture.classHeatmap(explanation.top[0].index);
    await send(page, reply);
    const hottest = await patchPixel(page, argmax(reply.logits));
    assert.equal(hottest[3], Math.round(0.35 * 255));
    await finish(panel);
  });

  it('labels every control and reaches it with Tab', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('input, select, button'))
        .filter((c: any) => !(c.labels?.length > 0 || c.textContent.trim() || c.getAttribute('aria-label')))
        .map((c: any) => c.outerHTML),
    );
    assert.deepEqual(unlabelled, []);
    const reached = new Set<string>();
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.className || document.activeElement?.tagName));
    }
    for (const id of ['overlay', 'overlay-rollout', 'opacity', 'head-fusion', 'discard-ratio', 'layer', 'head', 'export']) assert.ok(reached.has(id), `Tab reaches #${id} (${[...reached].join(', ')})`);
    assert.ok(reached.has('label-button'), 'Tab reaches the label buttons');
    await finish(panel);
  });
  /** Waits for layout and the zoom's resize observer to settle (two frames). */
  async function settle(page: Page): Promise<void> {
    await page.evaluate(() => new Promise((resolve) => window.requestAnimationFrame(() => window.requestAnimationFrame(resolve))));
  }

  interface Box {
    x: number;
    y: number;
    width: number;
    height: number;
    bottom: number;
    right: number;
  }

  async function boxOf(page: Page, selector: string): Promise<Box> {
    return page.evaluate((sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height, bottom: r.bottom, right: r.right };
    }, selector);
  }

  async function viewportScroll(page: Page): Promise<{ clientWidth: number; clientHeight: number; scrollWidth: number; scrollHeight: number; scrollTop: number }> {
    return page.evaluate(() => {
      const v = document.querySelector('#stage-viewport');
      return { clientWidth: v.clientWidth, clientHeight: v.clientHeight, scrollWidth: v.scrollWidth, scrollHeight: v.scrollHeight, scrollTop: v.scrollTop };
    });
  }

  it('fits a tall image to the view, toggles 1:1, zooms, and pans by dragging without selecting a patch', async () => {
    const tallPng = await sharp({ create: { width: 300, height: 1500, channels: 3, background: { r: 90, g: 140, b: 200 } } }).png().toBuffer();
    const tall: ExplanationDto = { ...explanation, image: { ...explanation.image, src: `data:image/png;base64,${tallPng.toString('base64')}`, name: 'tall.png', width: 300, height: 1500 } };
    const panel = await openWithExplanation(tall);
    const { page } = panel;
    await settle(page);
    const innerHeight: number = await page.evaluate(() => window.innerHeight);

    // Fit: the whole image on screen, aspect kept, nothing to scroll.
    let stage = await boxOf(page, '.stage');
    let scroll = await viewportScroll(page);
    assert.ok(stage.height <= scroll.clientHeight && stage.width <= scroll.clientWidth, `stage ${stage.width}x${stage.height} inside ${scroll.clientWidth}x${scroll.clientHeight}`);
    assert.ok(scroll.scrollHeight <= scroll.clientHeight, 'nothing to scroll when fitted');
    assert.ok(stage.bottom <= innerHeight, `fitted image ends at ${stage.bottom}, window is ${innerHeight} high`);
    assert.ok(Math.abs(stage.width / stage.height - 300 / 1500) < 0.01, 'aspect kept');
    assert.match(await page.locator('#zoom-value').innerText(), /^Fit \(\d+%\)$/);
    await screenshot(page, 'zoom-fit-tall');

    // 1:1: the image's own pixels, and the viewport scrolls.
    await page.getByRole('button', { name: '1:1', exact: true }).click();
    stage = await boxOf(page, '.stage');
    assert.deepEqual([Math.round(stage.width), Math.round(stage.height)], [300, 1500]);
    assert.ok((await viewportScroll(page)).scrollHeight > (await viewportScroll(page)).clientHeight, 'scrolls at 1:1');
    assert.equal(await page.locator('#zoom-value').innerText(), '100%');

    await page.getByRole('button', { name: 'Zoom in' }).click();
    stage = await boxOf(page, '.stage');
    assert.equal(Math.round(stage.width), 375, 'zoom in by 1.25');
    assert.equal(await page.locator('#zoom-value').innerText(), '125%');
    await page.getByRole('button', { name: 'Zoom out' }).click();
    assert.equal(Math.round((await boxOf(page, '.stage')).width), 300);

    // Dragging the image pans it; the press that started the drag selects no patch.
    const clicksBefore = (await posted(page)).filter((m) => m.type === 'selectPatch').length;
    const x = stage.x + stage.width / 2;
    const y = (await boxOf(page, '#stage-viewport')).y + 300;
    await page.mouse.move(x, y);
    await page.mouse.down();
    await page.mouse.move(x, y - 200, { steps: 8 });
    await page.mouse.up();
    scroll = await viewportScroll(page);
    assert.ok(scroll.scrollTop >= 190, `the drag scrolled the image (scrollTop ${scroll.scrollTop})`);
    assert.equal((await posted(page)).filter((m) => m.type === 'selectPatch').length, clicksBefore, 'a drag is not a patch click');
    await page.mouse.click(x, y);
    assert.equal((await posted(page)).filter((m) => m.type === 'selectPatch').length, clicksBefore + 1, 'a plain click still selects a patch');
    // Where it clicked: the patch under the pointer in the scrolled image.
    const clicked = (await lastPosted(page, 'selectPatch'))!;
    const stageNow = await boxOf(page, '.stage');
    const row = Math.floor(((y - stageNow.y) / stageNow.height) * grid);
    const col = Math.floor(((x - stageNow.x) / stageNow.width) * grid);
    assert.equal(clicked.patch, row * grid + col);

    await page.getByRole('button', { name: 'Fit', exact: true }).click();
    scroll = await viewportScroll(page);
    assert.ok(scroll.scrollHeight <= scroll.clientHeight, 'fitted again');
    assert.match(await page.locator('#zoom-value').innerText(), /^Fit/);
    await finish(panel);
  });

  it('keeps the controls reachable: a side panel when wide, stacked under a height-capped image when narrow', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    try {
      // Wide: the controls beside the image, all on screen (the side panel scrolls on its own).
      await page.setViewportSize({ width: 1180, height: 760 });
      await settle(page);
      let stage = await boxOf(page, '.stage');
      let sidebar = await boxOf(page, '.sidebar');
      assert.ok(sidebar.x >= stage.right, `side panel (x ${sidebar.x}) right of the image (ends ${stage.right})`);
      assert.ok(sidebar.bottom <= 760 + 1, `side panel ends at ${sidebar.bottom}`);
      assert.ok(stage.bottom <= 760, `image ends at ${stage.bottom}`);
      await screenshot(page, 'layout-wide');

      // Narrow, as beside an editor: the image capped to half the height, the controls start on screen.
      await page.setViewportSize({ width: 420, height: 700 });
      await settle(page);
      stage = await boxOf(page, '.stage');
      sidebar = await boxOf(page, '.sidebar');
      const picker = await boxOf(page, '.overlay-picker');
      assert.ok(sidebar.y >= stage.bottom, 'controls stacked below the image');
      assert.ok(stage.right <= 420 && stage.height <= 350 + 1, `image ${stage.width}x${stage.height} fits`);
      assert.ok(picker.y < 700 && (await page.getByRole('radio', { name: 'Patch predictions' }).isVisible()), `overlay controls start at ${picker.y}, on the first screen`);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling');
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'webview-layout-narrow.png') });
    } finally {
      await page.setViewportSize({ width: 1180, height: 760 });
    }
    await finish(panel);
  });

  it('clears the highlighted label when another overlay is shown, and highlights it again on return', async () => {
    const panel = await openWithExplanation();
    const { page } = panel;
    const chosen = explanation.top[0];
    await page.getByRole('button', { name: chosen.label }).first().click();
    await send(page, fixture.classHeatmap(chosen.index));
    const pressed = () => page.locator('.label-button[aria-pressed="true"]').evaluateAll((els: any[]) => els.map((e) => e.dataset.classIndex));
    assert.ok((await pressed()).length >= 1);
    assert.ok((await pressed()).every((i: string) => i === String(chosen.index)));
    for (const other of ['Attention rollout', 'Patch predictions', 'Attention from a patch', 'None']) {
      await page.getByRole('radio', { name: other }).check();
      assert.deepEqual(await pressed(), [], `no label stays highlighted on "${other}"`);
    }
    await page.getByRole('radio', { name: 'Class heatmap' }).check();
    assert.ok((await pressed()).length >= 1 && (await pressed()).every((i: string) => i === String(chosen.index)), 'the shown class is highlighted again');
    await finish(panel);
  });

  it('shows the recovery actions instead of empty controls when the model failed', async () => {
    const panel = await openPanel();
    const { page } = panel;
    await send(page, { type: 'loading', requestId: 7, image: '/workspace/images/gradient_640x480.jpg' });
    await send(page, { type: 'modelUnavailable', requestId: 7, reason: 'failed', message: 'the model could not be loaded: /models/beit/config.json: not valid JSON' });
    assert.ok(await page.getByRole('heading', { name: 'The model could not be loaded' }).isVisible());
    assert.match(await page.locator('#empty-state').innerText(), /config\.json: not valid JSON/);
    assert.ok(await page.locator('.layout').isHidden(), 'no controls');
    assert.equal(await page.locator('select:visible, input:visible').count(), 0, 'no empty selects or sliders');
    assert.ok((await page.locator('#status[data-kind="error"]:visible').count()) === 0, 'no red banner');
    await screenshot(page, 'model-failed');
    const expectedCommands: [string, string][] = [
      ['Download Model', 'beitLens.downloadModel'],
      ['Convert a Hugging Face Folder…', 'beitLens.convertModel'],
      ['Select Model Folder…', 'beitLens.selectModel'],
      ['Run Doctor', 'beitLens.doctor'],
    ];
    for (const [name, command] of expectedCommands) {
      await page.getByRole('button', { name, exact: true }).click();
      assert.deepEqual(await lastPosted(page, 'runCommand'), { type: 'runCommand', command });
    }
    // A model chosen from there: the extension explains again and the controls come back.
    await send(page, { type: 'loading', requestId: 8, image: '/workspace/images/gradient_640x480.jpg' });
    assert.ok(await page.locator('#empty-state').isHidden());
    await send(page, { type: 'explanation', explanation: { ...explanation, requestId: 8 } });
    assert.ok(await page.locator('.layout').isVisible());
    assert.ok(await page.getByRole('radio', { name: 'Attention rollout' }).isVisible());
    await finish(panel);
  });
});

