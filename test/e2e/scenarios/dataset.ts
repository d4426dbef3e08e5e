/**
 * The dataset view in the workbench (issue #17): path order that survives a rescan, images opened in one
 * group beside the view, and a multi-image Classify whose results are a saved-looking .csv file.
 * Registered in workbench.e2e.ts as steps D1–D3 (after step 7); each needs only scenario 1 before it.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { comparePaths } from '../../../src/core/scan/resultTable';
import type { Prediction } from '../fixtureWorkspace';
import type { Workbench } from '../workbench';

export interface DatasetScenarioDeps {
  /** Workspace-relative path → absolute path of every image under dataset/. */
  dataset: Map<string, string>;
  /** The explorer context-menu title of beitLens.classifyFolder / beitLens.classifyImage. */
  classifyFolder: string;
  classifyImage: string;
  expectedFor: (file: string) => Prediction[];
}

/**
 * D1: two scans of the folder list the rows in the same order, path order. The second takes every image
 * from the cache, so its rows are written in a different order (cache hits first) than a classifying scan.
 */
export async function rescanKeepsPathOrder(w: Workbench, deps: DatasetScenarioDeps): Promise<void> {
  // One empty group to start from: earlier steps leave explanation panels and documents about.
  await w.closeAllEditorGroups();
  assert.equal(await w.editorGroupCount(), 1);
  const count = deps.dataset.size;
  const expected = [...deps.dataset.keys()].sort(comparePaths).map((relative) => relative.split('/').slice(-2).join('/'));
  // The first scan classifies (or, after step 6, already reads the cache); the second reads the cache.
  for (const scanText of [`^Scanned ${count} images`, `^Scanned ${count} images \\(0 classified, ${count} from cache, 0 errors\\)`]) {
    await w.explorerContextMenu('dataset', deps.classifyFolder);
    await w.page.locator('.tab.active', { hasText: 'Dataset: dataset' }).waitFor();
    const view = await w.webview('#rows');
    await view.locator('#scan-status[data-status="done"] #scan-text', { hasText: new RegExp(scanText) }).waitFor({ timeout: 120_000 });
    await view.locator('#rows .row[data-row]').nth(count - 1).waitFor();
    assert.equal(await view.locator('.th[data-sort="path"]').getAttribute('aria-sort'), 'ascending', 'the view is not in path order');
    const shown = await view.locator('#rows .row[data-row]').evaluateAll((rows: any[]) => rows.map((r) => `${r.querySelector('.c-folder').textContent}/${r.querySelector('.c-path .name').textContent}`));
    assert.deepEqual(shown, expected, `the rows are not in path order after "${await view.locator('#scan-text').textContent()}"`);
  }
  assert.equal(await w.page.locator('.tab', { hasText: 'Dataset: dataset' }).count(), 1, 'the rescan reuses the view');
  await w.screenshot('D1-dataset-path-order');
}

/** D2: clicking two rows opens both explanations in one group beside the view: two groups in all, not three. */
export async function rowsOpenBesideInOneGroup(w: Workbench): Promise<void> {
  const view = await w.webview('#rows');
  const names: string[] = [];
  for (const position of [0, 1]) {
    const row = view.locator(`#rows .row[data-position="${position}"]`);
    const name = (await row.locator('.c-path .name').textContent())!;
    names.push(name);
    await row.locator('.c-path').click();
    await w.page.locator(`.tab[aria-label*="BEiT: ${name}"]`).waitFor({ timeout: 60_000 });
    await (await w.webview('#legend')).locator('#legend').waitFor();
  }
  assert.equal(await w.editorGroupCount(), 2, 'clicking two rows should leave two editor groups (the view and one beside it)');
  const groups = await w.editorGroupTabs();
  const dataset = groups.findIndex((tabs) => tabs.some((t) => t.startsWith('Dataset: dataset')));
  const images = groups.findIndex((tabs) => names.every((n) => tabs.some((t) => t.includes(`BEiT: ${n}`))));
  assert.ok(dataset >= 0 && images >= 0 && dataset !== images, `both images beside the view in one group: ${JSON.stringify(groups)}`);
  assert.equal(images, dataset + 1, 'the images open to the right of the view');
  await w.screenshot('D2-dataset-row-beside');
}

/** D3: several images → Classify Image: a `.csv` file (not an untitled document named after its header) with a Save As… action. */
export async function selectionResultsAsCsvFile(w: Workbench, deps: DatasetScenarioDeps): Promise<void> {
  const picked = [...deps.dataset.keys()].sort(comparePaths).slice(0, 2);
  await w.explorerContextMenuOnSelection(picked, deps.classifyImage);
  const tab = w.page.locator('.tab.active', { hasText: /^classified-\d{8}-\d{6}\.csv/ });
  await tab.waitFor({ timeout: 90_000 });
  assert.equal(await w.page.locator('.tab.active.dirty').count(), 0, 'the results document asks to be saved');
  await w.waitForEditorText('file,label1,score1');
  const lines = await w.editorLines();
  assert.match(lines[0], /^file,label1,score1,label2,score2,/);
  for (const relative of picked) {
    const file = deps.dataset.get(relative)!;
    const line = lines.find((l) => l.includes(path.basename(file)));
    assert.ok(line, `no row for ${relative}: ${lines.join('\n')}`);
    const top1 = deps.expectedFor(file)[0];
    assert.ok(line.includes(top1.label) && line.includes(top1.score.toFixed(6)), `${relative}: ${line} differs from beit-lens classify --json (${top1.label} ${top1.score})`);
  }
  const toast = w.toast(/BEiT Lens: classified 2 of 2 images/);
  await toast.waitFor({ timeout: 30_000 });
  assert.equal(await toast.getByRole('button', { name: 'Save As…' }).count(), 1, 'the results notification offers no Save As…');
  await w.screenshot('D3-selection-results-csv');
}
