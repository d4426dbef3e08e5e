/**
 * `beitLens.classifyFolder`: every image under a folder, with progress and cancellation, written
 * to an untitled CSV document. (The dataset view will take this over.)
 */
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { IMAGE_EXTENSIONS } from '../hover/imagePathDetection';
import { InferenceService } from '../inference/inferenceClient';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { resultsCsv, scanImages } from './folderScan';
import { uriFromArgument } from './imageTarget';
import { reportError } from './reportError';

/** Globs are case-sensitive on Linux, and cameras write .JPG. */
const IMAGE_GLOB = `**/*.{${IMAGE_EXTENSIONS.flatMap((e) => [e, e.toUpperCase()]).join(',')}}`;
const EXCLUDE_GLOB = '**/{node_modules,.git}/**';
const MAX_FILES = 100_000;

export function registerClassifyFolderCommand(inference: InferenceService): vscode.Disposable {
  return vscode.commands.registerCommand(Command.classifyFolder, async (arg?: unknown): Promise<vscode.TextDocument | undefined> => {
    let folder = uriFromArgument(arg);
    if (!folder) {
      const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Classify images', title: 'BEiT Lens: choose a folder of images' });
      folder = picked?.[0];
    }
    if (!folder) return undefined;
    if (folder.scheme !== 'file') {
      void vscode.window.showErrorMessage(`BEiT Lens reads images from disk only; ${folder.toString(true)} is not a local folder.`);
      return undefined;
    }
    const found = await vscode.workspace.findFiles(new vscode.RelativePattern(folder, IMAGE_GLOB), EXCLUDE_GLOB, MAX_FILES);
    const files = found.map((u) => u.fsPath).sort();
    if (files.length === 0) {
      void vscode.window.showInformationMessage(`BEiT Lens: no images (${IMAGE_EXTENSIONS.join(', ')}) under ${folder.fsPath}.`);
      return undefined;
    }
    return showFolderResults(inference, files, folder.fsPath);
  });
}

export async function showFolderResults(inference: InferenceService, files: string[], what: string): Promise<vscode.TextDocument | undefined> {
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
