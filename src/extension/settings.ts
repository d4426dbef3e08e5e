/**
 * The extension's settings, read through `inspect()` so workspace trust can be applied per scope:
 * in Restricted Mode a workspace must not choose which model files (or, through the execution
 * provider, which native code) get loaded, so only the user's own values count for those.
 * Pure: the extension passes `workspace.getConfiguration('beitLens').inspect`.
 */
import * as path from 'node:path';
import type { ProviderPreference } from '../core/backend/onnxRuntime';
import type { HeadFusion } from '../core/rollout';

export const CONFIG_SECTION = 'beitLens';

export const PROVIDER_PREFERENCES = ['auto', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu'] as const satisfies readonly ProviderPreference[];
// Fails to compile if the core ever adds a provider this list (and package.json) does not offer.
type MissingProviders = Exclude<ProviderPreference, (typeof PROVIDER_PREFERENCES)[number]>;
const providersComplete: MissingProviders extends never ? true : never = true;
void providersComplete;

/**
 * Settings a workspace must not set while untrusted (also declared in package.json). The endpoint ones too:
 * an untrusted workspace must not choose the server the user's images are sent to, or the CA that vouches for it.
 */
export const RESTRICTED_SETTINGS = ['modelPath', 'executionProvider', 'endpoint', 'remoteModel', 'endpointCa'] as const;

/** The model's name on the endpoints when beitLens.remoteModel is not set: export-triton's default. */
export const DEFAULT_REMOTE_MODEL = 'beit';

export interface SettingInspection<T = unknown> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

export type Inspect = (key: string) => SettingInspection | undefined;

export type SettingScope = 'user' | 'workspace' | 'workspaceFolder' | 'default';

/**
 * Where a value came from, as the user would look for it. `inspect()` reports the user settings and, in
 * code-server or another remote, the remote machine's settings (the Settings UI's "Remote" tab, the server's
 * `Machine/settings.json`) both as `globalValue`: the API cannot tell them apart, so neither is claimed.
 */
export function describeScope(scope: SettingScope): string {
  if (scope === 'user') return 'user or remote machine settings';
  if (scope === 'workspaceFolder') return 'workspace folder settings';
  return `${scope} settings`;
}

export interface ModelSettings {
  /** Absolute folder, if one is configured and allowed. */
  modelPath?: { dir: string; scope: SettingScope };
  provider: ProviderPreference;
  /** KServe v2 servers to run the model on instead of in-process (beitLens.endpoint), if any are configured and allowed. */
  remote?: RemoteSettings;
  /** The endpoint settings are set but cannot be used: the model is not loaded (not in VS Code either), and this says why. */
  endpointProblem?: string;
  /** Why something configured was not used, for the log and the doctor report. */
  notes: string[];
}

export interface RemoteSettings {
  endpoints: string[];
  modelName: string;
  /** Absolute PEM file https endpoints are checked against. */
  caFile?: string;
}

export interface ViewSettings {
  topK: number;
  hoverEnabled: boolean;
  hoverMaxBytes: number;
  headFusion: HeadFusion;
  discardRatio: number;
  /** How many neighbours Find Similar Images shows. */
  similarTopK: number;
}

/** The value that applies, most specific scope first, skipping workspace scopes when untrusted. */
function effective(inspection: SettingInspection | undefined, trusted: boolean): { value: unknown; scope: SettingScope; ignored?: SettingScope } {
  if (!inspection) return { value: undefined, scope: 'default' };
  const workspaceScope: { value: unknown; scope: SettingScope } | undefined =
    inspection.workspaceFolderValue !== undefined ? { value: inspection.workspaceFolderValue, scope: 'workspaceFolder' } : inspection.workspaceValue !== undefined ? { value: inspection.workspaceValue, scope: 'workspace' } : undefined;
  if (workspaceScope && trusted) return workspaceScope;
  const ignored = workspaceScope?.scope;
  if (inspection.globalValue !== undefined) return { value: inspection.globalValue, scope: 'user', ignored };
  return { value: inspection.defaultValue, scope: 'default', ignored };
}

/** A leading `~` as the shell reads it: settings are written by hand. */
function expandHome(text: string, homeDir: string): string {
  return text === '~' || /^~[\\/]/.test(text) ? path.join(homeDir, text.slice(1)) : text;
}

export function readModelSettings(inspect: Inspect, context: { trusted: boolean; homeDir: string; workspaceFolders: readonly string[] }): ModelSettings {
  const notes: string[] = [];
  const modelPath = effective(inspect('modelPath'), context.trusted);
  if (modelPath.ignored) notes.push(`beitLens.modelPath from the ${modelPath.ignored} settings is ignored until the workspace is trusted`);
  let dir: string | undefined;
  if (typeof modelPath.value === 'string' && modelPath.value.trim()) {
    const text = expandHome(modelPath.value.trim(), context.homeDir);
    if (path.isAbsolute(text)) dir = path.normalize(text);
    // A relative path only makes sense from workspace settings (relative to the first folder).
    else if ((modelPath.scope === 'workspace' || modelPath.scope === 'workspaceFolder') && context.workspaceFolders[0]) dir = path.resolve(context.workspaceFolders[0], text);
    else notes.push(`beitLens.modelPath "${text}" is not an absolute path and is ignored`);
  } else if (modelPath.value !== undefined && typeof modelPath.value !== 'string') {
    notes.push('beitLens.modelPath must be a string and is ignored');
  }

  const provider = effective(inspect('executionProvider'), context.trusted);
  if (provider.ignored) notes.push(`beitLens.executionProvider from the ${provider.ignored} settings is ignored until the workspace is trusted`);
  let preference: ProviderPreference = 'auto';
  if (typeof provider.value === 'string' && (PROVIDER_PREFERENCES as readonly string[]).includes(provider.value)) preference = provider.value as ProviderPreference;
  // Only the names above are accepted: nothing a setting says can make onnxruntime load a library path.
  else if (provider.value !== undefined) notes.push(`beitLens.executionProvider ${JSON.stringify(provider.value)} is not one of ${PROVIDER_PREFERENCES.join(', ')}; using auto`);

  const remote = readRemoteSettings(inspect, context, notes);
  return {
    modelPath: dir ? { dir, scope: modelPath.scope } : undefined,
    provider: preference,
    ...(remote && 'problem' in remote ? { endpointProblem: remote.problem } : remote ? { remote } : {}),
    notes,
  };
}

/**
 * beitLens.endpoint (a URL or a list), beitLens.remoteModel and beitLens.endpointCa; the token is in SecretStorage.
 * A value that cannot be used is an error, not a note: whoever set an endpoint expects the images to go there, and
 * quietly running the model in VS Code instead would hide the mistake.
 */
function readRemoteSettings(inspect: Inspect, context: { trusted: boolean; homeDir: string }, notes: string[]): RemoteSettings | { problem: string } | undefined {
  const setting = (key: (typeof RESTRICTED_SETTINGS)[number]) => {
    const value = effective(inspect(key), context.trusted);
    if (value.ignored) notes.push(`beitLens.${key} from the ${value.ignored} settings is ignored until the workspace is trusted`);
    return value.value;
  };
  const raw = setting('endpoint');
  if (raw === undefined || raw === null || (typeof raw === 'string' && !raw.trim()) || (Array.isArray(raw) && raw.length === 0)) return undefined;
  if (typeof raw !== 'string' && !Array.isArray(raw)) return { problem: `beitLens.endpoint must be a URL or a list of URLs, not ${JSON.stringify(raw)}` };
  const endpoints: string[] = [];
  for (const entry of typeof raw === 'string' ? [raw] : raw) {
    const url = typeof entry === 'string' ? parseUrl(entry.trim()) : undefined;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return { problem: `beitLens.endpoint ${JSON.stringify(entry)} is not an http or https URL (e.g. http://gpu-box:8000)` };
    if (url.username || url.password) return { problem: `beitLens.endpoint ${url.host} has a user name or password in it: store the token with "BEiT Lens: Set Endpoint Token" instead` };
    const base = url.href.replace(/\/+$/, '');
    if (endpoints.includes(base)) return { problem: `beitLens.endpoint lists ${base} twice` };
    endpoints.push(base);
  }
  const name = setting('remoteModel');
  if (name !== undefined && (typeof name !== 'string' || !name.trim())) return { problem: `beitLens.remoteModel must be the model's name on the server, not ${JSON.stringify(name)}` };
  const ca = setting('endpointCa');
  let caFile: string | undefined;
  if (typeof ca === 'string' && ca.trim()) {
    const text = expandHome(ca.trim(), context.homeDir);
    if (!path.isAbsolute(text)) return { problem: `beitLens.endpointCa "${text}" is not an absolute path` };
    caFile = path.normalize(text);
  } else if (ca !== undefined && typeof ca !== 'string') {
    return { problem: `beitLens.endpointCa must be the path of a PEM file, not ${JSON.stringify(ca)}` };
  }
  return { endpoints, modelName: typeof name === 'string' ? name.trim() : DEFAULT_REMOTE_MODEL, ...(caFile ? { caFile } : {}) };
}

/** URL.parse is newer than the Node 20.9 the extension supports. */
function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

export function readViewSettings(get: (key: string) => unknown): ViewSettings {
  const number = (key: string, fallback: number, min: number, max: number) => {
    const v = get(key);
    return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
  };
  const fusion = get('rollout.headFusion');
  return {
    topK: Math.round(number('topK', 5, 1, 100)),
    hoverEnabled: get('hover.enabled') !== false,
    hoverMaxBytes: number('hover.maxFileSizeMB', 20, 0, 1024) * 1024 * 1024,
    headFusion: fusion === 'max' || fusion === 'min' ? fusion : 'mean',
    // The rollout needs r < 1 (discarding every entry leaves nothing to propagate).
    discardRatio: number('rollout.discardRatio', 0.9, 0, 0.99),
    similarTopK: Math.round(number('similar.topK', 24, 1, 1000)),
  };
}
