/**
 * Workspace trust and settings: in Restricted Mode the workspace cannot choose the model folder or
 * the execution provider, and no setting value can name a library for onnxruntime to load.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { EXECUTION_PROVIDERS, ModelSession } from '../../src/core/backend/onnxRuntime';
import { BeitLensError } from '../../src/core/errors';
import { describeScope, Inspect, PROVIDER_PREFERENCES, readModelSettings, readViewSettings, RESTRICTED_SETTINGS, SettingInspection } from '../../src/extension/settings';
import { convertedTinyModel } from '../helpers/fixtures';

const home = '/home/me';
const folders = ['/work/project'];

function inspectFrom(values: Record<string, SettingInspection>): Inspect {
  return (key) => values[key];
}

describe('readModelSettings', () => {
  it('uses the workspace value when the workspace is trusted', () => {
    const s = readModelSettings(inspectFrom({ modelPath: { defaultValue: '', globalValue: '/models/user', workspaceValue: '/models/ws' }, executionProvider: { defaultValue: 'auto', workspaceValue: 'cpu' } }), { trusted: true, homeDir: home, workspaceFolders: folders });
    assert.deepEqual(s.modelPath, { dir: '/models/ws', scope: 'workspace' });
    assert.equal(s.provider, 'cpu');
    assert.deepEqual(s.notes, []);
  });

  it('ignores workspace and folder values in Restricted Mode and says so', () => {
    const s = readModelSettings(
      inspectFrom({
        modelPath: { defaultValue: '', globalValue: '/models/user', workspaceValue: '/evil/model', workspaceFolderValue: '/evil/folder-model' },
        executionProvider: { defaultValue: 'auto', workspaceFolderValue: 'cuda' },
      }),
      { trusted: false, homeDir: home, workspaceFolders: folders },
    );
    assert.deepEqual(s.modelPath, { dir: '/models/user', scope: 'user' });
    assert.equal(s.provider, 'auto');
    assert.equal(s.notes.length, 2);
    assert.match(s.notes[0], /modelPath from the workspaceFolder settings is ignored until the workspace is trusted/);
    assert.match(s.notes[1], /executionProvider from the workspaceFolder settings is ignored/);
  });

  it('falls back to the download cache when only an untrusted workspace names a model', () => {
    const s = readModelSettings(inspectFrom({ modelPath: { defaultValue: '', workspaceValue: '/evil/model' } }), { trusted: false, homeDir: home, workspaceFolders: folders });
    assert.equal(s.modelPath, undefined);
  });

  it('expands ~, resolves relative workspace paths, and rejects relative user paths', () => {
    assert.deepEqual(readModelSettings(inspectFrom({ modelPath: { globalValue: '~/models/beit' } }), { trusted: true, homeDir: home, workspaceFolders: folders }).modelPath, { dir: '/home/me/models/beit', scope: 'user' });
    assert.deepEqual(readModelSettings(inspectFrom({ modelPath: { workspaceValue: 'models/beit' } }), { trusted: true, homeDir: home, workspaceFolders: folders }).modelPath, { dir: '/work/project/models/beit', scope: 'workspace' });
    const relativeUser = readModelSettings(inspectFrom({ modelPath: { globalValue: 'models/beit' } }), { trusted: true, homeDir: home, workspaceFolders: folders });
    assert.equal(relativeUser.modelPath, undefined);
    assert.match(relativeUser.notes[0], /not an absolute path/);
  });

  it('accepts only the provider names, never a library path', () => {
    for (const evil of ['/tmp/libevil.so', 'C:\\evil.dll', 'cuda;rm -rf /', '../libonnxruntime_providers_cuda.so', { name: 'cuda', path: '/tmp/x.so' }, 42]) {
      const s = readModelSettings(inspectFrom({ executionProvider: { globalValue: evil } }), { trusted: true, homeDir: home, workspaceFolders: folders });
      assert.equal(s.provider, 'auto', JSON.stringify(evil));
      assert.match(s.notes[0], /is not one of auto, cuda, dml, coreml, webgpu, cpu/);
    }
    for (const name of PROVIDER_PREFERENCES) assert.equal(readModelSettings(inspectFrom({ executionProvider: { globalValue: name } }), { trusted: true, homeDir: home, workspaceFolders: folders }).provider, name);
  });

  it('matches what package.json declares', () => {
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'));
    assert.deepEqual(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations, RESTRICTED_SETTINGS.map((k) => `beitLens.${k}`));
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.deepEqual(pkg.contributes.configuration.properties['beitLens.executionProvider'].enum, [...PROVIDER_PREFERENCES]);
    for (const key of ['modelPath', 'executionProvider', 'topK', 'hover.enabled', 'hover.maxFileSizeMB', 'rollout.headFusion', 'rollout.discardRatio']) {
      assert.ok(pkg.contributes.configuration.properties[`beitLens.${key}`], key);
    }
  });
});

describe('readViewSettings', () => {
  it('uses defaults and clamps out-of-range values', () => {
    assert.deepEqual(readViewSettings(() => undefined), { topK: 5, hoverEnabled: true, hoverMaxBytes: 20 * 1024 * 1024, headFusion: 'mean', discardRatio: 0.9, similarTopK: 24 });
    const odd: Record<string, unknown> = { topK: 1000, 'hover.enabled': false, 'hover.maxFileSizeMB': -3, 'rollout.headFusion': 'median', 'rollout.discardRatio': 1, 'similar.topK': 5000 };
    assert.deepEqual(readViewSettings((k) => odd[k]), { topK: 100, hoverEnabled: false, hoverMaxBytes: 0, headFusion: 'mean', discardRatio: 0.99, similarTopK: 1000 });
  });
});

describe('execution provider options reaching onnxruntime', () => {
  /** Captures the session options of every onnxruntime session created while `run` runs. */
  async function capturingSessionOptions(run: () => Promise<unknown>): Promise<ort.InferenceSession.SessionOptions[]> {
    const captured: ort.InferenceSession.SessionOptions[] = [];
    const create = ort.InferenceSession.create;
    (ort.InferenceSession as { create: unknown }).create = (model: never, options?: ort.InferenceSession.SessionOptions) => {
      captured.push(structuredClone(options ?? {}));
      return create.call(ort.InferenceSession, model, options);
    };
    try {
      await run();
    } finally {
      (ort.InferenceSession as { create: unknown }).create = create;
    }
    return captured;
  }

  it('are one of the fixed configurations per provider name, with nothing that could name a library', async () => {
    const model = `${await convertedTinyModel()}/model.logits.onnx`;
    const allowedKeys = new Set(['name', 'deviceId', 'coreMlFlags', 'preferredLayout']);
    for (const preference of PROVIDER_PREFERENCES) {
      const options = await capturingSessionOptions(async () => (await ModelSession.create(model, { provider: preference })).release());
      assert.ok(options.length >= 1, preference);
      for (const o of options) {
        assert.equal(o.executionProviders?.length, 1);
        const ep = o.executionProviders![0];
        const name = typeof ep === 'string' ? ep : ep.name;
        assert.ok((EXECUTION_PROVIDERS as readonly string[]).includes(name), `${preference}: ${name}`);
        if (typeof ep !== 'string') for (const key of Object.keys(ep)) assert.ok(allowedKeys.has(key), `${preference}: option ${key}`);
        // The one path allowed: where a graph rewritten in memory (WebGPU) finds its external weights, which is
        // the model's own folder. Only that key, only that value.
        const extra = o.extra as { session?: Record<string, unknown> } | undefined;
        if (extra) {
          assert.deepEqual(Object.keys(extra), ['session']);
          assert.deepEqual(extra.session, { model_external_initializers_file_folder_path: path.dirname(model) }, `${preference}: ${JSON.stringify(extra)}`);
        }
        // No other string in the options may look like a path (optimizedModelFilePath is a write target we choose, not set here).
        assert.doesNotMatch(JSON.stringify({ ...o, extra: undefined }), /[\\/]|\.(so|dll|dylib)\b/, `${preference}: ${JSON.stringify(o)}`);
      }
    }
  });

  it('refuses any other provider value before onnxruntime sees it', async () => {
    const model = `${await convertedTinyModel()}/model.logits.onnx`;
    for (const evil of ['/tmp/libevil.so', 'C:\\evil.dll', 'cuda;rm -rf /', '../libonnxruntime_providers_cuda.so', 'CUDA', '']) {
      const options = await capturingSessionOptions(() =>
        assert.rejects(ModelSession.create(model, { provider: evil as never }), (err: unknown) => err instanceof BeitLensError && err.code === 'CONFIG_INVALID' && /unknown execution provider/.test(err.message)),
      );
      assert.deepEqual(options, [], `${evil} reached onnxruntime`);
    }
  });
});

describe('where a setting came from, in words', () => {
  it('does not claim "user" for a value the API reports alike for the user and the remote machine settings', () => {
    assert.equal(describeScope('user'), 'user or remote machine settings');
    assert.equal(describeScope('workspace'), 'workspace settings');
    assert.equal(describeScope('workspaceFolder'), 'workspace folder settings');
    assert.equal(describeScope('default'), 'default settings');
  });
});
