/**
 * Dataset views: one webview per scanned folder (scanning it again reuses and refreshes it), restored
 * after a reload by the serializer for folders this extension scanned in this workspace.
 *
 * Where things live (the extension's global storage):
 *  - `scan-cache.log`: the persistent scan cache shared by every scan; a cancelled or crashed scan resumes
 *    from it, and a re-scan of an unchanged folder reads nothing but it.
 *  - `datasets/<hash of the folder>.jsonl`: the latest results of each folder (the CLI's JSONL schema),
 *    written by the inference worker and read by the view's table on the extension host.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ResultTable } from '../../core/scan/resultTable';
import type { ScanProgress } from '../../core/scan/scanner';
import { skippedText } from '../../core/scan/skips';
import type { DatasetPanelState, ExportFormat } from '../../shared/protocol';
import { DATASET_VIEW_TYPE } from '../commandIds';
import { reportError } from '../commands/reportError';
import { ModelNotices } from '../model/modelNotices';
import { InferenceService } from '../inference/inferenceClient';
import { datasetHtml, makeNonce } from '../panel/webviewHtml';
import type { ViewSettings } from '../settings';
import type { FolderOverrides, ScanJobSummary } from '../worker/workerProtocol';
import { DatasetSession } from './datasetSession';
import { runDatasetScan } from './scanRunner';
import { scanProgressText, scanState } from './scanProgressText';

const SCANNED_FOLDERS_KEY = 'beitLens.datasetFolders';
const OVERRIDES_KEY = 'beitLens.labelOverrides';
const MAX_REMEMBERED = 100;
/** Images per inference batch in the worker: large enough to keep the CPU/GPU busy, small enough for hovers to get in between. */
const SCAN_BATCH = 8;

export interface DatasetPanelsDeps {
  extensionUri: vscode.Uri;
  /** The extension's global storage: the scan cache and the results files. */
  storageUri: vscode.Uri;
  inference: InferenceService;
  /** Where a scan that failed for the model's state says so (closed when that state changes). */
  notices: ModelNotices;
  log: vscode.LogOutputChannel;
  /** Workspace state: which folders were scanned (to vet restored views) and label corrections. */
  memento: vscode.Memento;
  settings: () => ViewSettings;
  /** Shows an image's explanation panel in the given editor group (the extension's ExplanationPanels). */
  explainImage: (file: string, viewColumn: vscode.ViewColumn) => void;
}

/**
 * The editor group a view opens images in: the one to its right, always the same. ViewColumn.Beside
 * means "beside the active group", which for a view in the last group is a new group on every click.
 */
export function imageColumn(viewColumn: vscode.ViewColumn | undefined): vscode.ViewColumn {
  return ((viewColumn ?? vscode.ViewColumn.One) + 1) as vscode.ViewColumn;
}

export interface DatasetScanResult {
  folder: string;
  resultsFile: string;
  /** Rows in the results file when the scan ended. */
  rows: number;
  cancelled: boolean;
  /** Times the scan resumed after the inference worker died. */
  restarts: number;
  summary?: ScanJobSummary;
}

export interface FindSimilarResult {
  /** The dataset searched (the Dataset view showing the result). */
  folder: string;
  /** Neighbours shown. */
  count: number;
}

export class DatasetPanels implements vscode.WebviewPanelSerializer, vscode.Disposable {
  private readonly panels = new Map<string, DatasetPanel>();

  constructor(private readonly deps: DatasetPanelsDeps) {}

  get openCount(): number {
    return this.panels.size;
  }

  get cacheFile(): string {
    return path.join(this.deps.storageUri.fsPath, 'scan-cache.log');
  }

  resultsFileOf(folder: string): string {
    const key = createHash('sha256').update(folderKey(folder)).digest('hex').slice(0, 16);
    return path.join(this.deps.storageUri.fsPath, 'datasets', `${key}.jsonl`);
  }

  /** Opens (or reveals) the folder's view and scans the folder; resolves when the scan has ended. */
  async scanFolder(folder: string): Promise<DatasetScanResult | undefined> {
    const resolved = path.resolve(folder);
    await this.remember(resolved);
    return this.open(resolved).scan();
  }

  /**
   * Find Similar Images for any image file. The dataset searched: an open view's folder that holds the image,
   * else a folder scanned here that holds it, else (an image outside every dataset) the open view, else the
   * workspace folder holding the image, else the image's own folder. A view without results scans first (from
   * the cache where it can), with its usual progress.
   */
  async findSimilar(file: string): Promise<FindSimilarResult | undefined> {
    const image = path.resolve(file);
    const inside = (folder: string) => isInside(folder, image);
    const open = [...this.panels.values()];
    const remembered = this.deps.memento.get<string[]>(SCANNED_FOLDERS_KEY, []).filter((f) => existsSync(this.resultsFileOf(f)));
    const longest = (folders: string[]) => folders.filter(inside).sort((a, b) => b.length - a.length)[0];
    const workspace = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(image));
    const folder =
      longest(open.map((p) => p.folder)) ?? longest(remembered) ?? (open.length > 0 ? open[open.length - 1].folder : undefined) ?? (workspace?.uri.scheme === 'file' ? workspace.uri.fsPath : path.dirname(image));
    await this.remember(folder);
    const panel = this.open(folder);
    // A view with no table (just opened) scans; one whose scan is running is joined.
    if (!panel.session.currentTable || panel.scanning) {
      const scanned = await panel.scan();
      if (!scanned || panel.session.currentTable === undefined) return undefined;
    }
    const name = path.basename(image);
    const count = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `BEiT Lens: finding images similar to ${name}` }, () => panel.session.findSimilarToFile(image));
    return { folder, count };
  }

  open(folder: string): DatasetPanel {
    const existing = this.panels.get(folderKey(folder));
    if (existing) {
      existing.webviewPanel.reveal();
      return existing;
    }
    const webviewPanel = vscode.window.createWebviewPanel(DATASET_VIEW_TYPE, panelTitle(folder), { viewColumn: vscode.ViewColumn.Active, preserveFocus: false }, this.webviewOptions());
    return this.adopt(webviewPanel, folder);
  }

  async deserializeWebviewPanel(webviewPanel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const folder = typeof state === 'object' && state !== null ? (state as Partial<DatasetPanelState>).folder : undefined;
    const remembered = this.deps.memento.get<string[]>(SCANNED_FOLDERS_KEY, []);
    if (typeof folder !== 'string' || !remembered.includes(path.resolve(folder)) || !existsSync(this.resultsFileOf(folder))) {
      this.deps.log.warn(`not restoring a dataset view for ${JSON.stringify(folder)}: this extension did not scan it here`);
      webviewPanel.dispose();
      return;
    }
    if (this.panels.has(folderKey(folder))) {
      webviewPanel.dispose();
      this.panels.get(folderKey(folder))!.webviewPanel.reveal();
      return;
    }
    webviewPanel.webview.options = this.webviewOptions();
    await this.adopt(webviewPanel, path.resolve(folder)).showLastResults();
  }

  dispose(): void {
    for (const panel of [...this.panels.values()]) panel.webviewPanel.dispose();
    this.panels.clear();
  }

  private adopt(webviewPanel: vscode.WebviewPanel, folder: string): DatasetPanel {
    const key = folderKey(folder);
    const panel = new DatasetPanel(webviewPanel, folder, {
      ...this.deps,
      resultsFile: this.resultsFileOf(folder),
      cacheFile: this.cacheFile,
      onDispose: () => {
        if (this.panels.get(key) === panel) this.panels.delete(key);
      },
    });
    this.panels.set(key, panel);
    return panel;
  }

  private webviewOptions(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    // Thumbnails arrive as data URIs, so the dataset's own folder need not be a resource root.
    return {
      enableScripts: true,
      enableCommandUris: false,
      enableForms: false,
      localResourceRoots: [vscode.Uri.joinPath(this.deps.extensionUri, 'dist'), vscode.Uri.joinPath(this.deps.extensionUri, 'media')],
    };
  }

  private async remember(folder: string): Promise<void> {
    const list = this.deps.memento.get<string[]>(SCANNED_FOLDERS_KEY, []).filter((p) => p !== folder);
    list.push(folder);
    await this.deps.memento.update(SCANNED_FOLDERS_KEY, list.slice(-MAX_REMEMBERED));
  }
}

interface DatasetPanelDeps extends DatasetPanelsDeps {
  resultsFile: string;
  cacheFile: string;
  onDispose: () => void;
}

export class DatasetPanel {
  readonly session: DatasetSession;
  private running?: Promise<DatasetScanResult | undefined>;
  private scanAbort?: AbortController;
  private disposed = false;

  constructor(
    readonly webviewPanel: vscode.WebviewPanel,
    readonly folder: string,
    private readonly deps: DatasetPanelDeps,
  ) {
    const webview = webviewPanel.webview;
    webviewPanel.title = panelTitle(folder);
    webviewPanel.iconPath = vscode.Uri.joinPath(deps.extensionUri, 'media', 'icon.png');
    webview.html = datasetHtml({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(deps.extensionUri, 'dist', 'datasetView.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(deps.extensionUri, 'media', 'dataset.css')).toString(),
      title: panelTitle(folder),
      folder,
    });
    this.session = new DatasetSession(panelTitle(folder), folder, {
      inference: deps.inference,
      post: (message) => webview.postMessage(message),
      openImage: (file) => deps.explainImage(file, imageColumn(webviewPanel.viewColumn)),
      copyText: async (text) => vscode.env.clipboard.writeText(text),
      pickExportFile: (suggested, format) => pickExportFile(path.join(path.dirname(folder), suggested), format),
      overrides: {
        get: () => deps.memento.get<Record<string, FolderOverrides>>(OVERRIDES_KEY, {})[folder] ?? {},
        set: (value) => deps.memento.update(OVERRIDES_KEY, { ...deps.memento.get<Record<string, FolderOverrides>>(OVERRIDES_KEY, {}), [folder]: value }),
      },
      log: deps.log,
      // The similarity index is persisted beside the dataset's results (datasets/<key>.index).
      embeddings: { resultsFile: deps.resultsFile, cacheFile: deps.cacheFile, indexFile: deps.resultsFile.replace(/\.jsonl$/, '.index') },
      similarTopK: () => deps.settings().similarTopK,
      cacheFile: deps.cacheFile,
    });
    const subscriptions = [
      webview.onDidReceiveMessage((message: unknown) => void this.session.receive(message)),
      webviewPanel.onDidDispose(() => {
        this.disposed = true;
        this.scanAbort?.abort();
        this.session.dispose();
        for (const s of subscriptions) s.dispose();
        // The worker may still be writing the last results; close the table once the scan has stopped.
        void (this.running ?? Promise.resolve()).finally(() => this.session.currentTable?.close().catch(() => undefined));
        deps.onDispose();
      }),
    ];
  }

  /** Shows the results of the last scan without scanning (a view restored after a reload). */
  async showLastResults(): Promise<void> {
    const table = await ResultTable.open(this.deps.resultsFile);
    if (this.disposed) {
      await table.close();
      return;
    }
    await this.session.setTable(table);
  }

  get scanning(): boolean {
    return this.running !== undefined;
  }

  /** Scans the folder (a scan already running is joined, not restarted). */
  scan(): Promise<DatasetScanResult | undefined> {
    this.running ??= this.runScan().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runScan(): Promise<DatasetScanResult | undefined> {
    const { log, inference, resultsFile, cacheFile } = this.deps;
    await mkdir(path.dirname(resultsFile), { recursive: true });
    // A fresh results file per scan (unchanged files come straight from the cache), so deleted files go
    // and changed ones are re-classified.
    const previous = this.session.currentTable;
    const table = await ResultTable.create(resultsFile);
    await this.session.setTable(table);
    await previous?.close().catch(() => undefined);
    const controller = new AbortController();
    this.scanAbort = controller;
    if (this.disposed) controller.abort();
    const name = path.basename(this.folder) || this.folder;
    this.session.setScanState(scanState('running', undefined));

    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `BEiT Lens: scanning ${name}`, cancellable: true }, async (progress, token) => {
      const subscription = token.onCancellationRequested(() => controller.abort());
      // The scan waits for the model (it may still be loading, or reloading after a crash).
      if (inference.state.kind !== 'ready') progress.report({ message: 'waiting for the model to load…' });
      let last: ScanProgress | undefined;
      let shownPercent = 0;
      let refreshing = false;
      try {
        const outcome = await runDatasetScan(
          inference,
          { roots: [this.folder], resultsFile, cacheFile, topK: this.deps.settings().topK, batchSize: SCAN_BATCH },
          {
            signal: controller.signal,
            onProgress: (p) => {
              last = p;
              const percent = p.total ? Math.min(100, (100 * p.done) / p.total) : undefined;
              const increment = percent !== undefined && percent > shownPercent ? percent - shownPercent : undefined;
              if (increment !== undefined) shownPercent = percent!;
              progress.report({ message: scanProgressText(p), increment });
              this.session.setScanState(scanState('running', p));
              // Rows reach the view as the worker writes them; one refresh at a time.
              if (!refreshing) {
                refreshing = true;
                void this.session.refresh().finally(() => (refreshing = false));
              }
            },
            onRestart: ({ attempt, reason }) => {
              log.warn(`dataset scan of ${this.folder}: ${reason}; resuming from the cache (restart ${attempt})`);
              progress.report({ message: 'the inference worker stopped; resuming from the cache…' });
              this.session.setScanState(scanState('restarting', last, 'The inference worker stopped; resuming from the cache.'));
            },
            onLog: (message) => log.info(`dataset scan: ${message}`),
          },
        );
        const summary = outcome.summary;
        const skipped = summary?.skipped ? skippedText(summary.skipped) : undefined;
        const state = scanState(outcome.cancelled ? 'cancelled' : 'done', summary ? { ...summary, total: summary.found, finished: true } : last, skipped && `${skipped[0].toUpperCase()}${skipped.slice(1)}.`);
        if (skipped) log.info(`dataset scan of ${this.folder}: ${skipped}`);
        await this.session.scanEnded(state);
        log.info(`dataset scan of ${this.folder}: ${outcome.cancelled ? 'cancelled' : 'done'}, ${table.size} rows${outcome.restarts ? `, resumed ${outcome.restarts}x after worker crashes` : ''}`);
        if (outcome.cancelled && !this.disposed) {
          void vscode.window.showInformationMessage(`BEiT Lens: scan of ${name} cancelled after ${table.size} images; results so far are kept, and scanning again resumes from the cache.`);
        } else if (summary && summary.found === 0) {
          void vscode.window.showInformationMessage(`BEiT Lens: no images under ${this.folder}.`);
        }
        return { folder: this.folder, resultsFile, rows: table.size, cancelled: outcome.cancelled, restarts: outcome.restarts, summary };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await this.session.scanEnded(scanState('failed', last, message));
        void reportError(err, `scanning ${this.folder}`, this.deps.notices);
        return undefined;
      } finally {
        subscription.dispose();
        if (this.scanAbort === controller) this.scanAbort = undefined;
      }
    });
  }
}

async function pickExportFile(suggested: string, format: ExportFormat): Promise<string | undefined> {
  const filters: Record<string, string[]> = format === 'csv' ? { CSV: ['csv'], 'JSON Lines': ['jsonl'] } : { 'JSON Lines': ['jsonl'], CSV: ['csv'] };
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(suggested), filters, title: 'BEiT Lens: export scan results' });
  if (!target) return undefined;
  if (target.scheme !== 'file') {
    void vscode.window.showErrorMessage(`BEiT Lens exports to local files only; ${target.toString(true)} is not one.`);
    return undefined;
  }
  return target.fsPath;
}

function panelTitle(folder: string): string {
  return `Dataset: ${path.basename(folder) || folder}`;
}

function isInside(folder: string, file: string): boolean {
  const relative = path.relative(folderKey(folder), folderKey(file));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

function folderKey(folder: string): string {
  const resolved = path.resolve(folder);
  return process.platform === 'win32' || process.platform === 'darwin' ? resolved.toLowerCase() : resolved;
}
