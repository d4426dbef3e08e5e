/**
 * The Dataset view's Map tab in the workbench (issue #13): after a scan of the fixture dataset (which stores the
 * embeddings), the Map tab shows the PCA view and then the UMAP map, a box selection restricts the table with a
 * "Map selection (N) ×" chip, and the chip clears it. Registered in workbench.e2e.ts as step MAP1 (after step 7);
 * needs only scenario 1 before it.
 */
import assert from 'node:assert/strict';
import type { Workbench } from '../workbench';
import type { DatasetScenarioDeps } from './dataset';

export async function mapSelectionFiltersTable(w: Workbench, deps: Pick<DatasetScenarioDeps, 'dataset' | 'classifyFolder'>): Promise<void> {
  await w.closeAllEditorGroups();
  const count = deps.dataset.size;
  await w.explorerContextMenu('dataset', deps.classifyFolder);
  await w.page.locator('.tab.active', { hasText: 'Dataset: dataset' }).waitFor();
  const view = await w.webview('#rows');
  await view.locator('#scan-status[data-status="done"] #scan-text', { hasText: new RegExp(`^Scanned ${count} images`) }).waitFor({ timeout: 120_000 });
  await view.locator('#tab-map').click();
  await view.locator('#map-stage[data-method="umap"]').waitFor({ timeout: 120_000 });
  assert.equal(await view.locator('#map-stage').getAttribute('data-points'), String(count), 'a point per image');
  const lit = await view.locator('#map-canvas').evaluate((canvas: any) => {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
  assert.ok(lit >= count, `the canvas shows the points (${lit} lit pixels)`);
  await w.screenshot('MAP1-dataset-map');

  // The whole canvas in a box: every point selected, so the table keeps every row but says it is a selection.
  await view.locator('#map-tool-box').click();
  const box = (await view.locator('#map-canvas').boundingBox())!;
  await w.page.mouse.move(box.x + 2, box.y + 2);
  await w.page.mouse.down();
  await w.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 4 });
  await w.page.mouse.move(box.x + box.width - 2, box.y + box.height - 2, { steps: 4 });
  await w.page.mouse.up();
  await view.locator('#map-selection', { hasText: `${count} selected` }).waitFor();
  // Then the left half only: fewer rows, and the table shows just those.
  await w.page.mouse.move(box.x + 2, box.y + 2);
  await w.page.mouse.down();
  await w.page.mouse.move(box.x + box.width / 2, box.y + box.height - 2, { steps: 6 });
  await w.page.mouse.up();
  // The count shown is the host's, once it applied the new selection.
  await view.locator('#map-selection', { hasText: new RegExp(`^(?!${count} selected)\\d+ selected`) }).waitFor();
  const selected = Number(((await view.locator('#map-selection').textContent()) ?? '').replace(/[^\d].*$/, ''));
  assert.ok(selected > 0 && selected < count, `the left half selects some of the ${count} points (${selected})`);
  await view.locator('#tab-table').click();
  await view.locator('#map-selection-chip', { hasText: `Map selection (${selected}) ×` }).waitFor();
  // The row count text is hidden in a narrow view (the counts shrink first), so count the rows themselves.
  await view.locator('#result-count', { hasText: new RegExp(`^${selected} rows?$`) }).waitFor({ state: 'attached' });
  assert.equal(await view.locator('#rows .row[data-row]').count(), selected, 'the table shows only the selected rows');
  await w.screenshot('MAP1-dataset-map-selection');
  await view.locator('#map-selection-chip').click();
  await view.locator('#result-count', { hasText: new RegExp(`^${count} rows$`) }).waitFor({ state: 'attached' });
  await view.locator('#rows .row[data-row]').nth(count - 1).waitFor();
  assert.equal(await view.locator('#map-selection-chip').isVisible(), false);
}
