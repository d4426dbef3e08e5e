/**
 * Results for several images selected in the explorer (`beitLens.classifyImage` on a multi-selection),
 * with progress and cancellation. Folders go to the dataset view.
 *
 * The CSV is written to a file in the extension's storage and opened from there: an untitled document
 * would be named after its first line (the CSV header) and ask to be saved when closed. A real `.csv` file
 * gets the CSV language when one is installed, closes quietly, and "Save As…" copies it where the user wants.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { InferenceService } from '../inference/inferenceClient';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { resultsCsv, scanImages } from './folderScan';
import { ModelNotices } from '../model/modelNotices';
import { reportError } from './reportError';

/** Result files kept in storage; older ones are removed when a new one is written. */
const KEEP_RESULT_FILES = 20;
const SAVE_AS = 'Save As…';

export interface SelectionResultsDeps {
  inference: InferenceService;
  notices: ModelNotices;
  /** Where result files go (under the extension's global storage). */
  resultsDir: string;
}

export async function showSelectionResults(deps: SelectionResultsDeps, files: string[], what: string): Promise<vscode.TextDocument | undefined> {
  const { topK } = readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key));
  try {
    const scan = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `BEiT Lens: classifying ${files.length} images`, cancellable: true },
      (progress, token) => {
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => controller.abort());
        let reported = 0;
        return scanImages(deps.inference, files, {
          topK,
          signal: controller.signal,
          onProgress: (done, total) => {
            progress.report({ message: `${done} of ${total}`, increment: ((done - reported) / total) * 100 });
            reported = done;
          },
        }).finally(() => subscription.dispose());
      },
    );
    const errors = scan.results.filter((r) => r.error !== undefined).length;
    const content = resultsCsv(scan.results, topK);
    const file = await writeResultsFile(deps.resultsDir, content, new Date());
    const document = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
    await vscode.window.showTextDocument(document, { preview: false });
    const summary = `${scan.results.length} of ${files.length} images in ${what}${errors ? `, ${errors} with errors` : ''}`;
    // Shown, not awaited: the command is done when the results are on screen.
    const message = scan.cancelled ? vscode.window.showWarningMessage(`BEiT Lens: cancelled after ${summary}.`, SAVE_AS) : vscode.window.showInformationMessage(`BEiT Lens: classified ${summary}.`, SAVE_AS);
    void message.then((choice) => (choice === SAVE_AS ? saveResultsAs(content, files, deps.notices) : undefined));
    return document;
  } catch (err) {
    void reportError(err, `classifying ${what}`, deps.notices);
    return undefined;
  }
}

/** `classified-YYYYMMDD-HHMMSS.csv` (a counter is added within one second); the oldest beyond the limit go. */
export async function writeResultsFile(dir: string, content: string, now: Date): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const existing = new Set(await readdir(dir));
  let name = `classified-${stamp}.csv`;
  for (let n = 2; existing.has(name); n++) name = `classified-${stamp}-${n}.csv`;
  const file = path.join(dir, name);
  await writeFile(file, content, { encoding: 'utf8', flag: 'wx' });
  const old = [...existing, name].filter((f) => /^classified-\d{8}-\d{6}(-\d+)?\.csv$/.test(f)).sort(compareResultNames);
  for (const stale of old.slice(0, Math.max(0, old.length - KEEP_RESULT_FILES))) await rm(path.join(dir, stale), { force: true });
  return file;
}

/** Oldest first: by time stamp, then by the counter ("-2" after the plain name, "-10" after "-9"). */
function compareResultNames(a: string, b: string): number {
  const key = (f: string) => {
    const m = /^classified-(\d{8}-\d{6})(?:-(\d+))?\.csv$/.exec(f)!;
    return [m[1], Number(m[2] ?? 1)] as const;
  };
  const [ta, na] = key(a);
  const [tb, nb] = key(b);
  return ta < tb ? -1 : ta > tb ? 1 : na - nb;
}

async function saveResultsAs(content: string, files: string[], notices: ModelNotices): Promise<void> {
  const near = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(files[0]))?.uri ?? vscode.Uri.file(path.dirname(files[0]));
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.joinPath(near, 'beit-lens-results.csv'), filters: { CSV: ['csv'] }, title: 'BEiT Lens: save the results' });
  if (!target) return;
  try {
    await vscode.workspace.fs.writeFile(target, Buffer.from(content, 'utf8'));
    const document = await vscode.workspace.openTextDocument(target);
    await vscode.window.showTextDocument(document, { preview: false });
  } catch (err) {
    void reportError(err, `saving the results to ${target.fsPath}`, notices);
  }
}
