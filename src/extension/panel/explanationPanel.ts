/**
 * Explanation panels: one webview per image (opening it again reveals the existing one), restored
 * after a reload by the serializer — but only for images this extension itself opened a panel
 * for in this workspace, since the restored state is written by the webview.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Command, EXPLANATION_VIEW_TYPE } from '../commandIds';
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
  private readonly panels = new Map<string, ExplanationWebviewHost>();

  constructor(private readonly deps: ExplanationPanelsDeps) {}

  get openCount(): number {
    return this.panels.size;
  }

  /**
   * Shows the panel for an image that is not a file (a notebook output), creating it if needed.
   * The panel keeps `image.bytes` (copy them first if the owner may change them); it is not
   * restored after a reload, since the bytes are gone by then.
   */
  openBytes(image: BytesImage, viewColumn: vscode.ViewColumn = vscode.ViewColumn.Beside): ExplanationWebviewHost {
    const existing = this.panels.get(image.key);
    if (existing) {
      existing.webviewPanel.reveal(viewColumn);
      return existing;
    }
    const title = `BEiT: ${image.name}`;
    const webviewPanel = vscode.window.createWebviewPanel(EXPLANATION_VIEW_TYPE, title, { viewColumn, preserveFocus: false }, this.webviewOptions());
    const panel = new ExplanationWebviewHost(webviewPanel, { imagePath: image.key, bytes: image.bytes, name: image.name, title, exportDir: image.exportDir }, this.deps, () => {
      if (this.panels.get(image.key) === panel) this.panels.delete(image.key);
    });
    this.panels.set(image.key, panel);
    return panel;
  }

  /** Shows the panel for `imagePath`, creating it if needed. */
  open(imagePath: string, viewColumn: vscode.ViewColumn = vscode.ViewColumn.Beside): ExplanationWebviewHost {
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

  private adopt(webviewPanel: vscode.WebviewPanel, imagePath: string): ExplanationWebviewHost {
    const key = panelKey(imagePath);
    const panel = new ExplanationWebviewHost(webviewPanel, { imagePath: path.resolve(imagePath) }, this.deps, () => {
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

/** An image that is not a file, for {@link ExplanationPanels.openBytes}. */
export interface BytesImage {
  /** Identifies the image among open panels (opening the same key again reveals that panel). */
  key: string;
  bytes: Uint8Array;
  /** Shown as the panel's title and image name, e.g. "plots.ipynb · cell 3 · image 1". */
  name: string;
  /** Where the export dialog starts. */
  exportDir: string;
}

interface PanelImage {
  /** The file, or a BytesImage's key. */
  imagePath: string;
  bytes?: Uint8Array;
  name?: string;
  title?: string;
  exportDir?: string;
}

/** The extension-host side of one explanation webview: its session, messages and disposables (the webview side is src/webview/panel.ts). */
export class ExplanationWebviewHost {
  private readonly session: ExplanationSession;
  private readonly subscriptions: vscode.Disposable[] = [];
  readonly imagePath: string;
  /** What the panel is titled by (the notebook and cell, for an output image). */
  readonly title: string;

  constructor(
    readonly webviewPanel: vscode.WebviewPanel,
    image: PanelImage,
    deps: ExplanationPanelsDeps,
    onDispose: () => void,
  ) {
    const { imagePath } = image;
    this.imagePath = imagePath;
    this.title = image.title ?? panelTitle(imagePath);
    const webview = webviewPanel.webview;
    webviewPanel.title = this.title;
    webviewPanel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icon.png');
    webview.html = explanationHtml({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(deps.extensionUri, 'dist', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(deps.extensionUri, 'media', 'webview.css')).toString(),
      title: this.title,
      imagePath,
    });
    this.session = new ExplanationSession({
      imagePath,
      bytes: image.bytes,
      name: image.name,
      inference: deps.inference,
      post: (message) => webview.postMessage(message),
      settings: () => readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key)),
      saveExport: (png, suggestedName) => saveExport(png, path.join(image.exportDir ?? path.dirname(imagePath), suggestedName)),
      revealFile: (file) => revealFile(file),
      runCommand: (command) => Promise.resolve(vscode.commands.executeCommand(command)),
      findSimilar: image.bytes ? undefined : () => Promise.resolve(vscode.commands.executeCommand(Command.findSimilarImages, vscode.Uri.file(imagePath))),
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
