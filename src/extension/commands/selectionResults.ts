/**
 * Results for several images selected in the explorer (`beitLens.classifyImage` on a multi-selection),
 * with progress and cancellation, written to an untitled CSV document. Folders go to the dataset view.
 */
import * as vscode from 'vscode';
import { InferenceService } from '../inference/inferenceClient';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { resultsCsv, scanImages } from './folderScan';
import { reportError } from './reportError';

export async function showSelectionResults(inference: InferenceService, files: string[], what: string): Promise<vscode.TextDocument | undefined> {
  const { topK } = readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key));
  try {
    const scan = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `BEiT Lens: classifying ${files.length} images`, cancellable: true },
      (progress, token) => {
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => controller.abort());
        let reported = 0;
        return scanImages(inference, files, {
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
    const document = await openCsv(resultsCsv(scan.results, topK));
    await vscode.window.showTextDocument(document, { preview: false });
    const summary = `${scan.results.length} of ${files.length} images in ${what}${errors ? `, ${errors} with errors` : ''}`;
    if (scan.cancelled) void vscode.window.showWarningMessage(`BEiT Lens: cancelled after ${summary}.`);
    else vscode.window.setStatusBarMessage(`BEiT Lens: classified ${summary}`, 5000);
    return document;
  } catch (err) {
    void reportError(err, `classifying ${what}`);
    return undefined;
  }
}

async function openCsv(content: string): Promise<vscode.TextDocument> {
  // 'csv' is a language only when an extension contributes it; plain text still gets hovers.
  const languages = await vscode.languages.getLanguages();
  return vscode.workspace.openTextDocument({ language: languages.includes('csv') ? 'csv' : 'plaintext', content });
}
