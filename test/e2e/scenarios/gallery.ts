/**
 * Gallery mode of the Dataset view (issue #13) and the Model view after a window reload (issue #17).
 * Registered in workbench.e2e.ts as steps G1–G2 (after step 7); each needs only scenario 1 before it.
 */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import * as path from 'node:path';
import { comparePaths } from '../../../src/core/scan/resultTable';
import { ROOT, type FixtureWorkspace, type Prediction } from '../fixtureWorkspace';
import type { Workbench } from '../workbench';

// Page-side callbacks run in the webview; the root tsconfig has no DOM lib, so they see the page untyped.
declare const document: any;

export interface GalleryScenarioDeps {
  /** Workspace-relative path → absolute path of every image under dataset/. */
  dataset: Map<string, string>;
  /** The explorer context-menu title of beitLens.classifyFolder. */
  classifyFolder: string;
  expectedFor: (file: string) => Prediction[];
}

/** The fixture image whose thumbnail is checked for size: large enough (640×480) to show each side. */
const LARGE = 'dataset/harp_seal/gradient_640x480.jpg';

/**
 * G1: Dataset view → Gallery: one cell per image in path order, each with its thumbnail and the CLI's top-1
 * label and score; the size slider makes the cells larger and brings larger thumbnails; a double-click opens
 * the explanation panel.
 */
export async function galleryShowsThumbnails(w: Workbench, deps: GalleryScenarioDeps): Promise<void> {
  await w.closeAllEditorGroups();
  const count = deps.dataset.size;
  await w.explorerContextMenu('dataset', deps.classifyFolder);
  await w.page.locator('.tab.active', { hasText: 'Dataset: dataset' }).waitFor();
  const view = await w.webview('#rows');
  await view.locator('#scan-status[data-status="done"]').waitFor({ timeout: 120_000 });
  await view.locator('#layout-gallery').click();
  await view.locator('#gallery-viewport').waitFor();
  assert.equal(await view.locator('#table').isVisible(), false, 'the table stays on screen in Gallery mode');

  // Every cell has its picture (decoded, not a placeholder) and the CLI's top-1.
  const cells = view.locator('#gallery-cells .g-cell[data-row]');
  await cells.nth(count - 1).waitFor();
  await view.waitForFunction((n: number) => {
    const imgs = [...document.querySelectorAll('#gallery-cells .g-cell[data-row] .g-thumb img')] as any[];
    return imgs.length === n && imgs.every((img) => img.complete && img.naturalWidth > 0);
  }, count, { timeout: 60_000 });
  const shown = await cells.evaluateAll((els: any[]) => els.map((c) => ({ image: c.title, label: c.querySelector('.g-label').textContent, score: c.querySelector('.g-score').textContent })));
  const byPath = [...deps.dataset.entries()].sort(([a], [b]) => comparePaths(a, b));
  assert.equal(shown.length, count);
  for (const [i, [relative, file]] of byPath.entries()) {
    const cell = shown[i];
    assert.ok(cell.image === file || cell.image.endsWith(relative), `cell ${i} is ${cell.image}, expected ${relative} (path order)`);
    const top1 = deps.expectedFor(file)[0];
    assert.deepEqual({ label: cell.label, score: cell.score }, { label: top1.label, score: `${(top1.score * 100).toFixed(1)}%` }, `${relative}: the gallery differs from beit-lens classify --json`);
  }

  // The slider: 128 px cells show a 192 px thumbnail; at 256 px the cells grow and a 320 px one replaces it.
  const largeAt = byPath.findIndex(([relative]) => relative === LARGE);
  assert.ok(largeAt >= 0, `${LARGE} is not in the fixture dataset`);
  // (The table's 96 px picture shows first, until the 192 px one arrives.)
  const naturalWidthIs = (width: number) =>
    view.waitForFunction(
      ([index, want]: number[]) => document.querySelectorAll('#gallery-cells .g-cell[data-row]')[index]?.querySelector('.g-thumb img')?.naturalWidth === want,
      [largeAt, width],
      { timeout: 60_000 },
    );
  await naturalWidthIs(192);
  await view.locator('#gallery-size').fill('256');
  await view.waitForFunction(() => document.querySelector('#gallery-cells .g-cell[data-row]')?.offsetWidth === 256);
  await naturalWidthIs(320);
  await view.locator('#gallery-size').fill('160');
  await view.waitForFunction(() => document.querySelector('#gallery-cells .g-cell[data-row]')?.offsetWidth === 160);
  await w.page.mouse.move(0, 0);
  const shot = await w.screenshot('G1-dataset-gallery');
  await copyFile(shot, path.join(ROOT, 'media', 'screenshots', 'dataset-gallery.png'));

  // Double-click: the explanation panel of that image, beside the view.
  const name = path.basename(LARGE);
  await (await w.webview('#gallery-cells')).locator('#gallery-cells .g-cell[data-row]').nth(largeAt).dblclick();
  await w.page.locator(`.tab[aria-label*="BEiT: ${name}"]`).waitFor({ timeout: 60_000 });
  await (await w.webview('#legend')).locator('#legend').waitFor();
  await w.screenshot('G1-gallery-opened');
}

/** G2: the Model view comes back after Developer: Reload Window, describing the loaded model. */
export async function modelViewSurvivesReload(w: Workbench, fx: FixtureWorkspace): Promise<void> {
  await w.closeAllEditorGroups();
  await w.runCommand('BEiT Lens: Show Model');
  await w.page.locator('.tab.active', { hasText: 'BEiT Lens: Model' }).waitFor();
  await (await w.webview('[data-testid="summary"] tbody tr')).locator('[data-testid="summary"] tbody tr').first().waitFor();
  await w.reloadWindow();
  await w.page.locator('.tab', { hasText: 'BEiT Lens: Model' }).waitFor({ timeout: 90_000 });
  const view = await w.webview('[data-testid="summary"] tbody tr', 120_000);
  const summary = Object.fromEntries(
    await view.locator('[data-testid="summary"] tbody tr').evaluateAll((rows: any[]) => rows.map((tr) => [...tr.children].map((td: any) => td.textContent))),
  );
  assert.equal(summary['folder'], fx.userModel, 'the restored Model view describes the loaded model');
  assert.equal(summary['model id'], fx.userModelId);
  await w.screenshot('G2-model-view-restored');
  await w.runCommand('View: Close Editor');
}
