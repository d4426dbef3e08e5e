/**
 * Workbench scenarios for issue #17's editor parts: the menus offer Classify only for formats that decode (no
 * BMP), and the Model view (BEiT Lens: Show Model) shows the loaded model and finds a fixture label. Registered
 * in workbench.e2e.ts as steps C1 and M1, on the trusted workbench of scenario 1.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { FixtureWorkspace } from '../fixtureWorkspace';
import type { Workbench } from '../workbench';
import { bmpBytes } from '../../helpers/fixtures';


/** C1: right-click a .bmp offers neither Classify nor Explain; a PNG beside it offers both. */
export async function bmpHasNoClassifyMenu(w: Workbench, fx: FixtureWorkspace, titles: { classify: string; explain: string }): Promise<void> {
  await writeFile(path.join(fx.workspace, 'broken', 'scan.bmp'), bmpBytes());
  // Written after the workbench listed the folder: refreshed as a user would, rather than waiting on the file watcher.
  await w.page.locator('.explorer-viewlet .pane-header').first().hover();
  await w.page.getByRole('button', { name: 'Refresh Explorer' }).click();
  const menuItems = async (relative: string): Promise<string[]> => {
    const row = await w.reveal(relative);
    await row.click({ button: 'right' });
    const menu = w.page.locator('.monaco-menu');
    await menu.waitFor();
    const items = (await menu.locator('.action-item .action-label').allInnerTexts()).map((t) => t.trim()).filter(Boolean);
    await w.page.keyboard.press('Escape');
    await menu.waitFor({ state: 'detached' });
    return items;
  };
  const png = await menuItems('dataset/river_otter/alpha_300x200.png');
  assert.ok(png.includes(titles.classify) && png.includes(titles.explain), `a PNG's menu: ${png.join(' | ')}`);
  const bmp = await menuItems('broken/scan.bmp');
  assert.ok(bmp.length > 3, `the .bmp's context menu was read: ${bmp.join(' | ')}`);
  assert.ok(!bmp.includes(titles.classify) && !bmp.includes(titles.explain), `a .bmp's menu offers BEiT Lens: ${bmp.join(' | ')}`);
  await w.screenshot('C1-bmp-menu');
}

/** M1: BEiT Lens: Show Model opens the Model view of the fixture model; filtering finds a fixture label. */
export async function modelViewFindsLabel(w: Workbench, fx: FixtureWorkspace, provider: string): Promise<void> {
  await w.runCommand('BEiT Lens: Show Model');
  await w.page.locator('.tab.active', { hasText: 'BEiT Lens: Model' }).waitFor();
  const view = await w.webview('[data-testid="label-filter"]');
  const summary = Object.fromEntries(
    await view.locator('[data-testid="summary"] tbody tr').evaluateAll((rows: any[]) => rows.map((tr) => [...tr.children].map((td: any) => td.textContent))),
  );
  assert.equal(summary['folder'], fx.userModel);
  assert.equal(summary['model id'], fx.userModelId);
  // The status bar names the provider for people (CPU, DirectML...); the view gives onnxruntime's id.
  const ids: Record<string, string> = { CPU: 'cpu', CUDA: 'cuda', DirectML: 'dml', CoreML: 'coreml', WebGPU: 'webgpu' };
  assert.equal(summary['provider in use'], ids[provider], `status bar: ${provider}`);
  assert.match(summary['parameters'], /^\d{1,3}(,\d{3})+$/);
  const labels = await view.locator('[data-testid="label-table"] tbody tr td:nth-child(3)').allInnerTexts();
  assert.deepEqual(labels, fx.fixtureLabels);

  // A word of one fixture label, typed as a user would, leaves the labels containing it.
  const target = fx.fixtureLabels[fx.fixtureLabels.length - 1];
  const word = target.split(/[ ,]+/).find((part) => part.length > 3) ?? target;
  await view.locator('[data-testid="label-filter"]').pressSequentially(word, { delay: 20 });
  const want = fx.fixtureLabels.filter((l) => l.toLowerCase().includes(word.toLowerCase()));
  await view.locator('[data-testid="label-count"]', { hasText: new RegExp(`^${want.length} label`) }).waitFor();
  assert.deepEqual(await view.locator('[data-testid="label-table"] tbody tr td:nth-child(3)').allInnerTexts(), want);
  assert.ok(want.includes(target));
  await w.screenshot('M1-model-view');
  await w.runCommand('View: Close Editor');
}
