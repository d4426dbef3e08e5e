/**
 * The Model view (`beitLens.showModel`): one webview panel describing the loaded model — what Netron does not
 * say: the BEiT configuration, the graphs' inputs and outputs, the parameter count, precision, the provider in
 * use, file sizes and a searchable label list with the id2label gaps. The data comes from the worker (modelInfo)
 * and is sent again whenever the model is reloaded (another folder, another provider). It is its own
 * serializer, so a window reload brings the view back (it keeps no state: it describes whatever is loaded).
 */
import * as vscode from 'vscode';
import { MODEL_VIEW_TYPE } from '../commandIds';
import type { InferenceService, ModelState } from '../inference/inferenceClient';
import { errorMessage } from '../../core/errors';
import { parseModelViewMessage, type ModelHostMessage } from '../../shared/protocol';
import { makeNonce, modelHtml } from './webviewHtml';

export interface ModelPanelDeps {
  extensionUri: vscode.Uri;
  inference: InferenceService;
  log: vscode.LogOutputChannel;
}

export class ModelPanels implements vscode.Disposable, vscode.WebviewPanelSerializer {
  private panel: vscode.WebviewPanel | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private ready = false;
  /** Answers to an older state are dropped: only the latest request may post. */
  private generation = 0;

  constructor(private readonly deps: ModelPanelDeps) {}

  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  show(): void {
    if (this.panel) {
      this.panel.reveal();
      return;
    }
    this.adopt(vscode.window.createWebviewPanel(MODEL_VIEW_TYPE, 'BEiT Lens: Model', vscode.ViewColumn.Active, this.webviewOptions()));
  }

  /** After a window reload: the restored panel becomes the view (a second one, from another window state, goes). */
  async deserializeWebviewPanel(webviewPanel: vscode.WebviewPanel): Promise<void> {
    if (this.panel) {
      webviewPanel.dispose();
      this.panel.reveal();
      return;
    }
    webviewPanel.webview.options = this.webviewOptions();
    this.adopt(webviewPanel);
  }

  private webviewOptions(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      enableCommandUris: false,
      enableForms: false,
      localResourceRoots: [vscode.Uri.joinPath(this.deps.extensionUri, 'dist'), vscode.Uri.joinPath(this.deps.extensionUri, 'media')],
    };
  }

  private adopt(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    const webview = panel.webview;
    panel.iconPath = vscode.Uri.joinPath(this.deps.extensionUri, 'media', 'icon.png');
    webview.html = modelHtml({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.deps.extensionUri, 'dist', 'modelView.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(this.deps.extensionUri, 'media', 'model.css')).toString(),
      title: 'BEiT Lens: Model',
    });
    this.subscriptions.push(
      webview.onDidReceiveMessage((raw: unknown) => {
        const parsed = parseModelViewMessage(raw);
        if (!parsed.ok) {
          this.deps.log.warn(`Model view: dropped a message (${parsed.error})`);
          return;
        }
        this.ready = true;
        void this.refresh(this.deps.inference.state);
      }),
      this.deps.inference.onDidChangeState((state) => void this.refresh(state)),
      panel.onDidDispose(() => {
        this.panel = undefined;
        for (const s of this.subscriptions.splice(0)) s.dispose();
      }),
    );
  }

  private async refresh(state: ModelState): Promise<void> {
    const generation = ++this.generation;
    if (!this.panel || !this.ready) return;
    const post = (message: ModelHostMessage) => {
      if (generation === this.generation) void this.panel?.webview.postMessage(message);
    };
    if (state.kind === 'noModel' || state.kind === 'failed') {
      post({ type: 'error', message: state.message });
      return;
    }
    // Starting or loading: the view keeps saying so; the state change to ready brings the data.
    if (state.kind !== 'ready') return;
    try {
      post({ type: 'modelInfo', info: await this.deps.inference.call('modelInfo', {}) });
    } catch (err) {
      post({ type: 'error', message: `could not describe the model: ${errorMessage(err)}` });
    }
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
