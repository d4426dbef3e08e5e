/**
 * The explanation panel as an attack surface, through the real ExplanationPanels/ExplanationWebviewHost against a
 * small stand-in for the `vscode` module: the webview is untrusted (it renders labels from a downloaded
 * config.json, and its saved state comes back on reload), so
 *  - a restored panel opens only for an image this extension itself opened a panel for in this workspace;
 *  - no message can make the extension read, explain or name any file but the panel's own image;
 *  - exports write PNG bytes only where the user picks in a save dialog;
 *  - every panel has its own nonce, and the shipped webview bundle has no eval or HTML-injection sinks.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { FuzzCounter, fuzzParameters, fuzzTimeout } from '../helpers/fuzz';

const root = path.resolve(__dirname, '../..');
const IMAGE = '/data/images/cat.png';
const PNG_BYTES = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 1, 2, 3]);
const PNG_URL = `data:image/png;base64,${PNG_BYTES.toString('base64')}`;

// ---- a stand-in for the parts of the vscode API the panel touches -----------------------------

class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
  ) {}
  static file(p: string) {
    return new Uri('file', path.resolve(p));
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

interface FakePanel {
  title: string;
  html: string;
  options: { localResourceRoots?: Uri[] };
  posted: unknown[];
  disposed: boolean;
  /** Every URI the extension turned into a webview resource URI (what the webview may load). */
  resourceUris: string[];
  receive(message: unknown): void;
  dispose(): void;
}

const panels: FakePanel[] = [];
const fsCalls: { op: string; uri: string; bytes?: Uint8Array }[] = [];
const saveDialogs: { defaultUri?: Uri; filters?: Record<string, string[]> }[] = [];
let saveDialogAnswer: Uri | undefined;

function fakeWebviewPanel(options: { localResourceRoots?: Uri[] } = {}): FakePanel & Record<string, unknown> {
  const messageListeners = new Set<(m: unknown) => void>();
  const disposeListeners = new Set<() => void>();
  const panel: FakePanel & Record<string, unknown> = {
    title: '',
    html: '',
    options,
    posted: [],
    disposed: false,
    resourceUris: [],
    receive: (m) => [...messageListeners].forEach((l) => l(m)),
    dispose: () => {
      if (panel.disposed) return;
      panel.disposed = true;
      [...disposeListeners].forEach((l) => l());
    },
    reveal() {},
    onDidDispose: (l: () => void) => (disposeListeners.add(l), { dispose: () => disposeListeners.delete(l) }),
  };
  const webview = {
    cspSource: 'https://*.vscode-cdn.net',
    asWebviewUri: (u: Uri) => {
      panel.resourceUris.push(u.path);
      return { toString: () => `https://file+.vscode-resource.vscode-cdn.net${u.path}` };
    },
    postMessage: async (m: unknown) => (panel.posted.push(m), true),
    onDidReceiveMessage: (l: (m: unknown) => void) => (messageListeners.add(l), { dispose: () => messageListeners.delete(l) }),
    get html() {
      return panel.html;
    },
    set html(v: string) {
      panel.html = v;
    },
    get options() {
      return panel.options;
    },
    set options(v: { localResourceRoots?: Uri[] }) {
      panel.options = v;
    },
  };
  panel.webview = webview;
  panels.push(panel);
  return panel;
}

const vscode = {
  Uri,
  ViewColumn: { Active: -1, Beside: -2, One: 1 },
  window: {
    createWebviewPanel: (_viewType: string, _title: string, _column: unknown, options: { localResourceRoots?: Uri[] }) => fakeWebviewPanel(options),
    showSaveDialog: async (options: { defaultUri?: Uri; filters?: Record<string, string[]> }) => (saveDialogs.push(options), saveDialogAnswer),
  },
  workspace: {
    getConfiguration: () => ({ get: () => undefined }),
    fs: {
      writeFile: async (uri: Uri, bytes: Uint8Array) => void fsCalls.push({ op: 'writeFile', uri: uri.path, bytes }),
      readFile: async (uri: Uri) => (fsCalls.push({ op: 'readFile', uri: uri.path }), new Uint8Array()),
      stat: async (uri: Uri) => (fsCalls.push({ op: 'stat', uri: uri.path }), {}),
    },
  },
};

const originalLoad = (Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown })._load;
(Module as unknown as { _load: typeof originalLoad })._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscode : originalLoad.call(this, request, ...rest);
};

// ---- fakes for the extension's own services ------------------------------------------------------

/** Records every worker call; answers like the real worker would for a tiny model. */
class RecordingInference {
  readonly calls: { name: string; args: Record<string, unknown> }[] = [];
  state = { kind: 'ready' as const, model: { modelDir: '/m', modelId: 'tiny', provider: 'cpu', providerAttempts: [], canExplain: true, numLabels: 10 } };
  readonly onDidChangeState = () => ({ dispose() {} });
  readonly onDidWorkerExit = () => ({ dispose() {} });
  get model() {
    return this.state.model;
  }
  queuedInLane(): number {
    return 0;
  }
  call = async (name: string, args: Record<string, unknown>) => {
    this.calls.push({ name, args });
    switch (name) {
      case 'explain':
        return {
          handle: `h${this.calls.length}`,
          top: [{ index: 9, label: 'tabby kitten', score: 0.7 }],
          grid: 14,
          leadingTokens: 1,
          layers: 2,
          heads: 4,
          rollout: { headFusion: 'mean', discardRatio: 0.9, map: Array(196).fill(0.5) },
          patchArgmax: Array(196).fill(9),
          patchScore: Array(196).fill(0.6),
          legend: [],
          provider: 'cpu',
          width: 300,
          height: 200,
          src: 'data:image/jpeg;base64,/9j/',
        };
      case 'rollout':
      case 'patchAttention':
        return Array(196).fill(0.25);
      case 'classHeatmap':
        return { label: 'river otter', logits: Array(196).fill(1) };
      default:
        return undefined;
    }
  };
  /** Every file any call named. */
  files(): unknown[] {
    return this.calls.flatMap((c) => ('file' in c.args ? [c.args.file] : []));
  }
}

function memento(initial: Record<string, unknown> = {}) {
  const store = new Map(Object.entries(initial));
  return { get: <T>(key: string, fallback: T) => (store.has(key) ? (store.get(key) as T) : fallback), update: async (key: string, value: unknown) => void store.set(key, value), keys: () => [...store.keys()] };
}

const warnings: string[] = [];
const log = { trace() {}, debug() {}, info() {}, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };

type PanelsModule = typeof import('../../src/extension/panel/explanationPanel');
let ExplanationPanels: PanelsModule['ExplanationPanels'];
before(async () => {
  ({ ExplanationPanels } = await import('../../src/extension/panel/explanationPanel'));
});

function newPanels(state = memento()) {
  const inference = new RecordingInference();
  const manager = new ExplanationPanels({ extensionUri: Uri.file(root) as never, inference: inference as never, log: log as never, memento: state as never });
  return { manager, inference, state };
}

/** Lets the panel's async work (explain, image source, posts) finish. */
const settle = () => sleep(5);

// ---- the tests ----------------------------------------------------------------------------------

describe('restored panels (webview state comes back from the webview, so it is untrusted)', () => {
  it('reopens a panel for an image this extension opened a panel for, with the same resource roots', async () => {
    const state = memento();
    const first = newPanels(state);
    first.manager.open(IMAGE);
    await settle();
    first.manager.dispose();

    // A window reload: a new manager with the same workspace state restores the panel.
    const { manager, inference } = newPanels(state);
    const restored = fakeWebviewPanel();
    await manager.deserializeWebviewPanel(restored as never, { imagePath: IMAGE, overlay: 'rollout', opacity: 0.5 });
    await settle();
    assert.equal(restored.disposed, false);
    assert.equal(manager.openCount, 1);
    assert.match(restored.html, /Content-Security-Policy/);
    // Only the extension's own bundle and stylesheet folders: the image comes as a data URI, so no folder of the user's is a root.
    assert.deepEqual(restored.options.localResourceRoots?.map((u) => u.path), [path.join(root, 'dist'), path.join(root, 'media')]);
    assert.deepEqual(inference.files(), [IMAGE]);
    assert.ok(restored.resourceUris.every((p) => p === path.join(root, 'dist', 'webview.js') || p === path.join(root, 'media', 'webview.css')), JSON.stringify(restored.resourceUris));
    manager.dispose();
  });

  const refused: [string, unknown][] = [
    ['a path the extension never opened', { imagePath: '/home/me/.ssh/id_rsa.png' }],
    ['a non-image file', { imagePath: '/etc/passwd' }],
    ['a path escaping a remembered folder', { imagePath: `${path.dirname(IMAGE)}/../../../etc/shadow.png` }],
    ['a relative path', { imagePath: 'cat.png' }],
    ['a non-string path', { imagePath: { toString: () => IMAGE } }],
    ['no state at all', undefined],
    ['a string state', IMAGE],
  ];
  for (const [what, webviewState] of refused) {
    it(`refuses ${what}: the panel is closed without reading anything`, async () => {
      const state = memento();
      const opener = newPanels(state);
      opener.manager.open(IMAGE);
      await settle();
      opener.manager.dispose();

      const { manager, inference } = newPanels(state);
      const restored = fakeWebviewPanel();
      warnings.length = 0;
      await manager.deserializeWebviewPanel(restored as never, webviewState);
      await settle();
      assert.equal(restored.disposed, true);
      assert.equal(restored.html, '', 'no HTML, so no script ran');
      assert.equal(manager.openCount, 0);
      assert.deepEqual(inference.calls, []);
      assert.deepEqual(restored.resourceUris, []);
      assert.ok(warnings.some((w) => /not restoring an explanation panel/.test(w)), warnings.join('\n'));
    });
  }

  it('does not restore an image opened in another workspace (state is per workspace)', async () => {
    const elsewhere = newPanels(memento());
    elsewhere.manager.open(IMAGE);
    await settle();
    const { manager, inference } = newPanels(memento());
    const restored = fakeWebviewPanel();
    await manager.deserializeWebviewPanel(restored as never, { imagePath: IMAGE });
    assert.equal(restored.disposed, true);
    assert.deepEqual(inference.calls, []);
    elsewhere.manager.dispose();
  });
});

describe('messages from the webview', () => {
  it('no message makes the extension read, explain or expose any file but the panel image (property-based)', { timeout: fuzzTimeout(150, 60_000) }, async (t) => {
    const fuzz = new FuzzCounter('panel messages', 'message sequences -> ExplanationWebviewHost with the vscode stand-in');
    const pathLike = fc.constantFrom('/etc/passwd', '../../.bashrc', 'C:\\Windows\\win.ini', 'file:///etc/shadow', '/data/images/dog.png', `${IMAGE}/../secret.png`);
    const message = fc.oneof(
      fc.anything(),
      fc.record(
        {
          type: fc.constantFrom('ready', 'setRollout', 'selectClass', 'selectPatch', 'exportPng', 'state', 'readFile', 'explain', 'open', 'thumbnail'),
          requestId: fc.nat(3),
          file: pathLike,
          path: pathLike,
          imagePath: pathLike,
          image: pathLike,
          suggestedName: fc.oneof(pathLike, fc.constant('out.png')),
          dataUrl: fc.constantFrom(PNG_URL, 'data:text/html;base64,PHNjcmlwdD4=', `file:///etc/passwd`),
        },
        { requiredKeys: ['type'] },
      ),
    );
    saveDialogAnswer = undefined;
    await fc.assert(
      fc.asyncProperty(fc.array(message, { maxLength: 8 }), async (messages) => {
        fuzz.tick();
        fsCalls.length = 0;
        const { manager, inference } = newPanels();
        manager.open(IMAGE);
        const panel = panels.at(-1)!;
        for (const m of messages) panel.receive(m);
        await settle();
        manager.dispose();
        assert.ok(inference.files().every((f) => f === IMAGE), JSON.stringify(inference.files()));
        assert.ok(panel.resourceUris.every((p) => p.startsWith(path.join(root, 'dist')) || p.startsWith(path.join(root, 'media'))), JSON.stringify(panel.resourceUris));
        // The user cancels every save dialog here, so nothing may be written; nothing is ever read through vscode.fs.
        assert.deepEqual(fsCalls, []);
      }),
      fuzzParameters(150),
    );
    fuzz.report(t);
  });

  it('an export writes exactly the PNG bytes, only to the file the user picks', async () => {
    const { manager } = newPanels();
    manager.open(IMAGE);
    const panel = panels.at(-1)!;
    await settle();
    fsCalls.length = 0;
    saveDialogs.length = 0;

    saveDialogAnswer = Uri.file('/home/me/Pictures/chosen.png');
    panel.receive({ type: 'exportPng', dataUrl: PNG_URL, suggestedName: 'cat-rollout.png' });
    await settle();
    assert.equal(saveDialogs.length, 1);
    // The dialog only suggests a place next to the image; the user decides.
    assert.equal(saveDialogs[0].defaultUri?.path, path.join(path.dirname(IMAGE), 'cat-rollout.png'));
    assert.deepEqual(saveDialogs[0].filters, { 'PNG image': ['png'] });
    assert.equal(fsCalls.length, 1);
    assert.equal(fsCalls[0].op, 'writeFile');
    assert.equal(fsCalls[0].uri, '/home/me/Pictures/chosen.png');
    assert.deepEqual(Buffer.from(fsCalls[0].bytes!), PNG_BYTES);
    assert.deepEqual(panel.posted.at(-1), { type: 'exported', file: '/home/me/Pictures/chosen.png' });

    // Cancelled: nothing written.
    saveDialogAnswer = undefined;
    panel.receive({ type: 'exportPng', dataUrl: PNG_URL, suggestedName: 'again.png' });
    await settle();
    assert.equal(saveDialogs.length, 2);
    assert.equal(fsCalls.length, 1);

    // Not PNG bytes, or a name with a path in it: dropped before any dialog.
    saveDialogAnswer = Uri.file('/home/me/Pictures/chosen.png');
    panel.receive({ type: 'exportPng', dataUrl: `data:image/png;base64,${Buffer.from('<script>alert(1)</script>').toString('base64')}`, suggestedName: 'x.png' });
    panel.receive({ type: 'exportPng', dataUrl: PNG_URL, suggestedName: '../../.bashrc' });
    panel.receive({ type: 'exportPng', dataUrl: PNG_URL, suggestedName: '/etc/cron.d/x.png' });
    await settle();
    assert.equal(saveDialogs.length, 2);
    assert.equal(fsCalls.length, 1);
    saveDialogAnswer = undefined;
    manager.dispose();
  });
});

describe('content security', () => {
  it("a panel can load only the extension's bundle and stylesheet; the image comes as a data URI", async () => {
    const { manager } = newPanels();
    manager.open(IMAGE);
    const panel = panels.at(-1)!;
    await settle();
    assert.deepEqual(panel.options.localResourceRoots?.map((u) => u.path), [path.join(root, 'dist'), path.join(root, 'media')]);
    assert.deepEqual(panel.resourceUris.sort(), [path.join(root, 'dist', 'webview.js'), path.join(root, 'media', 'webview.css')]);
    const csp = /Content-Security-Policy" content="([^"]+)"/.exec(panel.html)?.[1].replace(/&#39;/g, "'");
    assert.equal(csp, "default-src 'none'; img-src data:; script-src 'nonce-" + /nonce-([A-Za-z0-9_-]+)/.exec(csp ?? '')?.[1] + "'; style-src https://*.vscode-cdn.net 'nonce-" + /nonce-([A-Za-z0-9_-]+)/.exec(csp ?? '')?.[1] + "';");
    panel.receive({ type: 'ready' });
    await settle();
    const explanation = panel.posted.find((m) => (m as { type: string }).type === 'explanation') as { explanation: { image: { src: string } } } | undefined;
    assert.equal(explanation?.explanation.image.src, 'data:image/jpeg;base64,/9j/');
    manager.dispose();
  });

  it('every panel gets its own unguessable nonce, used by the CSP and the one script tag', async () => {
    const { manager } = newPanels();
    manager.open('/data/images/a.png');
    manager.open('/data/images/b.png');
    const nonces = panels.slice(-2).map((p) => {
      const csp = /script-src &#39;nonce-([A-Za-z0-9_-]+)&#39;/.exec(p.html)?.[1];
      const scripts = [...p.html.matchAll(/<script nonce="([^"]+)" src="[^"]+"><\/script>/g)].map((m) => m[1]);
      assert.ok(csp, p.html);
      assert.deepEqual(scripts, [csp], 'exactly one script, carrying the CSP nonce');
      assert.ok(csp.length * 6 >= 128, `nonce ${csp} holds fewer than 128 bits`);
      assert.doesNotMatch(p.html, /unsafe-eval|unsafe-inline/);
      return csp;
    });
    assert.notEqual(nonces[0], nonces[1]);
    await settle();
    manager.dispose();
    // Many draws: always the full length (a nonce never loses characters) and never repeated.
    const { makeNonce } = await import('../../src/extension/panel/webviewHtml');
    const drawn = Array.from({ length: 500 }, makeNonce);
    assert.ok(drawn.every((n) => /^[A-Za-z0-9_-]{24}$/.test(n)), drawn.find((n) => n.length !== 24));
    assert.equal(new Set(drawn).size, drawn.length);
  });

  it('the shipped webview bundle has no eval, no string-to-code and no HTML-injection sinks', () => {
    const bundle = path.join(root, 'dist', 'webview.js');
    assert.ok(existsSync(bundle), 'dist/webview.js missing: run `npm run build` first');
    const code = readFileSync(bundle, 'utf8');
    // Labels come from a downloaded config.json: the webview must only ever set them as text.
    for (const sink of [/\beval\(/, /\bnew Function\b/, /\bFunction\(/, /\bsetTimeout\(\s*["'`]/, /\bsetInterval\(\s*["'`]/, /\binnerHTML\b/, /\bouterHTML\b/, /\binsertAdjacentHTML\b/, /\bdocument\.write/, /\bimportScripts\b/, /\bfetch\(/, /\bXMLHttpRequest\b/, /\bWebSocket\b/]) {
      assert.doesNotMatch(code, sink);
    }
  });
});
