/**
 * Issue #17, the hover, in a real workbench: it fits VS Code's hover (about 250 px before it
 * scrolls) with all five rows and the Explain link in view, states the image's dimensions, file
 * size and format, says "not found" with the places it looked, and without a model still shows
 * the thumbnail with the model's state.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Locator } from 'playwright-core';
import { FixtureWorkspace, Prediction, shownScore } from '../fixtureWorkspace';
import { Workbench } from '../workbench';

/** The prediction rows of a hover: the nested table's rows, as [rank, label, score]. */
export async function hoverPredictionRows(hover: Locator): Promise<string[][]> {
  return hover.locator('table table tr').evaluateAll((rows: any[]) => rows.map((r) => [...r.querySelectorAll(':scope > td')].map((c: any) => c.innerText.trim())).filter((cells) => cells.length > 0));
}

/** Elements of the hover that would need scrolling to show all of their content. */
async function scrolledParts(hover: Locator): Promise<string[]> {
  return hover.evaluate((root: any) =>
    [root, ...root.querySelectorAll('*')]
      .filter((el: any) => el.clientHeight > 0 && el.scrollHeight > el.clientHeight + 1 && (globalThis as any).getComputedStyle(el).overflowY !== 'visible')
      .map((el: any) => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} scrollHeight ${el.scrollHeight} > clientHeight ${el.clientHeight}`),
  );
}

async function assertInside(inner: Locator, outer: { x: number; y: number; width: number; height: number }, what: string): Promise<void> {
  const box = await inner.boundingBox();
  assert.ok(box, `${what} is not rendered`);
  const within = box.y >= outer.y - 0.5 && box.y + box.height <= outer.y + outer.height + 0.5 && box.x >= outer.x - 0.5 && box.x + box.width <= outer.x + outer.width + 0.5;
  assert.ok(within, `${what} (${JSON.stringify(box)}) is outside the hover (${JSON.stringify(outer)}): it would need scrolling`);
}

/** The thumbnail has loaded and is drawn at a useful size. */
async function assertThumbnail(hover: Locator, what: string): Promise<void> {
  const thumbnail = hover.locator('img[src^="data:image/"]');
  assert.equal(await thumbnail.count(), 1, `${what}: no thumbnail`);
  await thumbnail.evaluate((img: any) => (img.complete ? undefined : new Promise((resolve) => img.addEventListener('load', resolve, { once: true }))));
  const size = await thumbnail.evaluate((img: any) => ({ width: img.naturalWidth, height: img.naturalHeight, shownWidth: img.width, shownHeight: img.height }));
  assert.ok(size.width > 16 && size.height > 16 && size.shownWidth > 16, `${what}: the thumbnail did not render (${JSON.stringify(size)})`);
}

function kb(bytes: number): string {
  return bytes < 2 ** 20 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

/**
 * H1. The hover over train.py's image: all five rows and the Explain link inside the hover's box,
 * nothing in it scrolled, and the image's dimensions, file size and format beside the table.
 * Returns the measured hover height (px).
 */
export async function hoverFits(w: Workbench, fx: FixtureWorkspace, want: readonly Prediction[], shot: string): Promise<number> {
  await w.openFile('train.py', 'SAMPLE');
  const hover = await w.hoverForPrediction(fx.pythonImage, path.basename(fx.pythonImage));
  assert.deepEqual(
    await hoverPredictionRows(hover),
    want.slice(0, 5).map((p, i) => [String(i + 1), p.label, shownScore(p.score)]),
    'the hover top-5 differs from beit-lens classify --json',
  );
  await assertThumbnail(hover, 'hover over train.py');
  const box = await hover.boundingBox();
  assert.ok(box, 'the hover has no box');
  assert.deepEqual(await scrolledParts(hover), [], `the hover (${Math.round(box.height)} px high) scrolls`);
  const rows = hover.locator('table table tr');
  for (let i = 0; i < (await rows.count()); i++) await assertInside(rows.nth(i), box, `row ${i} of the table`);
  await assertInside(hover.locator('a', { hasText: 'Explain' }), box, 'the Explain link');
  const size = (await stat(path.join(fx.workspace, fx.pythonImage))).size;
  const text = await hover.innerText();
  assert.ok(text.includes('640 × 480'), `the hover does not state the dimensions:\n${text}`);
  assert.ok(text.includes(`${kb(size)} · JPEG`), `the hover does not state the file size (${kb(size)}) and format:\n${text}`);
  await w.screenshot(shot);
  return box.height;
}

/** H2. A path to an image that does not exist: "not found", and the document's folder and the workspace folder it was looked for in. */
export async function hoverNotFound(w: Workbench, fx: FixtureWorkspace, shot: string): Promise<void> {
  const written = 'dataset/harp_seal/missing_seal.jpg';
  const file = path.join(fx.workspace, 'scripts', 'check_missing.py');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `MISSING = "${written}"\n`);
  await w.openFile('scripts/check_missing.py', 'MISSING');
  const hover = await w.hoverWithMessage(written, 'Not found');
  const text = await hover.innerText();
  assert.ok(text.includes(`BEiT Lens · missing_seal.jpg`), text);
  assert.ok(text.includes(`Not found: ${written}, looked for`), text);
  assert.ok(text.includes(`${path.join(fx.workspace, 'scripts', written)} (this document's folder)`), text);
  assert.ok(text.includes(`${path.join(fx.workspace, written)} (workspace folder ${path.basename(fx.workspace)})`), text);
  assert.equal(await hover.locator('img').count(), 0, 'a missing image has no thumbnail');
  await w.screenshot(shot);
}

export interface NoModelOptions {
  /** The status bar text once the model is back (the provider's name). */
  ready: RegExp;
  userModelHash: string;
}

/**
 * H3. beitLens.modelPath pointed at a folder that does not exist: the hover still shows the
 * thumbnail, the image's facts and the model state (as the status bar's tooltip words it), with a
 * way out; then the setting is removed and the model is ready again. The setting goes in the
 * (trusted) workspace's .vscode/settings.json, which the workbench watches (an edit of the user
 * settings file on disk is not seen by code-server's workbench).
 */
export async function hoverWithoutModel(w: Workbench, fx: FixtureWorkspace, options: NoModelOptions, shot: string): Promise<void> {
  const gone = path.join(fx.root, 'no-such-model');
  const folder = path.join(fx.workspace, '.vscode');
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, 'settings.json'), `${JSON.stringify({ 'beitLens.modelPath': gone }, null, 2)}\n`);
  try {
    const status = await w.waitForStatus(/^BEiT: (no model|failed)$/);
    await w.openFile('train.py', 'SAMPLE');
    const state = status.text.endsWith('failed') ? 'The model could not be loaded' : 'No model';
    const hover = await w.hoverWithMessage(fx.pythonImage, state);
    await hover.locator('img[src^="data:image/"]').waitFor({ timeout: 30_000 }).catch(() => undefined);
    if ((await hover.locator('img').count()) === 0) {
      // The first hover may have answered "making the thumbnail…": the next one has it.
      await w.page.mouse.move(5, 5);
      await hover.waitFor({ state: 'hidden' });
    }
    const shown = (await hover.locator('img').count()) > 0 ? hover : await w.hoverWithMessage(fx.pythonImage, '640 × 480');
    await assertThumbnail(shown, 'hover without a model');
    const text = await shown.innerText();
    assert.ok(text.includes('640 × 480'), text);
    assert.ok(text.includes(gone) || text.includes('no-such-model'), `the hover does not name the missing model folder:\n${text}`);
    assert.equal(await shown.locator('table table').count(), 0, 'a prediction table without a model');
    assert.ok((await shown.locator('a', { hasText: /Doctor|Download Model/ }).count()) > 0, `the hover offers no way out:\n${text}`);
    const box = await shown.boundingBox();
    assert.ok(box);
    assert.deepEqual(await scrolledParts(shown), [], 'the hover without a model scrolls');
    await w.screenshot(shot);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  await w.waitForStatus(options.ready, options.userModelHash);
}
