/**
 * `beitLens.doctor`: one document with everything needed to debug a setup remotely — versions,
 * trust, which settings were honoured or ignored, model state, worker health, and the worker's
 * own report (providers tried, model files, cache locations).
 */
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { InferenceClient } from '../inference/inferenceClient';
import { ModelController } from '../model/modelController';
import { describe } from '../model/describeModelState';
import { describeScope } from '../settings';

// Past this the worker is presumed stuck and is restarted.
const DOCTOR_TIMEOUT_MS = 120_000;

/** The report is a read-only virtual document: nothing to save, no prompt on close (an untitled editor asked). */
export const DOCTOR_SCHEME = 'beit-lens-doctor';
export const DOCTOR_URI = vscode.Uri.from({ scheme: DOCTOR_SCHEME, path: '/BEiT Lens doctor.md' });

class DoctorDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  text = '';

  provideTextDocumentContent(): string {
    return this.text;
  }

  set(text: string): void {
    this.text = text;
    this.changed.fire(DOCTOR_URI);
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export function registerDoctorCommand(inference: InferenceClient, models: ModelController, extension: vscode.ExtensionContext['extension']): vscode.Disposable {
  const documents = new DoctorDocuments();
  return vscode.Disposable.from(
    documents,
    vscode.workspace.registerTextDocumentContentProvider(DOCTOR_SCHEME, documents),
    vscode.commands.registerCommand(Command.doctor, async (): Promise<string> => {
      const text = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'BEiT Lens: running the doctor' }, () => doctorReport(inference, models, extension));
      documents.set(text);
      const document = await vscode.languages.setTextDocumentLanguage(await vscode.workspace.openTextDocument(DOCTOR_URI), 'markdown');
      await vscode.window.showTextDocument(document, { preview: false });
      return text;
    }),
    vscode.commands.registerCommand(Command.copyDoctorReport, async (): Promise<string | undefined> => {
      if (!documents.text) {
        void vscode.window.showInformationMessage('BEiT Lens: run the doctor first (BEiT Lens: Doctor).');
        return undefined;
      }
      await vscode.env.clipboard.writeText(documents.text);
      void vscode.window.showInformationMessage('BEiT Lens: the doctor report is on the clipboard.');
      return documents.text;
    }),
  );
}

async function doctorReport(inference: InferenceClient, models: ModelController, extension: vscode.ExtensionContext['extension']): Promise<string> {
  const settings = models.settings;
  const state = inference.state;
  const lines = [
    '# BEiT Lens doctor',
    '',
    `- extension: ${extension.id} ${String((extension.packageJSON as { version?: unknown }).version ?? '')} (${extension.extensionKind === vscode.ExtensionKind.Workspace ? 'workspace' : 'ui'} host${vscode.env.remoteName ? `, remote: ${vscode.env.remoteName}` : ''})`,
    `- editor: ${vscode.env.appName} ${vscode.version} (${vscode.env.appHost})`,
    `- workspace trusted: ${vscode.workspace.isTrusted ? 'yes' : 'no (Restricted Mode: workspace beitLens.modelPath, beitLens.executionProvider and the endpoint settings are ignored)'}`,
    `- beitLens.modelPath: ${settings.modelPath ? `${settings.modelPath.dir} (${describeScope(settings.modelPath.scope)})` : 'not set'}`,
    `- beitLens.executionProvider: ${settings.provider}`,
    `- beitLens.endpoint: ${settings.remote ? `${settings.remote.endpoints.join(', ')} (model ${settings.remote.modelName}${settings.remote.caFile ? `, CA ${settings.remote.caFile}` : ''}; endpoint token ${(await models.hasEndpointToken()) ? 'stored' : 'not stored'})` : (settings.endpointProblem ?? 'not set (the model runs in the inference worker)')}`,
    ...settings.notes.map((n) => `- note: ${n}`),
    `- model: ${describe(state, 'plain').tooltip.replace(/\n+/g, ' ')}`,
    `- downloads go to: ${models.cacheDir}`,
    `- inference worker: ${inference.workerPid ? `pid ${inference.workerPid}` : 'not running'}; ${JSON.stringify(inference.stats)}; ${inference.queuedCount} queued`,
    '',
    '## Runtime (from the inference worker)',
    '',
  ];
  const modelDir = state.kind === 'ready' ? state.model.modelDir : settings.modelPath?.dir;
  try {
    const report = await inference.call('doctor', { modelDir, cacheDir: models.cacheDir, provider: settings.provider }, { timeoutMs: DOCTOR_TIMEOUT_MS });
    lines.push('```text', report.text, '```', '', `Overall: ${report.ok ? 'OK' : 'problems found (see above)'}`);
  } catch (err) {
    lines.push(`The inference worker could not produce its report: ${(err as Error).message}`);
  }
  lines.push('', `More detail: Output panel → "BEiT Lens" (command: ${Command.doctor}). The loaded model's configuration, graphs and labels: "BEiT Lens: Show Model" (${Command.showModel}).`, '');
  return lines.join('\n');
}
