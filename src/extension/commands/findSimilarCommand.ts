/**
 * `beitLens.findSimilarImages`: the Dataset view filtered to an image's nearest neighbours, from the explorer,
 * the image preview's title bar, the explanation panel (which passes its image) or a Dataset view row (which
 * the view handles itself). Resolves with where it looked and how many it found, which tests wait on.
 */
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import type { DatasetPanels, FindSimilarResult } from '../dataset/datasetPanels';
import { resolveImageTarget } from './imageTarget';
import { ModelNotices } from '../model/modelNotices';
import { reportError } from './reportError';

export function registerFindSimilarCommand(datasets: DatasetPanels, notices: ModelNotices): vscode.Disposable {
  return vscode.commands.registerCommand(Command.findSimilarImages, async (arg?: unknown): Promise<FindSimilarResult | undefined> => {
    const uri = await resolveImageTarget(arg);
    if (!uri) return undefined;
    try {
      return await datasets.findSimilar(uri.fsPath);
    } catch (err) {
      void reportError(err, `finding images similar to ${uri.fsPath}`, notices);
      return undefined;
    }
  });
}
