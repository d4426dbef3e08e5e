/**
 * activate() against a small stand-in for the `vscode` module, with the real worker and the tiny
 * model: what gets registered, that activation does not wait for the model, workspace trust, the
 * hover provider end to end, the commands, the panel's HTML and messages, and deactivate.
 * (The @vscode/test-electron suite under test/vscode covers the same in a real workbench.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { convertModel } from '../../src/core/convert';

const root = path.resolve(__dirname, '../..');
const images = path.join(root, 'test/fixtures/beit-tiny/images');
const TINY_LABELS = ['harp seal pup', 'cobblestone alley', 'origami crane', 'crème brûlée', 'glacier lily', 'tin whistle', 'hot air balloon', 'river otter', 'copper weathervane', 'tabby kitten'];

// ---- a stand-in for the parts of the vscode API the extension touches ---------------------------

type Listener = (e: unknown) => unknown;

class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
  ) {}
  static file(p: string) {
    return new Uri('file', path.resolve(p));
  }
  /** A notebook cell's document: the notebook's path under the cell scheme, as VS Code makes them. */
  static cell(notebook: string) {
    return new Uri('vscode-notebook-cell', path.resolve(notebook));
  }
  static from(parts: { scheme: string; path: string }) {
    return new Uri(parts.scheme, parts.path);
  }
  static parse(s: string) {
    const u = new URL(s);
    return new Uri(u.protocol.slice(0, -1), decodeURIComponent(u.pathname));
  }
  static joinPath(base: Uri, ...parts: string[]) {
    return new Uri(base.scheme, path.join(base.path, ...parts));
  }
  get fsPath() {
    return this.path;
  }
  toString() {
    return `${this.scheme}://${this.path}`;
  }
}

function event() {
  const listeners = new Set<Listener>();
  const subscribe = (l: Listener) => (listeners.add(l), { dispose: () => listeners.delete(l) });
  return { subscribe, fire: (e?: unknown) => [...listeners].forEach((l) => l(e)) };
}

interface FakeWebviewPanel {
  title: string;
  html: string;
  posted: unknown[];
  receive(message: unknown): void;
  dispose(): void;
  options: { localResourceRoots?: Uri[] };
}

const settings = new Map<string, { globalValue?: unknown; workspaceValue?: unknown; defaultValue?: unknown }>();
const commands = new Map<string, (...args: unknown[]) => unknown>();
const hoverProviders: { selector: unknown; provider: { provideHover: (...a: unknown[]) => Promise<unknown> } }[] = [];
const serializers = new Map<string, unknown>();
const statusItems: { text: string; command?: string }[] = [];
const openedDocuments: { language?: string; content?: string; uri?: Uri }[] = [];
/** Virtual documents' providers by scheme, as the workbench asks them for content. */
const contentProviders = new Map<string, { provideTextDocumentContent(uri: Uri): string }>();
const panels: FakeWebviewPanel[] = [];
const messages: string[] = [];
const notebookDocuments: { uri: Uri; getCells(): { document: unknown }[] }[] = [];
const quickPicks: { title?: string; items: { label: string; description?: string; detail?: string; kind?: number }[] }[] = [];
let trusted = true;

const vscode = {
  Uri,
  Disposable: { from: (...items: { dispose(): unknown }[]) => ({ dispose: () => items.forEach((i) => i.dispose()) }) },
  EventEmitter: class<T> {
    private readonly listeners = event();
    readonly event = (l: (e: T) => unknown) => this.listeners.subscribe(l as Listener);
    fire(e: T) {
      this.listeners.fire(e);
    }
    dispose() {}
  },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  ViewColumn: { Active: -1, Beside: -2, One: 1 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  ExtensionKind: { UI: 1, Workspace: 2 },
  QuickPickItemKind: { Separator: -1, Default: 0 },
  ThemeIcon: class {
    constructor(readonly id: string) {}
  },
  ThemeColor: class {
    constructor(readonly id: string) {}
  },
  MarkdownString: class {
    isTrusted: unknown;
    constructor(
      readonly value: string,
      readonly supportThemeIcons?: boolean,
    ) {}
  },
  Hover: class {
    readonly contents: unknown[];
    constructor(
      contents: unknown,
      readonly range?: unknown,
    ) {
      this.contents = [contents];
    }
  },
  Range: class {
    constructor(
      readonly startLine: number,
      readonly startCharacter: number,
      readonly endLine: number,
      readonly endCharacter: number,
    ) {}
  },
  Position: class {
    constructor(
      readonly line: number,
      readonly character: number,
    ) {}
  },
  RelativePattern: class {
    constructor(
      readonly base: Uri,
      readonly pattern: string,
    ) {}
  },
  TabInputCustom: class {},
  TabInputText: class {},
  env: { appName: 'Fake Code', appHost: 'desktop', remoteName: undefined, clipboard: { writeText: async () => undefined } },
  version: '1.90.0',
  window: {
    createOutputChannel: (_name: string, _opts: unknown) => ({ trace() {}, debug() {}, info() {}, warn: (m: string) => messages.push(`warn: ${m}`), error: (m: string) => messages.push(`error: ${m}`), dispose() {} }),
    createStatusBarItem: () => {
      const item = { text: '', command: undefined as string | undefined, name: '', tooltip: undefined, backgroundColor: undefined, show() {}, dispose() {} };
      statusItems.push(item);
      return item;
    },
    setStatusBarMessage: () => ({ dispose() {} }),
    showInformationMessage: async (m: string) => (messages.push(`info: ${m}`), undefined),
    showWarningMessage: async (m: string) => (messages.push(`warning: ${m}`), undefined),
    showErrorMessage: async (m: string) => (messages.push(`error: ${m}`), undefined),
    showOpenDialog: async () => undefined,
    showSaveDialog: async () => undefined,
    showTextDocument: async () => undefined,
    withProgress: (_o: unknown, task: (p: unknown, t: unknown) => Promise<unknown>) => task({ report() {} }, { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) }),
    createQuickPick: () => {
      const pick = { items: [], buttons: [], show() {}, hide() {}, dispose() {}, onDidTriggerButton() {}, onDidAccept() {}, onDidHide() {} };
      quickPicks.push(pick);
      return pick;
    },
    tabGroups: { activeTabGroup: { activeTab: undefined }, all: [] },
    registerWebviewPanelSerializer: (viewType: string, serializer: unknown) => (serializers.set(viewType, serializer), { dispose() {} }),
    createWebviewPanel: (_viewType: string, title: string, _column: unknown, options: { localResourceRoots?: Uri[] }) => {
      const receive = event();
      const disposed = event();
      const panel: FakeWebviewPanel & Record<string, unknown> = {
        title,
        html: '',
        posted: [],
        options,
        receive: (m: unknown) => receive.fire(m),
        dispose: () => disposed.fire(),
        reveal() {},
        onDidDispose: disposed.subscribe,
      };
      panel.webview = {
        cspSource: 'https://*.vscode-cdn.net',
        asWebviewUri: (u: Uri) => `https://file+.vscode-resource.vscode-cdn.net${u.path}`,
        postMessage: async (m: unknown) => (panel.posted.push(m), true),
        onDidReceiveMessage: receive.subscribe,
        set html(v: string) {
          panel.html = v;
        },
        get html() {
          return panel.html;
        },
      };
      panels.push(panel);
      return panel;
    },
  },
  workspace: {
    get isTrusted() {
      return trusted;
    },
    workspaceFolders: [{ uri: Uri.file(images), name: 'images', index: 0 }],
    notebookDocuments,
    getConfiguration: () => ({
      get: (key: string) => {
        const s = settings.get(key);
        return s?.workspaceValue ?? s?.globalValue ?? s?.defaultValue;
      },
      inspect: (key: string) => settings.get(key) ?? {},
      update: async (key: string, value: unknown) => settings.set(key, { ...settings.get(key), globalValue: value }),
    }),
    onDidChangeConfiguration: () => ({ dispose() {} }),
    onDidGrantWorkspaceTrust: () => ({ dispose() {} }),
    findFiles: async () => [],
    registerTextDocumentContentProvider: (scheme: string, provider: { provideTextDocumentContent(uri: Uri): string }) => (contentProviders.set(scheme, provider), { dispose: () => contentProviders.delete(scheme) }),
    openTextDocument: async (arg: Uri | { language?: string; content?: string }) => {
      // A file is read as VS Code would, a virtual document from its scheme's provider; untitled documents carry their content.
      const provider = arg instanceof Uri ? contentProviders.get(arg.scheme) : undefined;
      const content = arg instanceof Uri ? (provider ? provider.provideTextDocumentContent(arg) : await readFile(arg.fsPath, 'utf8')) : undefined;
      const opened: (typeof openedDocuments)[number] = arg instanceof Uri ? { uri: arg, content } : arg;
      openedDocuments.push(opened);
      return { uri: opened.uri, isUntitled: !(arg instanceof Uri), getText: () => opened.content };
    },
    fs: { writeFile: async () => undefined },
  },
  languages: {
    registerHoverProvider: (selector: unknown, provider: never) => (hoverProviders.push({ selector, provider }), { dispose() {} }),
    getLanguages: async () => ['plaintext', 'markdown'],
    setTextDocumentLanguage: async <T extends { language?: string }>(document: T, language: string) => Object.assign(document, { language }),
  },
  commands: {
    registerCommand: (id: string, fn: (...a: unknown[]) => unknown) => (commands.set(id, fn), { dispose: () => commands.delete(id) }),
    executeCommand: async (id: string, ...args: unknown[]) => commands.get(id)?.(...args),
  },
};

const originalLoad = (Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown })._load;
(Module as unknown as { _load: typeof originalLoad })._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscode : originalLoad.call(this, request, ...rest);
};

// ---- the tests ---------------------------------------------------------------------------------

type Extension = typeof import('../../src/extension/extension');
let extension: Extension;
let api: ReturnType<Extension['activate']>;
let tmp: string;
let modelDir: string;
const subscriptions: { dispose(): unknown }[] = [];

function document(text: string, languageId: string, file: string) {
  return { uri: Uri.file(file), languageId, lineAt: (line: number) => ({ text: text.split('\n')[line] }) };
}
function cellDocument(text: string, languageId: string, notebook: string) {
  return { uri: Uri.cell(notebook), languageId, lineAt: (line: number) => ({ text: text.split('\n')[line] }) };
}
function outputCell(notebook: string, index: number, outputs: { mime: string; data: Uint8Array }[][]) {
  return { index, notebook: { uri: Uri.file(notebook) }, outputs: outputs.map((items) => ({ items })) };
}
/** Counts the worker calls named `name` that the extension makes, until restored. */
function countCalls(name: string): { count: number; restore(): void } {
  const client = api.inference as unknown as { call: (n: string, ...rest: unknown[]) => unknown };
  const original = client.call;
  const counter = {
    count: 0,
    restore: () => {
      client.call = original;
    },
  };
  client.call = function (this: unknown, n: string, ...rest: unknown[]) {
    if (n === name) counter.count++;
    return original.call(this, n, ...rest);
  };
  return counter;
}
const token = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) };

function hoverText(hover: unknown): string {
  return ((hover as { contents: { value: string }[] } | undefined)?.contents ?? []).map((c) => c.value).join('\n');
}

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'beit-lens-activation-'));
  modelDir = path.join(tmp, 'model');
  await convertModel({ from: path.join(root, 'test/fixtures/beit-tiny'), out: modelDir });
  // The worker runs from source: its child process gets tsx through NODE_OPTIONS.
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import tsx`.trim();
  settings.set('modelPath', { defaultValue: '', globalValue: modelDir, workspaceValue: path.join(tmp, 'workspace-chosen-model') });
  settings.set('executionProvider', { defaultValue: 'auto', globalValue: 'cpu', workspaceValue: '/tmp/libevil.so' });
  trusted = false;
  extension = await import('../../src/extension/extension');
});

after(async () => {
  await extension?.deactivate();
  for (const s of subscriptions) await s.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('activate()', () => {
  it('registers everything package.json promises without waiting for the model', async () => {
    const context = {
      subscriptions,
      asAbsolutePath: (p: string) => (p === 'dist/inferenceWorker.js' ? path.join(root, 'src/extension/worker/inferenceWorker.ts') : path.join(root, p)),
      extensionUri: Uri.file(root),
      globalStorageUri: Uri.file(path.join(tmp, 'global-storage')),
      workspaceState: { get: (_k: string, d: unknown) => d, update: async () => undefined },
      secrets: { get: async () => undefined, store: async () => undefined, delete: async () => undefined, onDidChange: () => ({ dispose() {} }) },
      extension: { id: 'beit-lens.beit-lens', packageJSON: { version: '0.1.0' }, extensionKind: 2 },
    };
    const started = performance.now();
    api = extension.activate(context as never);
    const took = performance.now() - started;
    assert.ok(took < 250, `activate took ${took.toFixed(0)} ms`);
    assert.notEqual(api.inference.state.kind, 'ready', 'activation must not wait for the model');

    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
    const declared = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
    assert.deepEqual([...commands.keys()].sort(), declared);
    assert.deepEqual(hoverProviders[0].selector, [{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: 'vscode-notebook-cell' }]);
    assert.ok(serializers.has('beitLens.explanation'));
    assert.ok(serializers.has('beitLens.dataset'));
    assert.ok(serializers.has('beitLens.model'), 'the Model view comes back after a reload');
    // VS Code restores a panel only once something activates the extension for its view type.
    for (const viewType of serializers.keys()) assert.ok(pkg.activationEvents.includes(`onWebviewPanel:${viewType}`), `no activation event for ${viewType}`);
    assert.equal(statusItems[0].command, 'beitLens.doctor');
    assert.ok(subscriptions.length >= 10);
  });

  it('in Restricted Mode loads the user-level model and ignores the workspace model and provider', async () => {
    const state = await api.modelSettled();
    assert.equal(state.kind, 'ready', JSON.stringify(state));
    if (state.kind === 'ready') {
      assert.equal(state.model.modelDir, modelDir);
      assert.equal(state.model.provider, 'cpu');
    }
    assert.ok(messages.some((m) => /modelPath from the workspace settings is ignored until the workspace is trusted/.test(m)));
    assert.ok(messages.some((m) => /executionProvider from the workspace settings is ignored/.test(m)));
    assert.equal(statusItems[0].text, '$(eye) BEiT: CPU');
  });

  it('restores the Model view after a reload: the serializer adopts the panel, and it describes the loaded model', async () => {
    const serializer = serializers.get('beitLens.model') as { deserializeWebviewPanel(panel: unknown, state: unknown): Promise<void> };
    const restored = vscode.window.createWebviewPanel('beitLens.model', 'BEiT Lens: Model', 1, {}) as unknown as FakeWebviewPanel & { webview: { options?: { enableScripts?: boolean } } };
    await serializer.deserializeWebviewPanel(restored, undefined);
    assert.match(restored.html, /modelView\.js/);
    assert.equal(restored.webview.options?.enableScripts, true);
    restored.receive({ type: 'ready' });
    await waitUntil(() => restored.posted.some((m) => (m as { type: string }).type === 'modelInfo'));
    const info = restored.posted.find((m) => (m as { type: string }).type === 'modelInfo') as { info: { dir: string } };
    assert.equal(info.info.dir, modelDir);
    // Show Model now reveals the restored view instead of opening a second one.
    const before = panels.length;
    await commands.get('beitLens.showModel')!();
    assert.equal(panels.length, before);
    restored.dispose();
  });

  it('hovers: "classifying…" or the result at first, then the cached result at once', async () => {
    const provider = hoverProviders[0].provider;
    const doc = document('# Notes\n![a kitten](gradient_640x480.jpg "k")\n', 'markdown', path.join(images, 'NOTES.md'));
    const position = new vscode.Position(1, 5);
    const first = hoverText(await provider.provideHover(doc, position, token));
    assert.match(first, /classifying|%/);
    let text = '';
    for (let i = 0; i < 100 && !text.includes('%'); i++) {
      await sleep(50);
      text = hoverText(await provider.provideHover(doc, position, token));
    }
    assert.ok(TINY_LABELS.some((l) => text.includes(l.split(' ')[0])), text);
    assert.match(text, /<img src="data:image\/jpeg;base64,[^"]+" width="\d+" height="\d+" alt="thumbnail">/);
    assert.match(text, /\[\$\(eye\) Explain\]\(command:beitLens\.explainImage\?/);
    const started = performance.now();
    assert.equal(hoverText(await provider.provideHover(doc, position, token)), text);
    assert.ok(performance.now() - started < 100, 'cached hover is immediate');
    // Nothing for a URL or a non-image path.
    assert.equal(await provider.provideHover(document('see https://x.org/a.png', 'plaintext', path.join(images, 'a.txt')), new vscode.Position(0, 18), token), undefined);
    assert.equal(await provider.provideHover(document('see notes.txt', 'plaintext', path.join(images, 'a.txt')), new vscode.Position(0, 6), token), undefined);
  });

  it('hovers refuse files over the size limit without reading them', async () => {
    settings.set('hover.maxFileSizeMB', { globalValue: 0.001 });
    try {
      const text = hoverText(await hoverProviders[0].provider.provideHover(document('"gradient_640x480.jpg"', 'python', path.join(images, 'x.py')), new vscode.Position(0, 3), token));
      assert.match(text.replace(/\\/g, ''), /38 KB is over the hover limit of 2 KB \(beitLens\.hover\.maxFileSizeMB\)/);
    } finally {
      settings.delete('hover.maxFileSizeMB');
    }
  });

  it('runs classifyImage, classifyFolder, doctor and explainImage', async () => {
    const top = (await commands.get('beitLens.classifyImage')!(Uri.file(path.join(images, 'gray_256x256.png')))) as { label: string }[];
    assert.equal(top.length, 5);

    const selected = [Uri.file(path.join(images, 'tiny_17x9.png')), Uri.file(path.join(images, 'alpha_300x200.png'))];
    await commands.get('beitLens.classifyImage')!(selected[0], selected);
    // A .csv file in the extension's storage (not an untitled document named after the header), with a save action.
    const opened = openedDocuments.at(-1)!;
    assert.ok(opened.uri, 'the results open from a file');
    assert.equal(path.dirname(opened.uri.fsPath), path.join(tmp, 'global-storage', 'selections'));
    assert.match(path.basename(opened.uri.fsPath), /^classified-\d{8}-\d{6}\.csv$/);
    const csv = opened.content ?? '';
    assert.equal(csv.trim().split('\n').length, 3);
    assert.match(csv, /^file,label1,score1,/);
    assert.ok(csv.includes('tiny_17x9.png') && csv.includes('alpha_300x200.png'));
    assert.ok(messages.some((m) => m === 'info: BEiT Lens: classified 2 of 2 images in 2 selected images.'), messages.join('\n'));

    const report = (await commands.get('beitLens.doctor')!()) as string;
    assert.match(report, /workspace trusted: no/);
    assert.match(report, /running on: cpu/);
    assert.match(report, /^- beitLens\.endpoint: not set \(the model runs in the inference worker\)$/m);
    // The report opens as a read-only virtual document (nothing to save), whose text is the report.
    const doctorDocument = openedDocuments.at(-1)!;
    assert.equal(doctorDocument.uri?.scheme, 'beit-lens-doctor');
    assert.equal(doctorDocument.content, report);
    assert.equal(await commands.get('beitLens.copyDoctorReport')!(), report);

    await commands.get('beitLens.explainImage')!(Uri.file(path.join(images, 'alpha_300x200.png')).toString());
    const panel = panels.at(-1)!;
    assert.equal(panel.title, 'BEiT: alpha_300x200.png');
    assert.match(panel.html, /Content-Security-Policy" content="default-src &#39;none&#39;/);
    // The image's folder is not a resource root: the image comes with the explanation as a data URI.
    assert.deepEqual(panel.options.localResourceRoots?.map((u) => u.path), [path.join(root, 'dist'), path.join(root, 'media')]);
    panel.receive({ type: 'ready' });
    panel.receive({ type: 'readFile', path: '/etc/passwd' });
    for (let i = 0; i < 100 && !panel.posted.some((m) => (m as { type: string }).type === 'explanation'); i++) await sleep(50);
    const explanation = panel.posted.find((m) => (m as { type: string }).type === 'explanation') as { explanation: { image: { src: string; width: number } } };
    assert.ok(explanation, JSON.stringify(panel.posted));
    assert.match(explanation.explanation.image.src, /^data:image\/jpeg;base64,/);
    assert.equal(explanation.explanation.image.width, 300);
    assert.ok(messages.some((m) => /dropped an invalid message/.test(m)));
    // The same image reveals the same panel.
    await commands.get('beitLens.explainImage')!(Uri.file(path.join(images, 'alpha_300x200.png')));
    assert.equal(api.explanationPanels.openCount, 1);
    panel.dispose();
    assert.equal(api.explanationPanels.openCount, 0);
  });

  it('classifyFolder scans in the worker and opens the dataset view on the results', async () => {
    const result = (await commands.get('beitLens.classifyFolder')!(Uri.file(images))) as { folder: string; resultsFile: string; rows: number; cancelled: boolean; summary: { found: number; classified: number } };
    assert.ok(result, messages.slice(-3).join('\n'));
    assert.equal(result.folder, images);
    assert.equal(result.cancelled, false);
    assert.equal(result.rows, 6);
    assert.equal(result.summary.found, 6);
    assert.ok(result.resultsFile.startsWith(path.join(tmp, 'global-storage', 'datasets')), result.resultsFile);
    const lines = (await readFile(result.resultsFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.image).sort(), ['alpha_300x200.png', 'exif_orientation6_320x240.jpg', 'gradient_640x480.jpg', 'gray16_200x150.png', 'gray_256x256.png', 'tiny_17x9.png'].map((f) => path.join(images, f)));
    assert.ok(lines.every((l) => l.top.length === 5 && l.folderLabel === null));

    const panel = panels.at(-1)!;
    assert.equal(panel.title, 'Dataset: images');
    assert.match(panel.html, /Content-Security-Policy" content="default-src &#39;none&#39;/);
    assert.match(panel.html, /dist\/datasetView\.js/);
    assert.match(panel.html, /media\/dataset\.css/);
    assert.deepEqual(panel.options.localResourceRoots?.map((u) => u.path), [path.join(root, 'dist'), path.join(root, 'media')]);
    assert.equal(api.datasetPanels.openCount, 1);
    const types = () => panel.posted.map((m) => (m as { type: string }).type);
    assert.ok(types().includes('dataset') && types().includes('scan') && types().includes('labelCheck'), types().join(','));
    const final = panel.posted.filter((m) => (m as { type: string }).type === 'scan').at(-1) as { state: { status: string; done: number } };
    assert.deepEqual([final.state.status, final.state.done], ['done', 6]);

    // The view asks for rows and gets them from the host's table; a message naming a file is dropped.
    panel.receive({ type: 'query', requestId: 1, generation: 1, query: { mode: 'all', filter: {}, sort: { key: 'path', descending: false } }, offset: 0, limit: 10 });
    panel.receive({ type: 'open', generation: 1, path: '/etc/passwd' });
    let page: { rows: { image: string }[] } | undefined;
    for (let i = 0; i < 100 && !page; i++) {
      await sleep(20);
      page = panel.posted.find((m) => (m as { type: string }).type === 'page') as typeof page;
    }
    assert.deepEqual(page?.rows.map((r) => path.basename(r.image)), ['alpha_300x200.png', 'exif_orientation6_320x240.jpg', 'gradient_640x480.jpg', 'gray_256x256.png', 'gray16_200x150.png', 'tiny_17x9.png']);
    assert.ok(messages.some((m) => /dataset view: dropped an invalid message/.test(m)));
    // Scanning the same folder again reuses the view; everything comes from the scan cache.
    const again = (await commands.get('beitLens.classifyFolder')!(Uri.file(images))) as { summary: { cached: number; classified: number } };
    assert.deepEqual([again.summary.cached, again.summary.classified], [6, 0]);
    assert.equal(api.datasetPanels.openCount, 1);
    panel.dispose();
    assert.equal(api.datasetPanels.openCount, 0);
  });

  it('hovers in notebook cells: paths from the notebook folder, the same cache as files, Restricted Mode applies', async () => {
    const provider = hoverProviders[0].provider;
    // The notebook sits one level above the workspace folder, so "images/…" exists only relative to it.
    const notebook = path.join(images, '..', 'plots.ipynb');
    const code = cellDocument('img = Image.open("images/gradient_640x480.jpg")', 'python', notebook);
    const markdown = cellDocument('A seal: ![seal](images/tiny_17x9.png)', 'markdown', notebook);
    const outside = cellDocument(`logo = "${path.join(root, 'media', 'icon.png')}"`, 'python', notebook);
    notebookDocuments.push({ uri: Uri.file(notebook), getCells: () => [code, markdown, outside].map((document) => ({ document })) });
    const previewCalls = countCalls('preview');
    try {
      // The earlier Markdown-file hover classified gradient_640x480.jpg: the cell's hover is that cached answer.
      const fromFile = hoverText(await provider.provideHover(document('![k](gradient_640x480.jpg)', 'markdown', path.join(images, 'NOTES.md')), new vscode.Position(0, 8), token));
      assert.match(fromFile, /%/);
      const inCell = hoverText(await provider.provideHover(code, new vscode.Position(0, 25), token));
      assert.equal(inCell, fromFile);
      assert.equal(previewCalls.count, 0, 'a cell hover on an image already hovered in a file asks the worker nothing');

      const position = new vscode.Position(0, 20);
      let text = hoverText(await provider.provideHover(markdown, position, token));
      for (let i = 0; i < 100 && !text.includes('%'); i++) {
        await sleep(50);
        text = hoverText(await provider.provideHover(markdown, position, token));
      }
      assert.match(text, /tiny_17x9\.png/);
      assert.ok(TINY_LABELS.some((l) => text.includes(l.split(' ')[0])), text);
      const asked = previewCalls.count;
      assert.equal(asked, 1, 'one worker call for the first hover');
      assert.equal(hoverText(await provider.provideHover(markdown, position, token)), text);
      assert.equal(previewCalls.count, asked, 'the second hover is answered from the cache (no read, no decode)');

      // Restricted Mode (this suite runs untrusted): a cell may not name an image outside the workspace.
      assert.match(hoverText(await provider.provideHover(outside, new vscode.Position(0, 12), token)), /Not previewed in Restricted Mode/);
      // A cell of a notebook that is not a file (untitled) has no folder: only the workspace folders are tried.
      notebookDocuments.length = 0;
      const untitled = hoverText(await provider.provideHover(code, new vscode.Position(0, 25), token));
      assert.match(untitled, /Not found: images\/gradient\\_640x480\\\.jpg, looked for/);
      assert.equal(untitled.split('\n').filter((line) => line.startsWith('- ')).length, 1, `only the workspace folder is tried:\n${untitled}`);
      assert.match(untitled, /\(workspace folder images\)/);
    } finally {
      previewCalls.restore();
      notebookDocuments.length = 0;
    }
  });

  it('classifyOutputImages: PNG and JPEG outputs give what the same bytes give as files; SVG and broken outputs are named', async (t) => {
    const png = await readFile(path.join(images, 'alpha_300x200.png'));
    const jpeg = await readFile(path.join(images, 'gradient_640x480.jpg'));
    const notebook = path.join(tmp, 'plots.ipynb');
    const cell = outputCell(notebook, 2, [
      [{ mime: 'text/plain', data: Buffer.from('<Figure size 640x480>') }, { mime: 'image/png', data: png }],
      [{ mime: 'image/jpeg', data: jpeg }],
      [{ mime: 'image/svg+xml', data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') }],
    ]);
    const results = (await commands.get('beitLens.classifyOutputImages')!(cell)) as { name: string; mime: string; top?: unknown[]; error?: string }[];
    const fromFiles = await Promise.all(['alpha_300x200.png', 'gradient_640x480.jpg'].map((f) => commands.get('beitLens.classifyImage')!(Uri.file(path.join(images, f)))));
    assert.deepEqual(
      results.map((r) => [r.name, r.mime, r.top, r.error]),
      [
        ['plots.ipynb · cell 3 · image 1', 'image/png', fromFiles[0], undefined],
        ['plots.ipynb · cell 3 · image 2', 'image/jpeg', fromFiles[1], undefined],
      ],
    );
    const pick = quickPicks.find((p) => p.title?.startsWith('BEiT: plots.ipynb'))!;
    assert.equal(pick.title, 'BEiT: plots.ipynb · cell 3 (CPU)');
    assert.deepEqual(
      pick.items.filter((i) => i.kind === vscode.QuickPickItemKind.Separator).map((i) => i.label),
      ['plots.ipynb · cell 3 · image 1', 'plots.ipynb · cell 3 · image 2'],
    );
    assert.equal(pick.items.length, 2 + 2 * 5);

    // Only SVG: refused, naming the cell, as an SVG file is.
    assert.equal(await commands.get('beitLens.classifyOutputImages')!(outputCell(notebook, 0, [[{ mime: 'image/svg+xml', data: Buffer.from('<svg/>') }]])), undefined);
    assert.match(messages.at(-1)!, /plots\.ipynb · cell 1 has no PNG, JPEG or GIF output to classify: output 1 is SVG output: vector images are never rasterised/);
    // Bytes that are not an image: the decoder's error, naming the cell and the output.
    const broken = (await commands.get('beitLens.classifyOutputImages')!(outputCell(notebook, 4, [[{ mime: 'image/png', data: Buffer.from('not a png at all') }]]))) as { error?: string }[];
    assert.match(broken[0].error!, /^plots\.ipynb · cell 5 \(output 1, image\/png\): .*not a recognised image/);
    // A cell with an SVG disguised as PNG is refused by the same sniffing as files.
    const disguised = (await commands.get('beitLens.classifyOutputImages')!(outputCell(notebook, 4, [[{ mime: 'image/png', data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') }]]))) as { error?: string }[];
    assert.match(disguised[0].error!, /SVG/);

    // Cost: the output's bytes against the same file, through the worker, interleaved after a warm-up; median of 9.
    const runs = { file: [] as number[], bytes: [] as number[] };
    const timed = async (kind: keyof typeof runs, run: () => Promise<unknown>) => {
      const started = performance.now();
      await run();
      runs[kind].push(performance.now() - started);
    };
    for (let i = 0; i < 10; i++) {
      await timed('file', () => api.inference.call('classify', { file: path.join(images, 'gradient_640x480.jpg'), topK: 5 }, { lane: 'command' }));
      await timed('bytes', () => api.inference.call('classifyBytes', { bytes: jpeg, topK: 5 }, { lane: 'command' }));
    }
    const median = (times: number[]) => times.slice(1).sort((a, b) => a - b)[4];
    const [file, bytes] = [median(runs.file), median(runs.bytes)];
    t.diagnostic(`classify gradient_640x480.jpg: file ${file.toFixed(1)} ms, output bytes ${bytes.toFixed(1)} ms (median of 9)`);
  });

  it('explainOutputImage opens a panel named after the notebook and cell that keeps its own copy of the bytes', async () => {
    const output = new Uint8Array(await readFile(path.join(images, 'alpha_300x200.png')));
    const cell = outputCell(path.join(tmp, 'plots.ipynb'), 6, [[{ mime: 'image/png', data: output }]]);
    const title = await commands.get('beitLens.explainOutputImage')!(cell);
    assert.equal(title, 'BEiT: plots.ipynb · cell 7');
    const panel = panels.at(-1)!;
    assert.equal(panel.title, 'BEiT: plots.ipynb · cell 7');
    // The cell is re-run and its output changes: the panel explains what it was opened on.
    output.fill(0);
    panel.receive({ type: 'ready' });
    for (let i = 0; i < 100 && !panel.posted.some((m) => (m as { type: string }).type === 'explanation'); i++) await sleep(50);
    const explanation = panel.posted.find((m) => (m as { type: string }).type === 'explanation') as { explanation: { image: { name: string; width: number; height: number } } };
    assert.ok(explanation, JSON.stringify(panel.posted));
    assert.deepEqual(explanation.explanation.image.name, 'plots.ipynb · cell 7');
    assert.deepEqual([explanation.explanation.image.width, explanation.explanation.image.height], [300, 200]);
    assert.equal(api.explanationPanels.openCount, 1);
    panel.dispose();
    assert.equal(api.explanationPanels.openCount, 0);
  });

  it('deactivate() ends the worker process', async () => {
    const pid = api.inference.workerPid!;
    process.kill(pid, 0);
    await extension.deactivate();
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
