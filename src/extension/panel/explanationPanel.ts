/**
 * Explanation panels: one webview per image (opening it again reveals the existing one), restored
 * after a reload by the serializer — but only for images this extension itself opened a panel
 * for in this workspace, since the restored state is written by the webview.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EXPLANATION_VIEW_TYPE } from '../commandIds';
import { hasImageExtension } from '../hover/imagePathDetection';
import { InferenceService } from '../inference/inferenceClient';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { ExplanationSession } from './explanationSession';
import { explanationHtml, makeNonce } from './webviewHtml';

const EXPLAINED_IMAGES_KEY = 'beitLens.explainedImages';
const MAX_REMEMBERED = 200;

export interface ExplanationPanelsDeps {
  extensionUri: vscode.Uri;
  inference: InferenceService;
  log: vscode.LogOutputChannel;
  /** Workspace state: which images panels were opened for, to vet restored panels. */
  memento: vscode.Memento;
}

export class ExplanationPanels implements vscode.WebviewPanelSerializer, vscode.Disposable {
  private readonly panels = new Map<string, ExplanationPanel>();

  constructor(private readonly deps: ExplanationPanelsDeps) {}

  get openCount(): number {
    return this.panels.size;
  }

  /** Shows the panel for `imagePath`, creating it if needed. */
  open(imagePath: string, viewColumn: vscode.ViewColumn = vscode.ViewColumn.Beside): ExplanationPanel {
    const key = panelKey(imagePath);
    const existing = this.panels.get(key);
    if (existing) {
      existing.webviewPanel.reveal(viewColumn);
      return existing;
    }
    void this.remember(imagePath);
    const webviewPanel = vscode.window.createWebviewPanel(EXPLANATION_VIEW_TYPE, panelTitle(imagePath), { viewColumn, preserveFocus: false }, this.webviewOptions());
    return this.adopt(webviewPanel, imagePath);
  }

  async deserializeWebviewPanel(webviewPanel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const imagePath = typeof state === 'object' && state !== null ? (state as { imagePath?: unknown }).imagePath : undefined;
    const remembered = this.deps.memento.get<string[]>(EXPLAINED_IMAGES_KEY, []);
    if (typeof imagePath !== 'string' || !hasImageExtension(imagePath) || !remembered.includes(path.resolve(imagePath))) {
      this.deps.log.warn(`not restoring an explanation panel for ${JSON.stringify(imagePath)}: this extension did not open it`);
      webviewPanel.dispose();
      return;
    }
    const existing = this.panels.get(panelKey(imagePath));
    if (existing) {
      webviewPanel.dispose();
      existing.webviewPanel.reveal();
      return;
    }
    webviewPanel.webview.options = this.webviewOptions();
    this.adopt(webviewPanel, imagePath);
  }

  dispose(): void {
    for (const panel of [...this.panels.values()]) panel.webviewPanel.dispose();
    this.panels.clear();
  }

  private adopt(webviewPanel: vscode.WebviewPanel, imagePath: string): ExplanationPanel {
    const key = panelKey(imagePath);
    const panel = new ExplanationPanel(webviewPanel, path.resolve(imagePath), this.deps, () => {
      if (this.panels.get(key) === panel) this.panels.delete(key);
    });
    this.panels.set(key, panel);
    return panel;
  }

  /**
   * The page loads only our bundle and stylesheet; the image arrives as a data URI in the explanation
   * (made from the worker's one decode), so no folder of the user's is ever a resource root.
   */
  private webviewOptions(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      enableCommandUris: false,
      enableForms: false,
      localResourceRoots: [vscode.Uri.joinPath(this.deps.extensionUri, 'dist'), vscode.Uri.joinPath(this.deps.extensionUri, 'media')],
    };
  }

  private async remember(imagePath: string): Promise<void> {
    const resolved = path.resolve(imagePath);
    const list = this.deps.memento.get<string[]>(EXPLAINED_IMAGES_KEY, []).filter((p) => p !== resolved);
    list.push(resolved);
    await this.deps.memento.update(EXPLAINED_IMAGES_KEY, list.slice(-MAX_REMEMBERED));
  }
}

export class ExplanationPanel {
  private readonly session: ExplanationSession;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    readonly webviewPanel: vscode.WebviewPanel,
    readonly imagePath: string,
    deps: ExplanationPanelsDeps,
    onDispose: () => void,
  ) {
    const webview = webviewPanel.webview;
    webviewPanel.title = panelTitle(imagePath);
    webviewPanel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icon.png');
    webview.html = explanationHtml({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(deps.extensionUri, 'dist', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(deps.extensionUri, 'media', 'webview.css')).toString(),
      title: panelTitle(imagePath),
      imagePath,
    });
    this.session = new ExplanationSession({
      imagePath,
      inference: deps.inference,
      post: (message) => webview.postMessage(message),
      settings: () => readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key)),
      saveExport: (png, suggestedName) => saveExport(png, path.join(path.dirname(imagePath), suggestedName)),
      revealFile: (file) => revealFile(file),
      runCommand: (command) => Promise.resolve(vscode.commands.executeCommand(command)),
      log: deps.log,
    });
    this.subscriptions.push(
      webview.onDidReceiveMessage((message: unknown) => void this.session.receive(message)),
      webviewPanel.onDidDispose(() => {
        this.session.dispose();
        for (const s of this.subscriptions) s.dispose();
        onDispose();
      }),
    );
    // Start at once; the webview gets the result when it says it is ready (or right away if it already has).
    void this.session.explain();
  }
}

async function saveExport(png: Uint8Array, suggested: string): Promise<string | undefined> {
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(suggested), filters: { 'PNG image': ['png'] }, title: 'Export overlay as PNG' });
  if (!target) return undefined;
  await vscode.workspace.fs.writeFile(target, png);
  return target.scheme === 'file' ? target.fsPath : target.toString();
}

/**
 * Inside the workspace the file is shown in VS Code's Explorer (which works in a remote or browser
 * workbench too); elsewhere in the operating system's file manager.
 */
async function revealFile(file: string): Promise<void> {
  const uri = /^[a-z][a-z0-9+.-]+:/i.test(file) && !path.isAbsolute(file) ? vscode.Uri.parse(file) : vscode.Uri.file(file);
  if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
  else await vscode.commands.executeCommand('revealFileInOS', uri);
}

function panelTitle(imagePath: string): string {
  return `BEiT: ${path.basename(imagePath)}`;
}

function panelKey(imagePath: string): string {
  const resolved = path.resolve(imagePath);
  return process.platform === 'win32' || process.platform === 'darwin' ? resolved.toLowerCase() : resolved;
}
