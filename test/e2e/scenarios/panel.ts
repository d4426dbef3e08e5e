/**
 * The explanation panel's layout, zoom and export in the real workbench (issue #17). One panel,
 * opened beside the editors as a user would, is looked at narrow (beside) and wide (its group
 * maximised), zoomed, and exported; the exported PNG is decoded and carries the legend strip.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { Frame } from 'playwright-core';
import sharp from 'sharp';
import { layoutLegendStrip, legendSpec, STRIP_BACKGROUND } from '../../../src/shared/legendStrip';
import type { Prediction } from '../fixtureWorkspace';
import type { Workbench } from '../workbench';

export const PANEL_IMAGE = 'dataset/river_otter/alpha_300x200.png';
const IMAGE_SIZE = { width: 300, height: 200 };

interface Rect {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** Rectangles inside the webview's own window, and that window's size. */
async function layoutOf(panel: Frame): Promise<{ stage: Rect; sidebar: Rect; picker: Rect; exportButton: Rect; inner: { width: number; height: number } }> {
  // No named functions inside: the page has no `__name`, which tsx adds to them.
  const [stage, sidebar, picker, exportButton, inner] = await panel.evaluate(() =>
    ['.stage', '.sidebar', '.overlay-picker', '#export', ''].map((sel) => {
      const win = globalThis as any;
      if (!sel) return { top: 0, left: 0, bottom: win.innerHeight, right: win.innerWidth };
      const r = win.document.querySelector(sel).getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, left: r.left, right: r.right };
    }),
  );
  return { stage, sidebar, picker, exportButton, inner: { width: inner.right, height: inner.bottom } };
}

/** Opens the panel for PANEL_IMAGE beside the editors (narrow) and waits for its explanation. */
export async function openPanelBeside(w: Workbench, explainTitle: string): Promise<Frame> {
  await w.explorerContextMenu(PANEL_IMAGE, explainTitle);
  await w.page.locator('.tab.active', { hasText: `BEiT: ${path.basename(PANEL_IMAGE)}` }).waitFor();
  const panel = await w.webview('#legend');
  await panel.locator('#title', { hasText: path.basename(PANEL_IMAGE) }).waitFor({ timeout: 90_000 });
  await panel.locator('#image').evaluate((img: any) => (img.complete && img.naturalWidth ? undefined : new Promise((resolve) => img.addEventListener('load', resolve, { once: true }))));
  return panel;
}

/** P1: narrow beside the editor the controls are stacked and start on screen; wide they are a side panel, all on screen. */
export async function controlsInViewport(w: Workbench, panel: Frame, screenshot: (name: string) => Promise<unknown>): Promise<void> {
  const narrow = await layoutOf(panel);
  assert.ok(narrow.inner.width < 700, `the panel beside the editor is ${narrow.inner.width}px wide: expected the narrow layout`);
  assert.ok(narrow.sidebar.top >= narrow.stage.bottom, 'narrow: the controls are stacked below the image');
  assert.ok(narrow.stage.right <= narrow.inner.width + 0.5, 'narrow: the image fits the width');
  assert.ok(narrow.stage.bottom <= narrow.inner.height, `narrow: the image (to ${narrow.stage.bottom}) fits the panel (${narrow.inner.height} high)`);
  assert.ok(narrow.picker.top < narrow.inner.height, `narrow: the overlay controls start on the first screen (at ${narrow.picker.top} of ${narrow.inner.height})`);
  await screenshot('P1-panel-narrow');

  await w.runCommand('View: Toggle Maximize Editor Group');
  await panel.waitForFunction(() => (globalThis as any).innerWidth >= 700);
  await panel.waitForFunction(() => {
    const doc = (globalThis as any).document;
    return doc.querySelector('.sidebar').getBoundingClientRect().left >= doc.querySelector('.stage').getBoundingClientRect().right;
  });
  const wide = await layoutOf(panel);
  assert.ok(wide.sidebar.left >= wide.stage.right, 'wide: the controls are a side panel next to the image');
  assert.ok(wide.sidebar.bottom <= wide.inner.height + 0.5, `wide: the side panel (to ${wide.sidebar.bottom}) is inside the panel (${wide.inner.height} high)`);
  assert.ok(wide.stage.bottom <= wide.inner.height, 'wide: the whole image is on screen');
  assert.ok(wide.picker.top >= 0 && wide.picker.bottom <= wide.inner.height, 'wide: the overlay controls are on screen');
  await screenshot('P1-panel-wide');
}

/** P2: the fit/1:1 toggle shows the image's own pixels and fits it again. */
export async function zoomToggle(panel: Frame, screenshot: (name: string) => Promise<unknown>): Promise<void> {
  const stageWidth = () => panel.locator('.stage').evaluate((s: any) => s.getBoundingClientRect().width as number);
  assert.match(await panel.locator('#zoom-value').innerText(), /^Fit \(\d+%\)$/);
  const fitted = await stageWidth();
  await panel.getByRole('button', { name: '1:1', exact: true }).click();
  await panel.locator('#zoom-value', { hasText: /^100%$/ }).waitFor();
  assert.equal(Math.round(await stageWidth()), IMAGE_SIZE.width, 'at 1:1 the image is its own width');
  await screenshot('P2-zoom-1to1');
  await panel.getByRole('button', { name: 'Zoom in' }).click();
  await panel.locator('#zoom-value', { hasText: /^125%$/ }).waitFor();
  assert.equal(Math.round(await stageWidth()), Math.round(IMAGE_SIZE.width * 1.25));
  await panel.getByRole('button', { name: 'Fit', exact: true }).click();
  await panel.locator('#zoom-value', { hasText: /^Fit/ }).waitFor();
  assert.ok(Math.abs((await stageWidth()) - fitted) <= 1, 'fitted again to the same size');
}

/**
 * P3: Export PNG → the save dialog (accepting its suggested path) → the panel says where it went and
 * offers Reveal in Explorer, which selects the file in the Explorer. The file is the image plus the
 * legend strip the CLI draws.
 */
export async function exportAndReveal(w: Workbench, panel: Frame, workspace: string, top: Prediction, screenshot: (name: string) => Promise<unknown>): Promise<void> {
  const name = `${path.parse(PANEL_IMAGE).name}-rollout.png`;
  const file = path.join(workspace, path.dirname(PANEL_IMAGE), name);
  await panel.locator('label[for="overlay-rollout"]').click();
  await panel.getByRole('button', { name: 'Export PNG' }).click();
  // The workbench's own save dialog (a quick input holding the suggested path): accept it.
  const input = w.page.locator('.quick-input-widget input.input');
  await input.waitFor();
  // The simple file dialog shows the folder first and fills in the file name a moment later.
  const suggested = new RegExp(`${name.replace(/[.]/g, '\\.')}$`);
  let value = await input.inputValue();
  for (let i = 0; i < 50 && !suggested.test(value); i++) {
    await w.page.waitForTimeout(100);
    value = await input.inputValue();
  }
  assert.match(value, suggested, 'the save dialog suggests <image>-rollout.png next to the image');
  await input.press('Enter');
  await panel.locator('#export-done', { hasText: name }).waitFor({ timeout: 30_000 });
  const reveal = panel.getByRole('button', { name: 'Reveal in Explorer' });
  assert.ok(await reveal.isVisible(), 'no Reveal in Explorer after the export');
  await screenshot('P3-exported');
  assert.ok(existsSync(file), `the export was not written to ${file}`);

  const png = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const strip = layoutLegendStrip(IMAGE_SIZE.width, legendSpec({ kind: 'rollout', headFusion: 'mean', discardRatio: 0.9 }, top, 0.6));
  assert.deepEqual([png.info.width, png.info.height], [IMAGE_SIZE.width, IMAGE_SIZE.height + strip.height], 'the export is the image plus the legend strip');
  const corner = (png.info.height - 1) * png.info.width * 3 + (png.info.width - 1) * 3;
  assert.deepEqual([...png.data.subarray(corner, corner + 3)], [...STRIP_BACKGROUND], 'the strip is at the bottom');

  await w.runCommand('View: Toggle Maximize Editor Group');
  await reveal.click();
  const row = w.explorerRow(name);
  await row.waitFor();
  await w.page.locator(`.explorer-folders-view .monaco-list-row.selected[aria-label="${name}"]`).waitFor({ timeout: 15_000 });
  await screenshot('P3-revealed');
  // The export sits in a class folder of the dataset the later scenarios scan: it leaves with its check.
  await rm(file);
}
