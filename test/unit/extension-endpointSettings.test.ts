/**
 * beitLens.endpoint in the extension, without an editor: the settings' validation (errors name the setting), the
 * token in a fake SecretStorage, the two token commands, and the model controller against a small stand-in for the
 * `vscode` module and a recording inference client: what it asks the worker to load, and that a change of the
 * endpoint settings or of the token reloads. The real worker against a v2 server: extension-remoteWorker.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import type { ModelState } from '../../src/extension/inference/inferenceClient';
import { describe as describeState } from '../../src/extension/model/describeModelState';
import { clearEndpointToken, ENDPOINT_TOKEN_SECRET, endpointTokenProblem, readEndpointToken, SecretStore, storeEndpointToken } from '../../src/extension/model/endpointToken';
import { Inspect, readModelSettings, SettingInspection } from '../../src/extension/settings';
import { ModelNotices } from '../../src/extension/model/modelNotices';
import type { LoadModelArgs } from '../../src/extension/worker/workerProtocol';

const context = { trusted: true, homeDir: '/home/me', workspaceFolders: ['/work/project'] };
const inspectFrom =
  (values: Record<string, SettingInspection>): Inspect =>
  (key) =>
    values[key];
const remoteOf = (values: Record<string, SettingInspection>, trusted = true) => readModelSettings(inspectFrom(values), { ...context, trusted });

describe('the endpoint settings', () => {
  it('take one URL or a list, without trailing slashes, with the model name defaulting to export-triton\'s', () => {
    assert.deepEqual(remoteOf({ endpoint: { defaultValue: '', globalValue: 'http://gpu-box:8000/' } }).remote, { endpoints: ['http://gpu-box:8000'], modelName: 'beit' });
    const two = remoteOf({ endpoint: { globalValue: [' https://gpu-a:8000 ', 'https://gpu-b:8000/kserve/'] }, remoteModel: { defaultValue: 'beit', globalValue: ' beit-large ' }, endpointCa: { globalValue: '~/ca/cluster.pem' } });
    assert.deepEqual(two.remote, { endpoints: ['https://gpu-a:8000', 'https://gpu-b:8000/kserve'], modelName: 'beit-large', caFile: '/home/me/ca/cluster.pem' });
    assert.equal(two.endpointProblem, undefined);
  });

  it('are off when empty: the model runs in VS Code', () => {
    for (const value of [undefined, '', '   ', []]) {
      const s = remoteOf({ endpoint: { defaultValue: '', globalValue: value } });
      assert.equal(s.remote, undefined);
      assert.equal(s.endpointProblem, undefined);
    }
  });

  it('that cannot be used are a problem naming the setting and the value, not a quiet fallback to the local session', () => {
    const cases: [Record<string, SettingInspection>, RegExp][] = [
      [{ endpoint: { globalValue: 'gpu-box:8000' } }, /^beitLens\.endpoint "gpu-box:8000" is not an http or https URL \(e\.g\. http:\/\/gpu-box:8000\)$/],
      [{ endpoint: { globalValue: ['http://a:8000', 'not a url'] } }, /^beitLens\.endpoint "not a url" is not an http or https URL/],
      [{ endpoint: { globalValue: 'ftp://a/models' } }, /^beitLens\.endpoint "ftp:\/\/a\/models" is not an http or https URL/],
      [{ endpoint: { globalValue: ['http://a:8000', 7] } }, /^beitLens\.endpoint 7 is not an http or https URL/],
      [{ endpoint: { globalValue: { url: 'http://a:8000' } } }, /^beitLens\.endpoint must be a URL or a list of URLs, not \{"url":"http:\/\/a:8000"\}$/],
      [{ endpoint: { globalValue: 'http://me:hunter2@a:8000' } }, /^beitLens\.endpoint a:8000 has a user name or password in it: store the token with "BEiT Lens: Set Endpoint Token" instead$/],
      [{ endpoint: { globalValue: ['http://a:8000/', 'http://a:8000'] } }, /^beitLens\.endpoint lists http:\/\/a:8000 twice$/],
      [{ endpoint: { globalValue: 'http://a:8000' }, remoteModel: { globalValue: '  ' } }, /^beitLens\.remoteModel must be the model's name on the server, not "  "$/],
      [{ endpoint: { globalValue: 'http://a:8000' }, endpointCa: { globalValue: 'certs/ca.pem' } }, /^beitLens\.endpointCa "certs\/ca\.pem" is not an absolute path$/],
      [{ endpoint: { globalValue: 'http://a:8000' }, endpointCa: { globalValue: 3 } }, /^beitLens\.endpointCa must be the path of a PEM file, not 3$/],
    ];
    for (const [values, problem] of cases) {
      const s = remoteOf(values);
      assert.equal(s.remote, undefined, JSON.stringify(values));
      assert.match(s.endpointProblem ?? '', problem, JSON.stringify(values));
    }
  });

  it('from an untrusted workspace are ignored and said to be: a workspace must not choose where the images go', () => {
    const s = remoteOf({ endpoint: { defaultValue: '', workspaceValue: 'http://evil:8000' } }, false);
    assert.equal(s.remote, undefined);
    assert.equal(s.endpointProblem, undefined);
    assert.deepEqual(s.notes, ['beitLens.endpoint from the workspace settings is ignored until the workspace is trusted']);
    const user = remoteOf({ endpoint: { globalValue: 'http://mine:8000', workspaceValue: 'http://evil:8000' }, remoteModel: { defaultValue: 'beit', workspaceValue: 'evil' }, endpointCa: { workspaceFolderValue: '/evil/ca.pem' } }, false);
    assert.deepEqual(user.remote, { endpoints: ['http://mine:8000'], modelName: 'beit' });
    assert.deepEqual(user.notes, [
      'beitLens.endpoint from the workspace settings is ignored until the workspace is trusted',
      'beitLens.remoteModel from the workspace settings is ignored until the workspace is trusted',
      'beitLens.endpointCa from the workspaceFolder settings is ignored until the workspace is trusted',
    ]);
  });
});

/** vscode.SecretStorage's behaviour: keyed strings and a change event (fired on store and delete). */
class FakeSecrets implements SecretStore {
  readonly values = new Map<string, string>();
  private readonly listeners = new Set<(e: { key: string }) => void>();
  async get(key: string) {
    return this.values.get(key);
  }
  async store(key: string, value: string) {
    this.values.set(key, value);
    for (const l of this.listeners) l({ key });
  }
  async delete(key: string) {
    this.values.delete(key);
    for (const l of this.listeners) l({ key });
  }
  onDidChange(listener: (e: { key: string }) => void) {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }
}

describe('the endpoint token', () => {
  it('is stored trimmed under its key, read back and cleared', async () => {
    const secrets = new FakeSecrets();
    assert.equal(await readEndpointToken(secrets), undefined);
    await storeEndpointToken(secrets, '  abc.def-123\n');
    assert.deepEqual([...secrets.values], [[ENDPOINT_TOKEN_SECRET, 'abc.def-123']]);
    assert.equal(await readEndpointToken(secrets), 'abc.def-123');
    assert.equal(await clearEndpointToken(secrets), true);
    assert.equal(await readEndpointToken(secrets), undefined);
    assert.equal(await clearEndpointToken(secrets), false, 'nothing left to remove');
  });

  it('refuses an empty answer or one that cannot be a header value, before storing anything', async () => {
    const secrets = new FakeSecrets();
    assert.equal(endpointTokenProblem('abc'), undefined);
    assert.match(endpointTokenProblem('   ') ?? '', /^Enter the token \(run "BEiT Lens: Clear Endpoint Token" to remove the stored one\)$/);
    assert.match(endpointTokenProblem('ab\ncd') ?? '', /line break or NUL inside: it cannot go in an Authorization header/);
    assert.match(endpointTokenProblem('ab\0cd') ?? '', /line break or NUL/);
    await assert.rejects(storeEndpointToken(secrets, 'ab\r\ncd'), /line break/);
    assert.equal(secrets.values.size, 0);
  });
});

describe('the status bar words for a remote model', () => {
  it('say remote and name the endpoints and the model', () => {
    const state: ModelState = { kind: 'ready', model: { modelDir: '/m/beit', modelId: 'beit-tiny', provider: 'cpu', providerAttempts: [], canExplain: true, numLabels: 10, remote: { endpoints: ['http://a:8000', 'http://b:8000'], modelName: 'beit' } } };
    assert.deepEqual(describeState(state, 'plain'), { text: '$(eye) BEiT: remote', tooltip: 'beit-tiny ready on http://a:8000, http://b:8000 (model beit; beitLens.endpoint)\n\n/m/beit', error: false });
    const local: ModelState = { kind: 'ready', model: { ...(state.kind === 'ready' ? state.model : ({} as never)), remote: undefined } };
    assert.equal(describeState(local, 'plain').text, '$(eye) BEiT: CPU');
  });
});

// ---- the model controller and the commands against a stand-in for vscode ----------------------------------------

const settings = new Map<string, SettingInspection>();
const configListeners = new Set<(e: { affectsConfiguration(section: string): boolean }) => void>();
const shown: { kind: string; message: string; items: string[] }[] = [];
/** The texts the model-state notices showed (progress notifications with command links). */
const notices: string[] = [];
const inputBoxes: Record<string, unknown>[] = [];
let inputAnswer: string | undefined;
const commands = new Map<string, (...args: unknown[]) => unknown>();
const executed: unknown[][] = [];
const notify = (kind: string) => async (message: string, ...items: string[]) => (shown.push({ kind, message, items }), undefined);
const vscode = {
  workspace: {
    isTrusted: true,
    workspaceFolders: [],
    getConfiguration: () => ({ inspect: (key: string) => settings.get(key) }),
    onDidChangeConfiguration: (l: (e: { affectsConfiguration(section: string): boolean }) => void) => (configListeners.add(l), { dispose: () => configListeners.delete(l) }),
    onDidGrantWorkspaceTrust: () => ({ dispose() {} }),
  },
  window: {
    showErrorMessage: notify('error'),
    showInformationMessage: notify('info'),
    showInputBox: async (options: Record<string, unknown>) => (inputBoxes.push(options), inputAnswer),
  },
  commands: {
    registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => (commands.set(id, fn), { dispose: () => commands.delete(id) }),
    executeCommand: async (...args: unknown[]) => void executed.push(args),
  },
};
const originalLoad = (Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown })._load;
(Module as unknown as { _load: typeof originalLoad })._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscode : originalLoad.call(this, request, ...rest);
};
after(() => {
  (Module as unknown as { _load: typeof originalLoad })._load = originalLoad;
});

function changeSetting(key: string, value: unknown): void {
  settings.set(key, { ...settings.get(key), globalValue: value });
  for (const l of [...configListeners]) l({ affectsConfiguration: (section) => section === `beitLens.${key}` });
}

/** What the controller asks of the inference client, answered with a state chosen by the test. */
class RecordingInference {
  loads: LoadModelArgs[] = [];
  refusals: string[] = [];
  answer: (args: LoadModelArgs) => ModelState = (args) => ({ kind: 'ready', model: { modelDir: '/m', modelId: 'm', provider: 'cpu', providerAttempts: [], canExplain: true, numLabels: 10, ...(args.remote ? { remote: { endpoints: args.remote.endpoints, modelName: args.remote.modelName } } : {}) } });
  state: ModelState = { kind: 'starting' };
  private readonly stateListeners = new Set<(state: ModelState) => void>();
  onDidChangeState(listener: (state: ModelState) => void) {
    this.stateListeners.add(listener);
    return { dispose: () => void this.stateListeners.delete(listener) };
  }
  private settled = Promise.resolve(this.state);
  async setModel(args: LoadModelArgs) {
    this.loads.push(args);
    this.state = this.answer(args);
    this.settled = Promise.resolve(this.state);
    return this.state;
  }
  refuseModel(message: string) {
    this.refusals.push(message);
    this.state = { kind: 'failed', message };
    return this.state;
  }
  whenSettled() {
    return this.settled;
  }
}

const silentLog = { info() {}, warn() {}, error() {}, debug() {}, trace() {} };
/** Lets the controller's start() (not awaited by the event handlers) finish. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('the model controller with beitLens.endpoint', () => {
  type Controller = import('../../src/extension/model/modelController').ModelController;
  let inference: RecordingInference;
  let secrets: FakeSecrets;
  let controller: Controller | undefined;

  beforeEach(async () => {
    controller?.dispose();
    settings.clear();
    shown.length = 0;
    executed.length = 0;
    settings.set('modelPath', { defaultValue: '', globalValue: '/models/beit' });
    settings.set('remoteModel', { defaultValue: 'beit' });
    inference = new RecordingInference();
    secrets = new FakeSecrets();
    notices.length = 0;
    const { ModelController } = await import('../../src/extension/model/modelController');
    const modelNotices = new ModelNotices(inference, async (text, until) => {
      notices.push(text);
      await until;
    });
    controller = new ModelController(inference as never, silentLog as never, modelNotices, '/cache', secrets as never);
  });
  after(() => controller?.dispose());

  it('loads the folder with the endpoints and the stored token, and reloads when the endpoint setting changes', async () => {
    await secrets.store(ENDPOINT_TOKEN_SECRET, 'tok');
    changeSetting('endpoint', 'http://a:8000');
    await settle();
    assert.equal(inference.loads.length, 1);
    assert.deepEqual(inference.loads[0], { source: { kind: 'folder', dir: '/models/beit' }, provider: 'auto', preprocess: { fast: false, applyExifOrientation: true }, remote: { endpoints: ['http://a:8000'], modelName: 'beit', token: 'tok' } });
    changeSetting('endpoint', ['http://a:8000', 'http://b:8000']);
    changeSetting('remoteModel', 'beit-large');
    await settle();
    assert.deepEqual(inference.loads.at(-1)?.remote, { endpoints: ['http://a:8000', 'http://b:8000'], modelName: 'beit-large', token: 'tok' });
    changeSetting('endpoint', '');
    await settle();
    assert.equal(inference.loads.at(-1)?.remote, undefined, 'no endpoint: the model runs in VS Code again');
    assert.deepEqual(notices, []);
  });

  it('reloads when the token is set or cleared while an endpoint is in use, and not otherwise', async () => {
    await secrets.store(ENDPOINT_TOKEN_SECRET, 'before-any-endpoint');
    await settle();
    assert.equal(inference.loads.length, 0, 'no endpoint: the token does not matter');
    changeSetting('endpoint', 'http://a:8000');
    await settle();
    const loads = inference.loads.length;
    await storeEndpointToken(secrets, 'new');
    await settle();
    assert.equal(inference.loads.length, loads + 1);
    assert.equal(inference.loads.at(-1)?.remote?.token, 'new');
    await clearEndpointToken(secrets);
    await settle();
    assert.equal(inference.loads.length, loads + 2);
    assert.equal(inference.loads.at(-1)?.remote?.token, undefined);
  });

  it('a remote failure is shown with the endpoint and message, offering the token, the setting and the doctor', async () => {
    inference.answer = () => ({ kind: 'failed', message: 'http://a:8000: authentication failed: GET /v2/health/ready answered 401 Unauthorized: missing bearer token; no token was sent: run "BEiT Lens: Set Endpoint Token"' });
    changeSetting('endpoint', 'http://a:8000');
    await settle();
    assert.deepEqual(notices, [
      'BEiT Lens could not run the model on beitLens.endpoint: http://a:8000: authentication failed: GET /v2/health/ready answered 401 Unauthorized: missing bearer token; no token was sent: run "BEiT Lens: Set Endpoint Token". ' +
        '[Set Endpoint Token…](command:beitLens.setEndpointToken) · [Open Settings](command:workbench.action.openSettings?%5B%22beitLens.endpoint%22%5D) · [Run Doctor](command:beitLens.doctor)',
    ]);
  });

  it('an unusable endpoint setting fails the model with the problem and loads nothing, once per problem', async () => {
    changeSetting('endpoint', 'gpu-box:8000');
    await settle();
    changeSetting('executionProvider', 'cpu');
    await settle();
    assert.equal(inference.loads.length, 0, 'nothing is loaded, not even locally');
    assert.deepEqual(inference.refusals, ['beitLens.endpoint "gpu-box:8000" is not an http or https URL (e.g. http://gpu-box:8000)']);
    assert.equal(notices.length, 1);
    assert.ok(notices[0].startsWith('BEiT Lens could not run the model on beitLens.endpoint: beitLens.endpoint "gpu-box:8000" is not an http or https URL (e.g. http://gpu-box:8000). [Set Endpoint Token…]'), notices[0]);
    changeSetting('endpoint', 'http://gpu-box:8000');
    await settle();
    assert.deepEqual(inference.loads.at(-1)?.remote?.endpoints, ['http://gpu-box:8000'], 'fixed: it loads');
  });
});

describe('Set Endpoint Token and Clear Endpoint Token', () => {
  it('ask with a password box, store the answer in secret storage and remove it', async () => {
    const { registerSetEndpointTokenCommand, registerClearEndpointTokenCommand } = await import('../../src/extension/commands/endpointTokenCommands');
    const secrets = new FakeSecrets();
    const set = registerSetEndpointTokenCommand(secrets as never);
    const clear = registerClearEndpointTokenCommand(secrets as never);
    shown.length = 0;
    inputAnswer = undefined;
    assert.equal(await commands.get('beitLens.setEndpointToken')?.(), false, 'dismissed: nothing changes');
    assert.equal(inputBoxes.at(-1)?.password, true);
    assert.equal(inputBoxes.at(-1)?.validateInput, endpointTokenProblem);
    assert.equal(secrets.values.size, 0);
    inputAnswer = 'tok-1 ';
    assert.equal(await commands.get('beitLens.setEndpointToken')?.(), true);
    assert.equal(secrets.values.get(ENDPOINT_TOKEN_SECRET), 'tok-1');
    assert.equal(await commands.get('beitLens.clearEndpointToken')?.(), true);
    assert.equal(secrets.values.size, 0);
    assert.equal(await commands.get('beitLens.clearEndpointToken')?.(), false);
    assert.deepEqual(
      shown.map((s) => s.message),
      ['BEiT Lens: endpoint token stored.', 'BEiT Lens: endpoint token removed.', 'BEiT Lens: no endpoint token was stored.'],
    );
    set.dispose();
    clear.dispose();
  });
});

describe('the README', () => {
  it('lists every contributed command with its title and every setting with its default, the endpoint ones included', () => {
    const root = path.resolve(__dirname, '../..');
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const commands = pkg.contributes.commands as { command: string; title: string; category: string }[];
    for (const id of ['beitLens.setEndpointToken', 'beitLens.clearEndpointToken']) assert.ok(commands.some((c) => c.command === id), id);
    for (const c of commands) assert.ok(readme.includes(`| ${c.category}: ${c.title} | \`${c.command}\``), `README commands table: ${c.category}: ${c.title} (${c.command})`);
    const properties = pkg.contributes.configuration.properties as Record<string, { default: unknown }>;
    for (const key of ['beitLens.endpoint', 'beitLens.remoteModel', 'beitLens.endpointCa']) assert.ok(properties[key], key);
    for (const [key, { default: value }] of Object.entries(properties)) {
      const shown = value === '' ? '""' : String(value);
      assert.ok(readme.includes(`| \`${key}\` | \`${shown}\` |`), `README settings table: ${key} with default ${shown}`);
    }
  });
});
