/**
 * What the explanation panel accepts from its webview: the shared schema (valid, malformed,
 * unknown), the host session that acts on it (invalid messages logged and dropped, no message can
 * name a file, stale replies ignored, exports only as PNG to where the user chooses), and the
 * panel HTML's Content-Security-Policy.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InferenceError, InferenceService, ModelState } from '../../src/extension/inference/inferenceClient';
import { ExplanationSession } from '../../src/extension/panel/explanationSession';
import { contentSecurityPolicy, explanationHtml } from '../../src/extension/panel/webviewHtml';
import { Emitter } from '../../src/extension/util/emitter';
import { Logger } from '../../src/extension/util/logger';
import { ExplanationSummary } from '../../src/extension/worker/workerProtocol';
import { ExtensionToWebviewMessage, parseWebviewMessage } from '../../src/shared/protocol';
import { FuzzCounter, fuzzParameters, fuzzTimeout } from '../helpers/fuzz';

const PNG = 'data:image/png;base64,' + Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]).toString('base64');

describe('parseWebviewMessage', () => {
  const valid: unknown[] = [
    { type: 'ready' },
    { type: 'setRollout', requestId: 1, headFusion: 'max', discardRatio: 0.5 },
    { type: 'selectClass', requestId: 1, classIndex: 21840 },
    { type: 'selectPatch', requestId: 1, patch: 195, layer: 11, head: 'mean' },
    { type: 'selectPatch', requestId: 1, patch: 0, layer: 0, head: 3 },
    { type: 'exportPng', dataUrl: PNG, suggestedName: 'cat-rollout.png' },
    { type: 'state', overlay: 'patches', opacity: 0.4 },
    { type: 'revealExport' },
    { type: 'runCommand', command: 'beitLens.selectModel' },
    { type: 'runCommand', command: 'beitLens.downloadModel' },
    { type: 'runCommand', command: 'beitLens.doctor' },
  ];
  const malformed: unknown[] = [
    null,
    'ready',
    42,
    [],
    {},
    { type: 'setRollout', requestId: 1, headFusion: 'median', discardRatio: 0.5 },
    { type: 'setRollout', requestId: 1, headFusion: 'mean', discardRatio: 1 },
    { type: 'setRollout', requestId: -1, headFusion: 'mean', discardRatio: 0.5 },
    { type: 'selectClass', requestId: 1, classIndex: 1.5 },
    { type: 'selectClass', requestId: 1, classIndex: '3' },
    { type: 'selectPatch', requestId: 1, patch: 1, layer: 0, head: 'max' },
    { type: 'exportPng', dataUrl: 'data:text/html;base64,PHNjcmlwdD4=', suggestedName: 'x.png' },
    { type: 'exportPng', dataUrl: PNG, suggestedName: '../../.bashrc' },
    { type: 'exportPng', dataUrl: PNG, suggestedName: 'C:\\Windows\\x.png' },
    { type: 'state', overlay: 'patches', opacity: 2 },
    // A path smuggled into an otherwise valid message.
    { type: 'ready', imagePath: '/etc/passwd' },
    { type: 'selectClass', requestId: 1, classIndex: 2, file: '/home/me/.ssh/id_rsa' },
    { type: 'revealExport', file: '/etc/passwd' },
    // Only the model recovery commands: no other command id, least of all a built-in one.
    { type: 'runCommand', command: 'workbench.action.terminal.new' },
    { type: 'runCommand', command: 'beitLens.classifyFolder' },
    { type: 'runCommand', command: 'beitLens.doctor', args: ['--x'] },
    { type: 'runCommand' },
  ];
  const unknown: unknown[] = [{ type: 'readFile', path: '/etc/passwd' }, { type: 'explain', image: '/etc/shadow' }, { type: 'eval', code: 'process.exit()' }];

  for (const m of valid) it(`accepts ${JSON.stringify(m).slice(0, 80)}`, () => assert.equal(parseWebviewMessage(m).ok, true));
  for (const m of [...malformed, ...unknown]) {
    it(`rejects ${JSON.stringify(m)?.slice(0, 80)}`, () => {
      const r = parseWebviewMessage(m);
      assert.equal(r.ok, false);
      assert.equal(typeof (r as { error: string }).error, 'string');
    });
  }

  it('never throws on arbitrary input (property-based)', { timeout: fuzzTimeout(500, 60_000) }, (t) => {
    const fuzz = new FuzzCounter('webview messages', 'arbitrary values -> parseWebviewMessage');
    fc.assert(
      fc.property(fc.anything(), (value) => {
        fuzz.tick();
        const r = parseWebviewMessage(value);
        return typeof r.ok === 'boolean';
      }),
      fuzzParameters(500),
    );
    fuzz.report(t);
  });
});

function summary(handle: string): ExplanationSummary {
  return {
    handle,
    top: [{ index: 9, label: 'tabby kitten', score: 0.7 }],
    grid: 14,
    leadingTokens: 1,
    layers: 2,
    heads: 4,
    rollout: { headFusion: 'mean', discardRatio: 0.9, map: Array(196).fill(0.5) },
    patchArgmax: Array(196).fill(9),
    patchScore: Array(196).fill(0.6),
    legend: [{ index: 9, label: 'tabby kitten', patches: 196, share: 1, color: [1, 2, 3] }],
    provider: 'cpu',
    width: 300,
    height: 200,
    src: 'data:image/jpeg;base64,/9j/',
  };
}

/** Records every call; answers explain with a new handle each time, and rollout from a script. */
class FakeInference implements InferenceService {
  readonly calls: { name: string; args: Record<string, unknown> }[] = [];
  state: ModelState = { kind: 'ready', model: { modelDir: '/m', modelId: 'tiny', provider: 'cpu', providerAttempts: [], canExplain: true, numLabels: 10 } };
  readonly onDidChangeState = new Emitter<ModelState>().event;
  readonly onDidWorkerExit = new Emitter<never>().event;
  goneHandles = new Set<string>();
  /** What explain throws, as the client does while the model is missing or failed to load. */
  failWith?: InferenceError;
  private handles = 0;
  get model() {
    return undefined;
  }
  queuedInLane(): number {
    return 0;
  }
  call = (async (name: string, args: Record<string, unknown>) => {
    this.calls.push({ name, args });
    await Promise.resolve();
    if ('handle' in args && this.goneHandles.has(args.handle as string)) throw new InferenceError('EXPLANATION_GONE', 'gone');
    switch (name) {
      case 'explain':
        if (this.failWith) throw this.failWith;
        return summary(`h${++this.handles}`);
      case 'rollout':
      case 'patchAttention':
        return Array(196).fill(0.25);
      case 'classHeatmap':
        return { label: 'river otter', logits: Array(196).fill(1) };
      default:
        return undefined;
    }
  }) as unknown as InferenceService['call'];
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, trace() {}, debug() {}, info() {}, error: (m) => warnings.push(m), warn: (m) => warnings.push(m) };
}

function newSession(overrides: { saveExport?: (png: Uint8Array, name: string) => Promise<string | undefined> } = {}) {
  const inference = new FakeInference();
  const log = recordingLogger();
  const posted: ExtensionToWebviewMessage[] = [];
  const saved: { png: Uint8Array; name: string }[] = [];
  const revealed: string[] = [];
  const commands: string[] = [];
  const session = new ExplanationSession({
    imagePath: '/data/images/cat.png',
    inference,
    post: (m) => posted.push(m),
    settings: () => ({ topK: 5, hoverEnabled: true, hoverMaxBytes: 1, headFusion: 'mean', discardRatio: 0.9, similarTopK: 24 }),
    saveExport: overrides.saveExport ?? (async (png, name) => (saved.push({ png, name }), `/chosen/${name}`)),
    revealFile: async (file) => revealed.push(file),
    runCommand: async (command) => {
      commands.push(command);
      if (command !== 'beitLens.doctor') inference.failWith = undefined;
    },
    log,
  });
  return { session, inference, log, posted, saved, revealed, commands };
}

describe('ExplanationSession', () => {
  it('explains only its own image and sends the DTO on ready', async () => {
    const { session, inference, posted } = newSession();
    await session.receive({ type: 'ready' });
    assert.deepEqual(inference.calls.map((c) => c.name), ['explain']);
    assert.equal(inference.calls[0].args.file, '/data/images/cat.png');
    assert.deepEqual(posted.map((m) => m.type), ['loading', 'explanation']);
    const dto = (posted[1] as Extract<ExtensionToWebviewMessage, { type: 'explanation' }>).explanation;
    assert.equal(dto.requestId, 1);
    assert.deepEqual(dto.image, { src: 'data:image/jpeg;base64,/9j/', name: 'cat.png', width: 300, height: 200 });
    assert.equal(dto.patchScore.length, 196);
    // A webview that reloads gets the same explanation without recomputing.
    await session.receive({ type: 'ready' });
    assert.equal(inference.calls.length, 1);
    assert.equal(posted.at(-1)?.type, 'explanation');
  });

  it('logs and drops invalid and unknown messages without doing anything', async () => {
    const { session, inference, posted, log } = newSession();
    for (const m of [{ type: 'readFile', path: '/etc/passwd' }, { type: 'selectClass', requestId: 1, classIndex: 1, file: '/etc/passwd' }, 'garbage', null, { type: 'setRollout', requestId: 1, headFusion: 'mean', discardRatio: 7 }]) {
      await session.receive(m);
    }
    assert.equal(inference.calls.length, 0);
    assert.equal(posted.length, 0);
    assert.equal(log.warnings.length, 5);
    assert.ok(log.warnings.every((w) => /dropped an invalid message/.test(w)));
  });

  it('answers follow-ups from the worker-held explanation and ignores stale ones', async () => {
    const { session, inference, posted } = newSession();
    await session.receive({ type: 'ready' });
    await session.receive({ type: 'setRollout', requestId: 1, headFusion: 'max', discardRatio: 0.5 });
    await session.receive({ type: 'selectClass', requestId: 1, classIndex: 7 });
    await session.receive({ type: 'selectPatch', requestId: 1, patch: 20, layer: 1, head: 2 });
    await session.receive({ type: 'setRollout', requestId: 99, headFusion: 'min', discardRatio: 0.1 });
    assert.deepEqual(inference.calls.map((c) => [c.name, c.args.handle]), [['explain', undefined], ['rollout', 'h1'], ['classHeatmap', 'h1'], ['patchAttention', 'h1']]);
    assert.deepEqual(posted.slice(2).map((m) => m.type), ['rollout', 'classHeatmap', 'patchAttention']);
    assert.deepEqual(posted[2], { type: 'rollout', requestId: 1, headFusion: 'max', discardRatio: 0.5, map: Array(196).fill(0.25) });
  });

  it('recomputes the explanation once when the worker lost it (restart) and retries', async () => {
    const { session, inference, posted } = newSession();
    await session.receive({ type: 'ready' });
    inference.goneHandles.add('h1');
    await session.receive({ type: 'selectClass', requestId: 1, classIndex: 2 });
    assert.deepEqual(inference.calls.map((c) => [c.name, c.args.handle]), [['explain', undefined], ['classHeatmap', 'h1'], ['explain', undefined], ['classHeatmap', 'h2']]);
    assert.deepEqual(posted.at(-1), { type: 'classHeatmap', requestId: 1, classIndex: 2, label: 'river otter', logits: Array(196).fill(1) });
  });

  it('exports only PNG bytes, to the place the user picks, under a sanitised name', async () => {
    const { session, posted, saved, log } = newSession();
    await session.receive({ type: 'exportPng', dataUrl: 'data:image/png;base64,' + Buffer.from('<svg onload=alert(1)>').toString('base64'), suggestedName: 'x.png' });
    assert.equal(saved.length, 0);
    assert.match(log.warnings[0], /not a PNG/);
    await session.receive({ type: 'exportPng', dataUrl: PNG, suggestedName: 'cat rollout' });
    assert.equal(saved.length, 1);
    assert.equal(saved[0].name, 'cat rollout.png');
    assert.deepEqual([...saved[0].png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.deepEqual(posted.at(-1), { type: 'exported', file: '/chosen/cat rollout.png' });
  });

  it('reveals only the PNG it last exported, and nothing before an export', async () => {
    const { session, revealed, log } = newSession();
    await session.receive({ type: 'revealExport' });
    assert.deepEqual(revealed, []);
    assert.match(log.warnings.at(-1) ?? '', /nothing exported yet/);
    await session.receive({ type: 'exportPng', dataUrl: PNG, suggestedName: 'cat-rollout.png' });
    await session.receive({ type: 'exportPng', dataUrl: PNG, suggestedName: 'cat-patches.png' });
    await session.receive({ type: 'revealExport' });
    assert.deepEqual(revealed, ['/chosen/cat-patches.png']);
  });

  it('tells the panel when the model is missing or failed, and explains again after a recovery command', async () => {
    const { session, inference, posted, commands } = newSession();
    inference.failWith = new InferenceError('MODEL_FAILED', 'the model could not be loaded: config.json: bad JSON');
    await session.receive({ type: 'ready' });
    assert.deepEqual(posted.at(-1), { type: 'modelUnavailable', requestId: 1, reason: 'failed', message: 'the model could not be loaded: config.json: bad JSON' });
    // The doctor only reports: no new attempt.
    await session.receive({ type: 'runCommand', command: 'beitLens.doctor' });
    assert.equal(inference.calls.filter((c) => c.name === 'explain').length, 1);
    inference.failWith = new InferenceError('NO_MODEL', 'no model: none configured');
    await session.receive({ type: 'ready' });
    assert.equal((posted.at(-1) as { reason?: string }).reason, 'noModel');
    await session.receive({ type: 'runCommand', command: 'beitLens.selectModel' });
    assert.deepEqual(commands, ['beitLens.doctor', 'beitLens.selectModel']);
    assert.equal(posted.at(-1)?.type, 'explanation');
    assert.equal(inference.calls.filter((c) => c.name === 'explain').at(-1)?.args.file, '/data/images/cat.png');
  });

  it('releases the worker-held tensors when the panel closes', async () => {
    const { session, inference } = newSession();
    await session.receive({ type: 'ready' });
    session.dispose();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(inference.calls.at(-1), { name: 'release', args: { handle: 'h1' } });
    await session.receive({ type: 'ready' });
    assert.equal(inference.calls.filter((c) => c.name === 'explain').length, 1);
  });

  it('never calls the worker with any file but its own, whatever the webview sends (property-based)', { timeout: fuzzTimeout(200, 60_000) }, async (t) => {
    const fuzz = new FuzzCounter('webview message sequences', 'up to 8 arbitrary or near-valid messages -> ExplanationSession');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.anything(), fc.record({ type: fc.constantFrom('ready', 'setRollout', 'selectClass', 'selectPatch', 'exportPng', 'state', 'revealExport', 'runCommand'), requestId: fc.nat(3), file: fc.string(), path: fc.string() }, { requiredKeys: ['type'] })), { maxLength: 8 }), async (messages) => {
        fuzz.tick();
        const { session, inference, saved } = newSession();
        for (const m of messages) await session.receive(m);
        session.dispose();
        return inference.calls.every((c) => c.args.file === undefined || c.args.file === '/data/images/cat.png') && saved.length === 0;
      }),
      fuzzParameters(200),
    );
    fuzz.report(t);
  });
});

describe('explanation panel HTML', () => {
  const html = explanationHtml({
    cspSource: 'https://*.vscode-cdn.net',
    nonce: 'abc123',
    scriptUri: 'https://x.vscode-cdn.net/dist/webview.js',
    styleUri: 'https://x.vscode-cdn.net/media/webview.css',
    title: 'BEiT: cat.png',
    imagePath: '/data/"><script>alert(1)</script>.png',
  });

  it('has a strict CSP with a nonce', () => {
    assert.equal(contentSecurityPolicy('https://*.vscode-cdn.net', 'abc123'), "default-src 'none'; img-src data:; script-src 'nonce-abc123'; style-src https://*.vscode-cdn.net 'nonce-abc123';");
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; img-src data:; script-src &#39;nonce-abc123&#39;;/);
  });

  it('loads only our script and stylesheet, with the nonce, and nothing inline', () => {
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    assert.deepEqual(scripts, ['<script nonce="abc123" src="https://x.vscode-cdn.net/dist/webview.js">']);
    assert.match(html, /<link rel="stylesheet" nonce="abc123" href="https:\/\/x\.vscode-cdn\.net\/media\/webview\.css">/);
    assert.doesNotMatch(html, /\son[a-z]+=/i);
    assert.doesNotMatch(html, /<style/);
    assert.doesNotMatch(html, /https?:\/\/(?!x\.vscode-cdn\.net|\*\.vscode-cdn\.net)/);
  });

  it('escapes the image path it hands to the webview', () => {
    assert.match(html, /<body data-image-path="\/data\/&quot;&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;\.png">/);
  });
});
