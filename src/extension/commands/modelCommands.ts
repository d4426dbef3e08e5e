/**
 * `beitLens.downloadModel`, `beitLens.convertModel` and `beitLens.selectModel`: the ways to get a model,
 * the last two for machines that cannot reach the hub.
 */
import * as vscode from 'vscode';
import { loadModelDirectory } from '../../core/modelDirectory';
import { Command } from '../commandIds';
import { InferenceService } from '../inference/inferenceClient';
import { OFFLINE_MODEL_ACTIONS, offerModelActions } from '../model/modelActions';
import { ModelController } from '../model/modelController';
import { OFFICIAL_MODEL_ID } from '../../core/modelStore';
import { isInferenceError } from '../inference/inferenceClient';
import { CONFIG_SECTION } from '../settings';
import { ProgressEvent } from '../worker/workerProtocol';
import { reportError } from './reportError';

export function registerDownloadModelCommand(inference: InferenceService, models: ModelController, log: vscode.LogOutputChannel): vscode.Disposable {
  let running: Promise<string | undefined> | undefined;
  const download = async (): Promise<string | undefined> => {
    try {
      const { dir } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'BEiT Lens: getting the BEiT model', cancellable: true },
        (progress, token) => {
          const controller = new AbortController();
          const subscription = token.onCancellationRequested(() => controller.abort());
          return inference
            .call('ensureModel', { cacheDir: models.cacheDir }, { signal: controller.signal, onProgress: (event) => report(event, progress, log) })
            .finally(() => subscription.dispose());
        },
      );
      log.info(`model downloaded and converted into ${dir}`);
      const state = await models.refresh(true);
      if (state.kind === 'ready') void vscode.window.showInformationMessage(`BEiT Lens: the model is ready (${state.model.provider}).`);
      return dir;
    } catch (err) {
      if (isInferenceError(err, 'HUB_UNREACHABLE')) void offerOfflineWays((err as Error).message);
      else void reportError(err, 'downloading the model', models.notices);
      return undefined;
    }
  };
  return vscode.commands.registerCommand(Command.downloadModel, () => {
    // A second click while downloading joins the running download.
    running ??= download().finally(() => (running = undefined));
    return running;
  });
}

/** The command that fetches the official model's files on another machine (what the converter reads). */
export const OFFLINE_DOWNLOAD_COMMAND = `huggingface-cli download ${OFFICIAL_MODEL_ID} config.json preprocessor_config.json model.safetensors --local-dir beit-base`;

/** No network: the ways to a model that need none, and how to get the files elsewhere. */
async function offerOfflineWays(reason: string): Promise<void> {
  await offerModelActions(
    (text, ...items) => vscode.window.showErrorMessage(text, ...items),
    `BEiT Lens: downloading the model: ${reason}. On a machine with network, run \`${OFFLINE_DOWNLOAD_COMMAND}\`, copy the folder here and convert it; or select a folder with an already converted model.`,
    OFFLINE_MODEL_ACTIONS,
    (command) => vscode.commands.executeCommand(command),
  );
}

/**
 * `beitLens.convertModel`: a Hugging Face folder (config.json, preprocessor_config.json, model.safetensors or
 * pytorch_model.bin) converted by the inference worker, off the extension host, into the extension's storage,
 * then used as Select Model Folder would.
 */
export function registerConvertModelCommand(inference: InferenceService, models: ModelController, log: vscode.LogOutputChannel): vscode.Disposable {
  return vscode.commands.registerCommand(Command.convertModel, async (arg?: unknown): Promise<string | undefined> => {
    let folder = arg instanceof vscode.Uri ? arg : typeof arg === 'string' ? vscode.Uri.file(arg) : undefined;
    if (!folder) {
      const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Convert this folder', title: 'BEiT Lens: choose a Hugging Face model folder (config.json, preprocessor_config.json, model.safetensors)' });
      folder = picked?.[0];
    }
    if (!folder) return undefined;
    if (folder.scheme !== 'file') {
      void vscode.window.showErrorMessage('BEiT Lens: the Hugging Face folder must be on this machine’s disk.');
      return undefined;
    }
    const from = folder.fsPath;
    try {
      const { dir, warnings } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `BEiT Lens: converting ${from}`, cancellable: true },
        (progress, token) => {
          const controller = new AbortController();
          const subscription = token.onCancellationRequested(() => controller.abort());
          return inference
            .call('convertFolder', { from, cacheDir: models.cacheDir }, { signal: controller.signal, onProgress: (event) => report(event, progress, log) })
            .finally(() => subscription.dispose());
        },
      );
      for (const w of warnings) log.warn(w);
      log.info(`converted ${from} into ${dir}`);
      return (await vscode.commands.executeCommand<string | undefined>(Command.selectModel, dir)) ? dir : undefined;
    } catch (err) {
      void reportError(err, `converting ${from}`, models.notices);
      return undefined;
    }
  });
}

function report(event: ProgressEvent, progress: vscode.Progress<{ message?: string }>, log: vscode.LogOutputChannel): void {
  if (event.kind === 'log') {
    log.info(event.message);
    progress.report({ message: event.message });
    return;
  }
  if (event.kind !== 'download') return;
  const { file, received, total, waiting } = event.progress;
  if (waiting) {
    progress.report({ message: `waiting for ${waiting.host}… ${waiting.seconds} s (timeout ${waiting.timeoutSeconds} s)` });
    return;
  }
  const mb = (n: number) => (n / 1e6).toFixed(1);
  progress.report({ message: `${file}: ${mb(received)}${total ? ` of ${mb(total)} MB (${Math.floor((100 * received) / total)}%)` : ' MB'}` });
}

export function registerSelectModelCommand(models: ModelController): vscode.Disposable {
  return vscode.commands.registerCommand(Command.selectModel, async (arg?: unknown): Promise<string | undefined> => {
    let folder = arg instanceof vscode.Uri ? arg : typeof arg === 'string' ? vscode.Uri.file(arg) : undefined;
    if (!folder) {
      const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use this model', title: 'BEiT Lens: choose a converted model folder (model.onnx, config.json, preprocessor_config.json)' });
      folder = picked?.[0];
    }
    if (!folder) return undefined;
    if (folder.scheme !== 'file') {
      void vscode.window.showErrorMessage('BEiT Lens: the model folder must be on this machine’s disk.');
      return undefined;
    }
    try {
      await loadModelDirectory(folder.fsPath);
      const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
      await config.update('modelPath', folder.fsPath, vscode.ConfigurationTarget.Global);
      const inspected = config.inspect('modelPath');
      if (vscode.workspace.isTrusted && (inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined)) {
        void vscode.window.showWarningMessage('BEiT Lens: this workspace sets its own beitLens.modelPath, which takes precedence over the folder you chose.');
      }
      const state = await models.refresh();
      if (state.kind === 'failed') models.reportBadModelPath(state.message);
      return folder.fsPath;
    } catch (err) {
      void reportError(err, `using ${folder.fsPath} as the model`, models.notices);
      return undefined;
    }
  });
}
