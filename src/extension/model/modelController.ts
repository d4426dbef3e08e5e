/**
 * Decides which model the worker loads: `beitLens.modelPath` (user value only while the workspace
 * is untrusted), else the converted official model in the extension's storage or the CLI's cache,
 * else nothing — and then offers to download it. With `beitLens.endpoint` the folder still gives preprocessing,
 * labels and config while the graphs run on those servers, with the token from SecretStorage. Re-decides when the
 * settings, trust or the token change.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import { InferenceClient, ModelState } from '../inference/inferenceClient';
import { DOCTOR_ACTION, noModelActions, REMOTE_FAILURE_ACTIONS, SELECT_ACTION } from './modelActions';
import { ModelNotices } from './modelNotices';
import { CONFIG_SECTION, describeScope, ModelSettings, readModelSettings } from '../settings';
import { LoadModelArgs } from '../worker/workerProtocol';
import { ENDPOINT_TOKEN_SECRET, readEndpointToken } from './endpointToken';

const SETTINGS_RECHECK_MS = 2000;
/** The settings that choose what the worker loads. */
const MODEL_SETTINGS = ['modelPath', 'executionProvider', 'endpoint', 'remoteModel', 'endpointCa'];

export class ModelController implements vscode.Disposable {
  private readonly subscriptions: vscode.Disposable[] = [];
  private lastArgs?: string;
  private offeredDownload = false;
  private recheckedSettings = false;
  private current?: ModelSettings;

  constructor(
    private readonly inference: InferenceClient,
    private readonly log: vscode.LogOutputChannel,
    /** The model-state notices, for commands that report on the model this controller chose. */
    readonly notices: ModelNotices,
    /** Where `beitLens.downloadModel` puts converted models (the extension's global storage). */
    readonly cacheDir: string,
    /** Holds the endpoint's bearer token. */
    private readonly secrets: vscode.SecretStorage,
  ) {
    this.subscriptions.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (MODEL_SETTINGS.some((key) => e.affectsConfiguration(`${CONFIG_SECTION}.${key}`))) this.start();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.start()),
      secrets.onDidChange((e) => {
        if (e.key === ENDPOINT_TOKEN_SECRET && this.current?.remote) this.start();
      }),
    );
  }

  /** The settings as last applied, including why any were ignored (for the doctor report). */
  get settings(): ModelSettings {
    return this.current ?? this.readSettings();
  }

  /** For the doctor report: whether a token is stored, never the token. */
  async hasEndpointToken(): Promise<boolean> {
    return (await readEndpointToken(this.secrets)) !== undefined;
  }

  /** Starts loading in the background; activation never waits for the model. */
  start(): void {
    this.refresh().catch((err: unknown) => this.log.error(`choosing the model failed: ${(err as Error).message}`));
  }

  /** Applies the current settings; reloads only when they changed, unless `force`. */
  async refresh(force = false): Promise<ModelState> {
    const settings = this.readSettings();
    this.current = settings;
    for (const note of settings.notes) this.log.warn(note);
    if (settings.endpointProblem) return this.refuse(settings.endpointProblem);
    const args: LoadModelArgs = {
      source: settings.modelPath ? { kind: 'folder', dir: settings.modelPath.dir } : { kind: 'cache', cacheDirs: [this.cacheDir], includeCliCache: true },
      provider: settings.provider,
      preprocess: { fast: false, applyExifOrientation: true },
      ...(settings.remote ? { remote: { ...settings.remote, token: await readEndpointToken(this.secrets) } } : {}),
    };
    const key = JSON.stringify(args);
    if (!force && key === this.lastArgs) return this.inference.whenSettled();
    this.lastArgs = key;
    this.log.info(settings.modelPath ? `loading the model from beitLens.modelPath (${describeScope(settings.modelPath.scope)}): ${settings.modelPath.dir}` : 'looking for a downloaded model');
    if (settings.remote) this.log.info(`running it on ${settings.remote.endpoints.join(', ')} (model ${settings.remote.modelName}, ${args.remote?.token ? 'with the stored endpoint token' : 'no endpoint token stored'})`);
    const state = await this.inference.setModel(args);
    if (key !== this.lastArgs) return state;
    if (state.kind === 'noModel' && !settings.modelPath) {
      // In a window that has just opened (seen with code-server in Restricted Mode) the user settings
      // can reach the extension host after activation without a change event: look once more before
      // telling the user there is no model.
      if (!this.recheckedSettings) {
        this.recheckedSettings = true;
        await new Promise((resolve) => setTimeout(resolve, SETTINGS_RECHECK_MS));
        if (key === this.lastArgs && this.readSettings().modelPath) return this.refresh();
      }
      if (key === this.lastArgs) this.offerDownload();
    }
    if (state.kind === 'failed' && settings.remote) this.reportRemoteFailure(state.message);
    else if (state.kind === 'failed' && settings.modelPath) this.reportBadModelPath(state.message);
    return state;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }

  private readSettings(): ModelSettings {
    const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
    return readModelSettings((key) => config.inspect(key), {
      trusted: vscode.workspace.isTrusted,
      homeDir: os.homedir(),
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
    });
  }

  private offerDownload(): void {
    if (this.offeredDownload) return;
    this.offeredDownload = true;
    void this.notices.show(
      'BEiT Lens needs the BEiT model (microsoft/beit-base-patch16-224-pt22k-ft22k). Download it from Hugging Face and convert it locally, or convert or select a model folder you already have?',
      noModelActions('Download (~350 MB)'),
    );
  }

  /** Endpoint settings that cannot be used: said once per distinct problem, as a load failure would be. */
  private refuse(problem: string): ModelState {
    const key = JSON.stringify({ problem });
    if (key === this.lastArgs) return this.inference.state;
    this.lastArgs = key;
    this.log.error(problem);
    const state = this.inference.refuseModel(problem);
    this.reportRemoteFailure(problem);
    return state;
  }

  /** The message names the endpoint (or the setting) and what it said: a refused token, no answer, another model. */
  private reportRemoteFailure(message: string): void {
    void this.notices.show(`BEiT Lens could not run the model on beitLens.endpoint: ${message}`, REMOTE_FAILURE_ACTIONS);
  }

  /** Until the model state changes; a second report of the same failure adds no second notice. */
  reportBadModelPath(message: string): void {
    void this.notices.show(`BEiT Lens could not load the model in beitLens.modelPath: ${message}`, [SELECT_ACTION, DOCTOR_ACTION]);
  }
}
