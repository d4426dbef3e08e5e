/**
 * `beitLens.classifyFolder`: scans a folder in the inference worker and shows it in the dataset view
 * (progress with images/s and ETA, cancellable, resumable from the scan cache). Resolves with the scan's
 * outcome once it has ended, which is what tests and other extensions wait on.
 */
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { DatasetPanels, DatasetScanResult } from '../dataset/datasetPanels';
import { uriFromArgument } from './imageTarget';

export function registerClassifyFolderCommand(datasets: DatasetPanels): vscode.Disposable {
  return vscode.commands.registerCommand(Command.classifyFolder, async (arg?: unknown): Promise<DatasetScanResult | undefined> => {
    let folder = uriFromArgument(arg);
    if (!folder) {
      const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Scan images', title: 'BEiT Lens: choose a folder of images' });
      folder = picked?.[0];
    }
    if (!folder) return undefined;
    if (folder.scheme !== 'file') {
      void vscode.window.showErrorMessage(`BEiT Lens reads images from disk only; ${folder.toString(true)} is not a local folder.`);
      return undefined;
    }
    return datasets.scanFolder(folder.fsPath);
  });
}
