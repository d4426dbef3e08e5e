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

/** Settings a workspace must not set while untrusted (also declared in package.json). */
export const RESTRICTED_SETTINGS = ['modelPath', 'executionProvider'] as const;

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
  /** Why something configured was not used, for the log and the doctor report. */
  notes: string[];
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

export function readModelSettings(inspect: Inspect, context: { trusted: boolean; homeDir: string; workspaceFolders: readonly string[] }): ModelSettings {
  const notes: string[] = [];
  const modelPath = effective(inspect('modelPath'), context.trusted);
  if (modelPath.ignored) notes.push(`beitLens.modelPath from the ${modelPath.ignored} settings is ignored until the workspace is trusted`);
  let dir: string | undefined;
  if (typeof modelPath.value === 'string' && modelPath.value.trim()) {
    let text = modelPath.value.trim();
    if (text === '~' || /^~[\\/]/.test(text)) text = path.join(context.homeDir, text.slice(1));
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

  return { modelPath: dir ? { dir, scope: modelPath.scope } : undefined, provider: preference, notes };
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
