/**
 * BEiT Lens end to end, in a real VS Code workbench: code-server serving VS Code with the
 * linux-x64 VSIX installed by `--install-extension`, driven through Debian's Chromium by
 * playwright-core, acting as a user and asserting what a user sees. Run by `npm run test:e2e`
 * (part of `npm test` and CI), which first installs code-server and builds the VSIX.
 *
 * The scenarios run in order on one workbench (the untrusted one opens a second):
 *   1. the workspace is trusted; the status bar item reaches "ready" naming the provider
 *   2. right-click an image → Classify Image: the QuickPick equals `beit-lens classify --json`
 *   3. hovering an image path in Python shows a thumbnail and the same top-5
 *   4. … and in Markdown and CSV
 *   5. Explain Image: overlays switch, the legend names the fixture labels, clicking a patch updates the panel
 *   6. Classify Images in Folder: progress, then the results
 *   7. a corrupt image: an error naming the file, and the next classify still works
 *   C1. a .bmp's context menu offers no Classify (scenarios/cli.ts)
 *   M1. BEiT Lens: Show Model: the Model view of the loaded model, its label filter (scenarios/cli.ts)
 *   P1–P3. the explanation panel: controls on screen narrow and wide, fit/1:1 zoom, export with the
 *      legend strip and Reveal in Explorer (test/e2e/scenarios/panel.ts)
 *   N1. hovers in a notebook's code and Markdown cells; N2. Classify Output Images on stored PNG/JPEG outputs;
 *      N3. Explain Output Image (test/e2e/scenarios/notebooks.ts)
 *   D1–D3. the dataset view: path order after a rescan, rows open in one group beside it, several images
 *      → Classify Image gives a .csv file with Save As… (test/e2e/scenarios/dataset.ts)
 *   H1–H3. the hover fits without scrolling with dimensions, size and format; "not found" with the places
 *      tried; the thumbnail and model state without a model (test/e2e/scenarios/hover.ts)
 *   O1–O3 (scenarios/offline.ts): Download Model with no network offers Convert/Select and converting the
 *      fixture puts it to use; the doctor is a read-only document with Copy; a settings.json edit on disk applies
 *   G1–G2 (scenarios/gallery.ts): the Dataset view's Gallery (thumbnails, the CLI's top-1, the size slider,
 *      double-click explains); the Model view restored after Developer: Reload Window
 *   8. an untrusted workspace's beitLens.modelPath is not used (and is once trusted); its hovers read only
 *      images inside the workspace folders (and any once trusted)
 *
 * Screenshots of every step go to test-results/e2e/. A failing step saves FAILED-<step>.png and
 * prints the code-server, extension host and extension logs. Missing prerequisites (code-server,
 * Chromium, the VSIX) fail the suite; nothing here is skipped.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { cliClassify, cliExplain, cliSimilar, FixtureWorkspace, makeFixtureWorkspace, Prediction, ROOT, shownScore } from './fixtureWorkspace';
import { bmpHasNoClassifyMenu, modelViewFindsLabel } from './scenarios/cli';
import { classifyOutputImages, explainOutputImage, NotebookChecks, notebookHovers } from './scenarios/notebooks';
import { hoverFits, hoverNotFound, hoverPredictionRows, hoverWithoutModel } from './scenarios/hover';
import { controlsInViewport, exportAndReveal, openPanelBeside, PANEL_IMAGE, zoomToggle } from './scenarios/panel';
import { rescanKeepsPathOrder, rowsOpenBesideInOneGroup, selectionResultsAsCsvFile, type DatasetScenarioDeps } from './scenarios/dataset';
import { mapSelectionFiltersTable } from './scenarios/map';
import { doctorIsReadOnly, downloadOfflineThenConvert, settingsFileEdit, staleNoticeCloses } from './scenarios/offline';
import { qualityColumnAndFilter } from './scenarios/quality';
import { duplicatesTabShowsCopy, findSimilarFromExplorer, type SimilarityScenarioDeps } from './scenarios/simui';
import { galleryShowsThumbnails, modelViewSurvivesReload } from './scenarios/gallery';
import { CHROMIUM, closedPort, CodeServer, codeServerEntry, launchChromium, QuickPickRow, Workbench } from './workbench';

const SCREENSHOTS = path.join(ROOT, 'test-results', 'e2e');
const VERSION = (require(path.join(ROOT, 'package.json')) as { version: string }).version;
const VSIX = process.env.BEIT_LENS_VSIX ?? path.join(ROOT, 'out', 'vsix', `beit-lens-linux-x64-${VERSION}.vsix`);
const PROVIDER = /^BEiT: (CPU|CUDA|DirectML|CoreML|WebGPU)$/;
const MANIFEST = require(path.join(ROOT, 'package.json')) as { contributes: { commands: { command: string; title: string }[] } };
/** A command's title as menus show it (from the manifest, so a renamed command does not break the suite). */
function title(command: string): string {
  const found = MANIFEST.contributes.commands.find((c) => c.command === command);
  assert.ok(found, `package.json contributes no command ${command}`);
  return found.title;
}
const CLASSIFY = title('beitLens.classifyImage');
const EXPLAIN = title('beitLens.explainImage');
const CLASSIFY_FOLDER = title('beitLens.classifyFolder');
const FIND_SIMILAR = title('beitLens.findSimilarImages');
const STEP_TIMEOUT = 240_000;

let fx: FixtureWorkspace;
let server: CodeServer | undefined;
let browser: Browser | undefined;
let wb: Workbench | undefined;
let tmp: string | undefined;
/** The user-level (tiny fixture) model's predictions for every image, from the CLI. */
let expected: Map<string, Prediction[]>;
let expectedWorkspaceModel: Map<string, Prediction[]>;
let provider = '';
let failures = 0;
/** Why the workbench could not be set up: every scenario then fails with it (a suite that cannot run fails). */
let setupError: Error | undefined;

function workbench(): Workbench {
  if (!wb) throw new Error('no workbench: an earlier step failed to open it');
  return wb;
}

function expectedFor(file: string, table = expected): Prediction[] {
  const top = table.get(path.resolve(file));
  assert.ok(top, `no CLI result for ${file}`);
  return top;
}

async function printFailureContext(step: string, err: unknown): Promise<void> {
  failures++;
  console.error(`\n✖ step "${step}" failed: ${(err as Error)?.stack ?? String(err)}`);
  if (wb) {
    const shot = await wb.screenshot(`FAILED-${step.replace(/[^\w.-]+/g, '_')}`).catch(() => undefined);
    if (shot) console.error(`screenshot: ${shot}`);
    if (wb.console.length) console.error(`--- browser console (last 30) ---\n${wb.console.slice(-30).join('\n')}`);
  }
  // The full logs once; later failures usually follow from the first.
  if (failures > 1 || !server) return;
  for (const { name, text } of server.logs()) console.error(`--- ${name} (tail) ---\n${text}`);
  if (tmp) console.error(`(fixture, user-data and logs kept in ${tmp})`);
}

/** One scenario: on failure, a screenshot and the logs, then the error. */
function step(name: string, body: () => Promise<void>): void {
  it(name, { timeout: STEP_TIMEOUT }, async () => {
    if (setupError) throw new Error(`the end-to-end suite could not start: ${setupError.message}`);
    try {
      await body();
    } catch (err) {
      await printFailureContext(name, err);
      // A menu, quick pick or hover the failed step left open would take the next steps' clicks.
      for (let i = 0; i < 3; i++) await wb?.page.keyboard.press('Escape').catch(() => undefined);
      throw err;
    }
  });
}

function assertPredictionRows(rows: QuickPickRow[], want: Prediction[], what: string): void {
  const shown = rows.slice(0, want.length).map((r) => ({ label: r.label, score: r.description, detail: r.detail }));
  const oracle = want.map((p, i) => ({ label: p.label, score: shownScore(p.score), detail: `#${i + 1} · class ${p.index}` }));
  assert.deepEqual(shown, oracle, `${what}: the QuickPick differs from beit-lens classify --json`);
}

/** The rows of a hover's prediction table (beside the thumbnail, so nested in the layout table): [rank, label, score]. */
const hoverTable = hoverPredictionRows;

function notebookChecks(): NotebookChecks {
  return { expectedFor: (file) => expectedFor(file), hoverTable, assertPredictionRows, provider };
}

async function checkHover(file: string, needle: string, shot: string): Promise<void> {
  const w = workbench();
  const name = path.basename(needle);
  const hover = await w.hoverForPrediction(needle, name);
  const want = expectedFor(path.join(fx.workspace, needle));
  assert.deepEqual(
    await hoverTable(hover),
    want.slice(0, 5).map((p, i) => [String(i + 1), p.label, shownScore(p.score)]),
    `hover over ${needle} in ${file}: the top-5 differs from beit-lens classify --json`,
  );
  const thumbnail = hover.locator('img[src^="data:image/"]');
  assert.equal(await thumbnail.count(), 1, `hover over ${needle} in ${file} shows no thumbnail`);
  await thumbnail.evaluate((img: any) => (img.complete ? undefined : new Promise((resolve) => img.addEventListener('load', resolve, { once: true }))));
  const size = await thumbnail.evaluate((img: any) => ({ width: img.naturalWidth, height: img.naturalHeight }));
  assert.ok(size.width > 16 && size.height > 16, `the hover's thumbnail did not render (${size.width}x${size.height})`);
  assert.match(await hover.innerText(), /Explain/, 'the hover has no link to the explanation panel');
  await w.screenshot(shot);
}

describe('BEiT Lens in a real VS Code workbench (code-server + Chromium, linux-x64 VSIX)', () => {
  before(
    async () => {
      try {
        await setUp();
      } catch (err) {
        setupError = err as Error;
        console.error(`✖ setting up the end-to-end suite failed: ${setupError.stack ?? setupError.message}`);
        if (server) for (const { name, text } of server.logs()) console.error(`--- ${name} (tail) ---\n${text}`);
      }
    },
    { timeout: 300_000 },
  );

  async function setUp(): Promise<void> {
    const entry = codeServerEntry(ROOT);
    const missing = [
      !existsSync(entry) && `code-server at ${entry} (bash test/e2e/setup-code-server.sh)`,
      !existsSync(CHROMIUM) && `Chromium at ${CHROMIUM} (bash scripts/install-system-deps.sh)`,
      !existsSync(VSIX) && `the VSIX ${VSIX} (node --import tsx scripts/package-vsix.ts --target linux-x64)`,
      !existsSync(path.join(ROOT, 'dist', 'cli.js')) && 'dist/cli.js (npm run build)',
    ].filter(Boolean);
    // A suite that cannot run fails: `npm run test:e2e` installs all of these first.
    if (missing.length) throw new Error(`the end-to-end suite cannot run without: ${missing.join('; ')}`);

    // A retried run (test/e2e/run-suite.sh) keeps the failed run's screenshots, so the failure that caused
    // the retry can still be seen.
    const previous = `${SCREENSHOTS}-previous-run`;
    await rm(previous, { recursive: true, force: true });
    if (existsSync(SCREENSHOTS) && (await readdir(SCREENSHOTS)).some((f) => f.startsWith('FAILED-'))) await rename(SCREENSHOTS, previous);
    await rm(SCREENSHOTS, { recursive: true, force: true });
    await mkdir(SCREENSHOTS, { recursive: true });
    tmp = await mkdtemp(path.join(tmpdir(), 'beit-lens-e2e-'));
    fx = await makeFixtureWorkspace(tmp);
    expected = await cliClassify(fx.userModel, [...fx.dataset.values(), fx.untrustedImage]);
    expectedWorkspaceModel = await cliClassify(fx.workspaceModel, [fx.untrustedImage]);

    server = new CodeServer({
      entry,
      dir: path.join(tmp, 'code-server'),
      vsix: VSIX,
      userSettings: {
        'beitLens.modelPath': fx.userModel,
        // Trust stays on: scenario 1 trusts its workspace through the prompt, scenario 8 declines.
        'security.workspace.trust.enabled': true,
        'workbench.colorTheme': 'Default Dark Modern',
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'workbench.enableExperiments': false,
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'extensions.ignoreRecommendations': true,
        'update.mode': 'none',
        'telemetry.telemetryLevel': 'off',
        'git.enabled': false,
        'editor.minimap.enabled': false,
        // One rendered line per document line, so reports read back whole.
        'editor.wordWrap': 'off',
        '[markdown]': { 'editor.wordWrap': 'off' },
        'chat.commandCenter.enabled': false,
        'files.hotExit': 'off',
      },
    });
    await mkdir(path.join(tmp, 'code-server'), { recursive: true });
    // Downloads fail at once, as with no network (scenario O1), on machines that have one too: a closed loopback port.
    process.env.HF_ENDPOINT = `http://127.0.0.1:${await closedPort()}`;
    const installed = await server.installExtension();
    assert.ok(existsSync(path.join(installed, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64', 'onnxruntime_binding.node')), 'the installed extension has no linux-x64 onnxruntime binding');
    await server.start();
    browser = await launchChromium();
  }

  after(async () => {
    await wb?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await server?.stop();
    if (tmp && failures === 0 && !setupError) await rm(tmp, { recursive: true, force: true });
  });

  step('1. the workspace is trusted and the status bar item reaches "ready" with the provider named', async () => {
    wb = await Workbench.open(browser!, server!.url, fx.workspace, { trust: true, screenshotDir: SCREENSHOTS });
    const status = await wb.waitForStatus(PROVIDER, fx.userModelId.split('@')[1]);
    provider = PROVIDER.exec(status.text)![1];
    assert.match(status.ariaLabel, new RegExp(`ready on ${provider}`), `status bar tooltip: ${status.ariaLabel}`);
    assert.equal(await wb.restrictedModeItem().count(), 0, 'the workspace is in Restricted Mode');
    await wb.screenshot('01-ready');

    // Clicking the item runs the doctor, which reports the trust and the model in use.
    await wb.statusItem().click();
    await wb.waitForEditorText('# BEiT Lens doctor');
    const report = (await wb.editorLines()).join('\n');
    assert.match(report, /workspace trusted: yes/);
    assert.ok(report.includes(`beitLens.modelPath: ${fx.userModel} (user or remote machine settings)`), `doctor report:\n${report}`);
    await wb.screenshot('01-doctor');
  });

  step('2. right-click an image → Classify Image shows the same top-K as beit-lens classify --json', async () => {
    const w = workbench();
    const image = 'dataset/harp_seal/gradient_640x480.jpg';
    await w.explorerContextMenu(image, CLASSIFY);
    const { title, rows } = await w.quickPickRows(6);
    assert.equal(title, `BEiT: gradient_640x480.jpg (${provider})`);
    assertPredictionRows(rows, expectedFor(path.join(fx.workspace, image)), image);
    assert.match(rows[rows.length - 1].label, /Open explanation panel/);
    await w.screenshot('02-classify-quickpick');
    await w.closeQuickPick();
  });

  step('3. hovering an image path in a Python file shows a thumbnail and the same top-5', async () => {
    await workbench().openFile('train.py', 'SAMPLE');
    await checkHover('train.py', fx.pythonImage, '03-hover-python');
  });

  step('4. hovering image paths in Markdown and CSV files shows them too', async () => {
    await workbench().openFile('NOTES.md', 'Dataset notes');
    await checkHover('NOTES.md', fx.markdownImage, '04-hover-markdown');
    await workbench().openFile('labels.csv', 'file,label');
    await checkHover('labels.csv', fx.csvImage, '04-hover-csv');
  });

  step('5. Explain Image: overlays switch, the legend names the fixture labels, clicking a patch updates the panel', async () => {
    const w = workbench();
    const image = 'dataset/harp_seal/gradient_640x480.jpg';
    const oracle = await cliExplain(fx.userModel, path.join(fx.workspace, image));
    await w.explorerContextMenu(image, EXPLAIN);
    await w.page.locator('.tab.active', { hasText: 'BEiT: gradient_640x480.jpg' }).waitFor();
    // The panel opens beside the editors; give its group the whole editor area, as one would to look closely.
    await w.runCommand('View: Toggle Maximize Editor Group');
    await w.page.locator('.editor-group-container:visible').nth(1).waitFor({ state: 'detached' });
    const panel = await w.webview('#legend');
    await panel.locator('#legend li').first().waitFor({ timeout: 90_000 });
    assert.equal((await panel.locator('#title').innerText()).trim(), 'gradient_640x480.jpg');
    const canvas = panel.locator('canvas#overlay');
    await panel.locator('#image').evaluate((img: any) => (img.complete && img.naturalWidth ? undefined : new Promise((resolve) => img.addEventListener('load', resolve, { once: true }))));

    // The top-K and the patch-prediction legend are the CLI's explanation of the same image.
    const top = await panel.locator('.top-k li .label').allInnerTexts();
    assert.deepEqual(top, oracle.top.map((p) => p.label), 'the panel top-K differs from beit-lens explain --json');
    const legend = await panel.locator('#legend li').evaluateAll((items: any[]) => items.map((li) => ({ label: li.querySelector('.label').innerText.trim(), share: li.querySelector('.share').innerText.trim() })));
    assert.deepEqual(legend.map((l) => l.label), oracle.legend.map((l) => l.label), 'the legend differs from beit-lens explain --json');
    for (const entry of legend) assert.ok(fx.fixtureLabels.includes(entry.label), `legend label "${entry.label}" is not one of the fixture model's labels`);
    legend.forEach((entry, i) => assert.ok(Math.abs(parseFloat(entry.share) - oracle.legend[i].share * 100) <= 1, `legend share of ${entry.label}: ${entry.share} vs ${oracle.legend[i].share}`));

    // Each overlay: select it, wait for the canvas to show it, screenshot; each draws something different.
    const drawn = new Map<string, string>();
    for (const [kind, caption] of [
      ['patches', undefined],
      ['class', new RegExp(`^logits of ${oracle.top[0].label}`)],
      ['rollout', /^rollout, relative to the most attended patch \(mean, discard 0\.90\)/],
    ] as const) {
      await panel.locator(`label[for="overlay-${kind}"]`).click();
      await panel.locator(`canvas#overlay[data-overlay="${kind}"]`).waitFor();
      if (caption) await panel.locator('.scale-caption', { hasText: caption }).waitFor();
      drawn.set(kind, await canvas.evaluate((c: any) => c.toDataURL()));
      await w.screenshot(`05-overlay-${kind}`);
    }
    assert.equal(new Set(drawn.values()).size, drawn.size, 'two overlays drew the same pixels');

    // Head fusion is adjustable: the rollout is recomputed.
    await panel.locator('#head-fusion').selectOption('max');
    await panel.locator('.scale-caption', { hasText: '(max, discard 0.90)' }).waitFor();
    assert.notEqual(await canvas.evaluate((c: any) => c.toDataURL()), drawn.get('rollout'), 'max head fusion drew the same rollout as mean');

    // Click a patch: the panel switches to that patch's attention map; another click updates it.
    const box = await canvas.boundingBox();
    assert.ok(box, 'the overlay canvas is not visible');
    const clickPatch = async (row: number, col: number) => {
      await w.page.mouse.click(box.x + (box.width * (col + 0.5)) / 14, box.y + (box.height * (row + 0.5)) / 14);
      await panel.locator('canvas#overlay[data-overlay="patchAttention"]').waitFor();
      await panel.locator('.scale-caption', { hasText: new RegExp(`^attention of patch ${row * 14 + col}, layer \\d+, mean of heads`) }).waitFor();
      assert.ok(await panel.locator('#overlay-patchAttention').isChecked(), 'the "Attention from a patch" overlay is not selected');
      // The pointer is still on the patch: its tooltip now gives that patch's attention, not the previous overlay's value.
      await panel.locator('#patch-tooltip', { hasText: `Attention from patch ${row * 14 + col}:` }).waitFor();
      return canvas.evaluate((c: any) => c.toDataURL());
    };
    const first = await clickPatch(3, 5);
    await w.screenshot('05-overlay-patch-attention');
    const second = await clickPatch(10, 2);
    assert.notEqual(second, first, 'attention from another patch drew the same map');
    await w.runCommand('View: Toggle Maximize Editor Group');
  });

  step('6. Classify Images in Folder shows progress, then the results', async () => {
    const w = workbench();
    const notifications = await w.recordNotifications();
    const count = fx.dataset.size;
    const progressShot = w
      .toast('BEiT Lens: scanning dataset')
      .waitFor({ timeout: 60_000 })
      .then(() => w.screenshot('06-folder-progress'))
      .catch(() => undefined);
    await w.explorerContextMenu('dataset', CLASSIFY_FOLDER);
    await w.page.locator('.tab.active', { hasText: 'Dataset: dataset' }).waitFor();
    const view = await w.webview('#rows');
    await w.runCommand('View: Toggle Maximize Editor Group');
    await view.locator('#scan-text', { hasText: new RegExp(`^Scanned ${count} images \\(${count} classified, 0 from cache, 0 errors\\)`) }).waitFor({ timeout: 120_000 });
    await progressShot;
    const seen = await notifications.recorded();
    assert.ok(
      seen.some((n) => n.progress && n.text.startsWith('BEiT Lens: scanning dataset')),
      `no progress notification was shown; notifications seen: ${JSON.stringify(seen)}`,
    );
    assert.ok(seen.some((n) => new RegExp(`\\b\\d+ of ${count} images`).test(n.text)), `the progress never counted images: ${JSON.stringify(seen)}`);
    await w.toast('BEiT Lens: scanning dataset').waitFor({ state: 'detached' });

    // One row per image, with the CLI's top-1 label and score.
    await view.locator('#rows .row[data-row]').nth(count - 1).waitFor();
    const rows = await view.locator('#rows .row[data-row]').evaluateAll((els: any[]) =>
      els.map((row) => ({
        name: row.querySelector('.c-path .name')?.textContent ?? '',
        // The path cell adds the directory only when the folder column does not already name it.
        dir: row.querySelector('.c-path .dir')?.textContent ?? row.querySelector('.c-folder')?.textContent ?? '',
        label: row.querySelector('.c-label')?.textContent ?? '',
        score: row.querySelector('.c-score .score-text')?.textContent ?? '',
      })),
    );
    assert.equal(rows.length, count, `expected ${count} rows: ${JSON.stringify(rows)}`);
    for (const [relative, file] of fx.dataset) {
      const row = rows.find((r) => relative.endsWith(`/${r.dir}/${r.name}`) || relative === `dataset/${r.dir}/${r.name}`);
      assert.ok(row, `no row for ${relative}: ${JSON.stringify(rows)}`);
      const top1 = expectedFor(file)[0];
      assert.deepEqual({ label: row.label, score: row.score }, { label: top1.label, score: `${(top1.score * 100).toFixed(1)}%` }, `${relative}: the dataset view differs from beit-lens classify --json`);
    }
    await w.screenshot('06-folder-results');
    await w.runCommand('View: Toggle Maximize Editor Group');
  });

  step('7. a corrupt image gives an error naming the file, and the next classify still works', async () => {
    const w = workbench();
    await w.explorerContextMenu('broken/corrupt.jpg', CLASSIFY);
    const toast = w.toast('corrupt.jpg');
    await toast.waitFor({ timeout: 90_000 });
    const message = (await toast.locator('.notification-list-item-message').innerText()).trim();
    assert.match(message, /^BEiT Lens: classifying corrupt\.jpg: .*corrupt\.jpg/, `error notification: ${message}`);
    assert.equal(await toast.locator('.codicon-error').count(), 1, 'the notification is not an error');
    assert.equal(await toast.getByRole('button', { name: 'Run Doctor' }).count(), 1, 'the error offers no way to the doctor');
    await w.screenshot('07-corrupt-error');

    const image = 'dataset/river_otter/alpha_300x200.png';
    await w.explorerContextMenu(image, CLASSIFY);
    const { title, rows } = await w.quickPickRows(6);
    assert.equal(title, `BEiT: alpha_300x200.png (${provider})`);
    assertPredictionRows(rows, expectedFor(path.join(fx.workspace, image)), image);
    await w.screenshot('07-classify-after-error');
    await w.closeQuickPick();
    // An error toast stays until dismissed (VS Code's API cannot close it); the later steps click where it sits.
    await w.runCommand('Notifications: Clear All Notifications');
    await w.page.locator('.notifications-toasts .notification-toast').first().waitFor({ state: 'detached' });
  });


  step('C1. right-click a .bmp offers no Classify or Explain (no decoder for it); a PNG still does', () => bmpHasNoClassifyMenu(workbench(), fx, { classify: CLASSIFY, explain: EXPLAIN }));

  step('M1. BEiT Lens: Show Model shows the loaded model, and its filter finds a fixture label', () => modelViewFindsLabel(workbench(), fx, provider));

  step('P1. the explanation panel keeps its controls on screen: stacked beside the editor, a side panel when wide', async () => {
    const w = workbench();
    const panel = await openPanelBeside(w, EXPLAIN);
    await controlsInViewport(w, panel, (name) => w.screenshot(name));
  });

  step('P2. the panel fits the image and toggles to 1:1 and back', async () => {
    const w = workbench();
    await zoomToggle(await w.webview('#zoom-value'), (name) => w.screenshot(name));
  });

  step('P3. Export PNG writes the image with its legend strip, then Reveal in Explorer shows the file', async () => {
    const w = workbench();
    const top = expectedFor(path.join(fx.workspace, PANEL_IMAGE))[0];
    await exportAndReveal(w, await w.webview('#export'), fx.workspace, top, (name) => w.screenshot(name));
  });

  step('N1. hovering image paths in a notebook code cell and Markdown cell shows the same top-5 (paths from the notebook folder)', async () => {
    await notebookHovers(workbench(), fx, notebookChecks());
  });

  step('N2. Classify Output Images on a stored PNG and a stored JPEG output equals beit-lens classify --json on the same bytes', async () => {
    await classifyOutputImages(workbench(), fx, notebookChecks(), title('beitLens.classifyOutputImages'));
  });

  step('N3. Explain Output Image opens the panel on the output, named after the notebook and cell', async () => {
    await explainOutputImage(workbench(), fx, title('beitLens.explainOutputImage'));
  });

  const datasetDeps = (): DatasetScenarioDeps => ({ dataset: fx.dataset, classifyFolder: CLASSIFY_FOLDER, classifyImage: CLASSIFY, expectedFor: (file) => expectedFor(file) });
  step('D1. a rescan of the folder (all from the cache) lists the rows in path order', () => rescanKeepsPathOrder(workbench(), datasetDeps()));
  step('D2. clicking two rows opens both images in one group beside the dataset view', () => rowsOpenBesideInOneGroup(workbench()));
  step('D3. several images → Classify Image opens the results as a .csv file with Save As…', () => selectionResultsAsCsvFile(workbench(), datasetDeps()));
  step('MAP1. the Dataset view Map tab shows every image as a point; a box selection filters the table, its chip clears it', () => mapSelectionFiltersTable(workbench(), datasetDeps()));

  step('H1. the hover fits without scrolling: thumbnail beside the top-5, the Explain link in view, dimensions, size and format', async () => {
    const height = await hoverFits(workbench(), fx, expectedFor(path.join(fx.workspace, fx.pythonImage)), 'H1-hover-fits');
    console.log(`# hover height: ${Math.round(height)} px`);
  });

  step('H2. hovering a path to an image that does not exist says "not found" and where it looked', async () => {
    await hoverNotFound(workbench(), fx, 'H2-hover-not-found');
  });

  step('H3. without a model the hover still shows the thumbnail and the model state; the model comes back', async () => {
    await hoverWithoutModel(workbench(), fx, { ready: PROVIDER, userModelHash: fx.userModelId.split('@')[1] }, 'H3-hover-no-model');
  });

  step('O4. a notice about a model that failed to load offers command links, and closes once the model is back', async () => {
    await staleNoticeCloses(workbench(), fx, { status: PROVIDER, userModelHash: fx.userModelId.split('@')[1] });
  });

  step('O1. Download Model with no network offers Convert a Hugging Face Folder… and Select Model Folder…; converting the fixture puts it to use', async () => {
    await downloadOfflineThenConvert(workbench(), fx);
  });

  step('O2. the doctor report is a read-only document with Copy, closed without a save prompt', async () => {
    await doctorIsReadOnly(workbench());
  });

  step('O3. editing the remote machine settings.json on disk switches the model, and removing the value brings the user one back', async () => {
    await settingsFileEdit(workbench(), fx, server!.userData);
  });

  const similarity = (): SimilarityScenarioDeps => ({
    workspace: fx.workspace,
    dataset: fx.dataset,
    findSimilar: FIND_SIMILAR,
    classifyFolder: CLASSIFY_FOLDER,
    cliSimilar: (image, dir, topK) => cliSimilar(fx.userModel, image, dir, topK, path.join(tmp!, 'cli-scan-cache.log')),
  });

  step('Q1. the dataset view shows quality flags as chips and filters by flag', () => qualityColumnAndFilter(workbench(), { dataset: fx.dataset, classifyFolder: CLASSIFY_FOLDER }));
  step('U1. explorer → Find Similar Images: the Dataset view lists beit-lens similar’s neighbours with their cosines', () => findSimilarFromExplorer(workbench(), similarity()));

  step('U2. an exact copy added to the dataset shows in the Duplicates tab beside its original', () => duplicatesTabShowsCopy(workbench(), similarity()));
  step('G1. Dataset view → Gallery: thumbnails with the CLI\'s top-1, the size slider brings larger ones, a double-click explains', () =>
    galleryShowsThumbnails(workbench(), { dataset: fx.dataset, classifyFolder: CLASSIFY_FOLDER, expectedFor: (file) => expectedFor(file) }),
  );
  step('G2. the Model view comes back after Developer: Reload Window', async () => {
    await modelViewSurvivesReload(workbench(), fx);
    // Views the serializers would restore must not open in the untrusted workbench of step 8 and cover its editor.
    await workbench().closeAllEditorGroups();
  });

  step("8. in an untrusted workspace the workspace's beitLens.modelPath is not used", async () => {
    await wb?.close();
    wb = undefined;
    const w = (wb = await Workbench.open(browser!, server!.url, fx.untrusted, { trust: false, screenshotDir: SCREENSHOTS }));
    await w.restrictedModeItem().waitFor();
    const userHash = fx.userModelId.split('@')[1];
    const workspaceHash = fx.workspaceModelId.split('@')[1];
    const status = await w.waitForStatus(PROVIDER, userHash);
    assert.ok(!status.ariaLabel.includes(workspaceHash), `Restricted Mode loaded the workspace's model: ${status.ariaLabel}`);

    const image = 'photos/gray_256x256.png';
    await w.explorerContextMenu(image, CLASSIFY);
    const restricted = await w.quickPickRows(6);
    assertPredictionRows(restricted.rows, expectedFor(fx.untrustedImage), `${image} in Restricted Mode`);
    assert.ok(!restricted.rows.some((r) => r.label.startsWith('random class')), 'Restricted Mode classified with the workspace model');
    await w.screenshot('08-untrusted-classify');
    await w.closeQuickPick();

    // Hovers read only images inside the workspace folders until the workspace is trusted.
    await w.openFile('notes.py', 'INSIDE');
    const inside = await w.hoverForPrediction('photos/gray_256x256.png', 'gray_256x256.png');
    assert.deepEqual(
      await hoverTable(inside),
      expectedFor(fx.untrustedImage).slice(0, 5).map((p, i) => [String(i + 1), p.label, shownScore(p.score)]),
      'Restricted Mode: the hover over an image inside the workspace differs from beit-lens classify --json',
    );
    const outside = await w.hoverWithMessage(fx.outsideImage, 'Not previewed in Restricted Mode: only images inside the workspace folders are read.');
    assert.equal(await outside.locator('img').count(), 0, 'Restricted Mode: the hover shows a thumbnail of an image outside the workspace');
    assert.equal(await outside.locator('table').count(), 0, 'Restricted Mode: the hover classified an image outside the workspace');
    await w.screenshot('08-untrusted-hover-outside');

    await w.statusItem().click();
    await w.waitForEditorText('# BEiT Lens doctor');
    const report = (await w.editorLines()).join('\n');
    assert.match(report, /workspace trusted: no \(Restricted Mode: workspace beitLens\.modelPath, beitLens\.executionProvider and the endpoint settings are ignored\)/);
    assert.ok(report.includes(`beitLens.modelPath: ${fx.userModel} (user or remote machine settings)`), `doctor report:\n${report}`);
    await w.screenshot('08-untrusted-doctor');

    // The setting is real: once the user trusts the workspace, its model is the one used.
    await w.runCommand('Workspaces: Manage Workspace Trust');
    await w.page.locator('.workspace-trust-editor .workspace-trust-buttons-row .monaco-button', { hasText: /^Trust$/ }).click();
    await w.restrictedModeItem().waitFor({ state: 'detached' });
    await w.waitForStatus(PROVIDER, workspaceHash);
    await w.explorerContextMenu(image, CLASSIFY);
    const trusted = await w.quickPickRows(6);
    assertPredictionRows(trusted.rows, expectedFor(fx.untrustedImage, expectedWorkspaceModel), `${image} once trusted`);
    await w.screenshot('08-trusted-workspace-model');
    await w.closeQuickPick();
    await w.openFile('notes.py', 'INSIDE');
    const trustedOutside = await w.hoverForPrediction(fx.outsideImage, path.basename(fx.outsideImage));
    assert.equal(await trustedOutside.locator('img[src^="data:image/"]').count(), 1, 'once trusted, the hover over an image outside the workspace shows no thumbnail');
  });
});
