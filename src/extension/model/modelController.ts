/**
 * Decides which model the worker loads: `beitLens.modelPath` (user value only while the workspace
 * is untrusted), else the converted official model in the extension's storage or the CLI's cache,
 * else nothing — and then offers to download it. With `beitLens.endpoint` the folder still gives preprocessing,
 * labels and config while the graphs run on those servers, with the token from SecretStorage. Re-decides when the
 * settings, trust or the token change.
 */
import * as os from 'node:os';
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { InferenceClient, ModelState } from '../inference/inferenceClient';
import { noModelActions, offerModelActions, SELECT_ACTION } from './modelActions';
import { CONFIG_SECTION, describeScope, ModelSettings, readModelSettings } from '../settings';
import { LoadModelArgs } from '../worker/workerProtocol';
import { ENDPOINT_TOKEN_SECRET, readEndpointToken } from './endpointToken';

const SETTINGS_RECHECK_MS = 2000;
/** Stands for the Settings editor opened on beitLens.endpoint (a command with an argument). */
const OPEN_ENDPOINT_SETTINGS = 'workbench.action.openSettings';
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
    if (state.kind === 'failed' && settings.remote) void this.reportRemoteFailure(state.message);
    else if (state.kind === 'failed' && settings.modelPath) void this.reportBadModelPath(state.message);
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
    void offerModelActions(
      (message, ...items) => vscode.window.showInformationMessage(message, ...items),
      'BEiT Lens needs the BEiT model (microsoft/beit-base-patch16-224-pt22k-ft22k). Download it from Hugging Face and convert it locally, or convert or select a model folder you already have?',
      noModelActions('Download (~350 MB)'),
      (command) => vscode.commands.executeCommand(command),
    );
  }

  /** Endpoint settings that cannot be used: said once per distinct problem, as a load failure would be. */
  private refuse(problem: string): ModelState {
    const key = JSON.stringify({ problem });
    if (key === this.lastArgs) return this.inference.state;
    this.lastArgs = key;
    this.log.error(problem);
    const state = this.inference.refuseModel(problem);
    void this.reportRemoteFailure(problem);
    return state;
  }

  /** The message names the endpoint (or the setting) and what it said: a refused token, no answer, another model. */
  private async reportRemoteFailure(message: string): Promise<void> {
    await offerModelActions(
      (text, ...items) => vscode.window.showErrorMessage(text, ...items),
      `BEiT Lens could not run the model on beitLens.endpoint: ${message}`,
      [
        { title: 'Set Endpoint Token…', command: Command.setEndpointToken },
        { title: 'Open Settings', command: OPEN_ENDPOINT_SETTINGS },
        { title: 'Run Doctor', command: Command.doctor },
      ],
      (command) => (command === OPEN_ENDPOINT_SETTINGS ? vscode.commands.executeCommand(command, `${CONFIG_SECTION}.endpoint`) : vscode.commands.executeCommand(command)),
    );
  }

  private async reportBadModelPath(message: string): Promise<void> {
    await offerModelActions(
      (text, ...items) => vscode.window.showErrorMessage(text, ...items),
      `BEiT Lens could not load the model in beitLens.modelPath: ${message}`,
      [SELECT_ACTION, { title: 'Run Doctor', command: Command.doctor }],
      (command) => vscode.commands.executeCommand(command),
    );
  }
}
