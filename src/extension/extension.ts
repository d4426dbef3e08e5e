/**
 * BEiT Lens for VS Code. Activation only wires things up — the model loads in the background in a
 * child process — so it takes milliseconds and never waits for the model.
 */
import * as vscode from 'vscode';
import { registerClassifyFolderCommand } from './commands/classifyFolderCommand';
import { registerClassifyImageCommand } from './commands/classifyImageCommand';
import { registerDoctorCommand } from './commands/doctorCommand';
import { registerClearEndpointTokenCommand, registerSetEndpointTokenCommand } from './commands/endpointTokenCommands';
import { registerExplainImageCommand } from './commands/explainImageCommand';
import { registerFindSimilarCommand } from './commands/findSimilarCommand';
import { registerConvertModelCommand, registerDownloadModelCommand, registerSelectModelCommand } from './commands/modelCommands';
import { Command, DATASET_VIEW_TYPE, EXPLANATION_VIEW_TYPE, MODEL_VIEW_TYPE } from './commandIds';
import { DatasetPanels } from './dataset/datasetPanels';
import { FileHasher } from './hover/fileHasher';
import { HoverPreviews } from './hover/hoverPreviews';
import { IMAGE_HOVER_SELECTOR, ImageHoverProvider } from './hover/imageHoverProvider';
import { InferenceClient, ModelState } from './inference/inferenceClient';
import { ModelController } from './model/modelController';
import { ModelNotices } from './model/modelNotices';
import { ModelStatusBar } from './model/modelStatusBar';
import { registerOutputImageCommands } from './notebook/outputImageCommands';
import { ExplanationPanels } from './panel/explanationPanel';
import { ModelPanels } from './panel/modelPanel';
import { CONFIG_SECTION, readViewSettings } from './settings';

/** What activate() returns: used by the integration tests (and available to other extensions). */
export interface BeitLensApi {
  readonly inference: InferenceClient;
  readonly explanationPanels: ExplanationPanels;
  readonly datasetPanels: DatasetPanels;
  readonly hoverPreviews: HoverPreviews;
  /** The model state once loading has finished. */
  modelSettled(): Promise<ModelState>;
}

let inferenceClient: InferenceClient | undefined;

export function activate(context: vscode.ExtensionContext): BeitLensApi {
  const register = <T extends vscode.Disposable>(disposable: T): T => {
    context.subscriptions.push(disposable);
    return disposable;
  };

  const log = register(vscode.window.createOutputChannel('BEiT Lens', { log: true }));
  const inference = register(new InferenceClient({ workerScript: context.asAbsolutePath('dist/inferenceWorker.js'), log }));
  inferenceClient = inference;
  const notices = register(new ModelNotices(inference, showProgressNotice));
  const models = register(new ModelController(inference, log, notices, vscode.Uri.joinPath(context.globalStorageUri, 'models').fsPath, context.secrets));
  const panels = register(new ExplanationPanels({ extensionUri: context.extensionUri, inference, log, memento: context.workspaceState }));
  const datasets = register(
    new DatasetPanels({
      extensionUri: context.extensionUri,
      storageUri: context.globalStorageUri,
      inference,
      notices,
      log,
      memento: context.workspaceState,
      settings: () => readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key)),
      explainImage: (file, viewColumn) => void panels.open(file, viewColumn),
    }),
  );
  const hoverPreviews = new HoverPreviews(inference);
  register({ dispose: () => hoverPreviews.cancelAll() });

  register(new ModelStatusBar(inference));
  register(vscode.window.registerWebviewPanelSerializer(EXPLANATION_VIEW_TYPE, panels));
  register(vscode.window.registerWebviewPanelSerializer(DATASET_VIEW_TYPE, datasets));
  register(vscode.languages.registerHoverProvider(IMAGE_HOVER_SELECTOR, new ImageHoverProvider({ inference, previews: hoverPreviews, hasher: new FileHasher() })));
  register(registerClassifyImageCommand(inference, notices, { resultsDir: vscode.Uri.joinPath(context.globalStorageUri, 'selections').fsPath }));
  register(registerExplainImageCommand(panels));
  register(registerClassifyFolderCommand(datasets));
  register(registerFindSimilarCommand(datasets, notices));
  register(registerOutputImageCommands(inference, notices, panels));
  register(registerDownloadModelCommand(inference, models, log));
  register(registerSelectModelCommand(models));
  register(registerConvertModelCommand(inference, models, log));
  register(registerDoctorCommand(inference, models, context.extension));
  const modelPanels = register(new ModelPanels({ extensionUri: context.extensionUri, inference, log }));
  register(vscode.window.registerWebviewPanelSerializer(MODEL_VIEW_TYPE, modelPanels));
  register(vscode.commands.registerCommand(Command.showModel, () => modelPanels.show()));
  register(registerSetEndpointTokenCommand(context.secrets));
  register(registerClearEndpointTokenCommand(context.secrets));

  models.start();
  return { inference, explanationPanels: panels, datasetPanels: datasets, hoverPreviews, modelSettled: () => inference.whenSettled() };
}

/** Ends the worker process (and with it any native memory) before the extension host goes. */
export async function deactivate(): Promise<void> {
  await inferenceClient?.dispose();
  inferenceClient = undefined;
}

/** A notification that stays until `until` settles or Cancel dismisses it (a progress one: the only kind VS Code closes on request). */
function showProgressNotice(text: string, until: Promise<unknown>): Thenable<void> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: text, cancellable: true }, (_progress, token) =>
    new Promise<void>((resolve) => {
      const cancelled = token.onCancellationRequested(() => resolve());
      void until.then(() => resolve()).finally(() => cancelled.dispose());
    }),
  );
}
