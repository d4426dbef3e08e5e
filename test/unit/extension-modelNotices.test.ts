/**
 * Model-state notices (src/extension/model/modelNotices.ts, issue #17 "stale toasts"): a notice about the model's
 * state stays until the state changes and then closes itself, its actions are command links to contributed
 * commands, and the same notice is not stacked twice while it is on screen.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { ModelState } from '../../src/extension/inference/inferenceClient';
import { DOCTOR_ACTION, noModelActions, SELECT_ACTION } from '../../src/extension/model/modelActions';
import { actionLinks, ModelNotices } from '../../src/extension/model/modelNotices';
import { Emitter } from '../../src/extension/util/emitter';

const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { contributes: { commands: Array<{ command: string }> } };

interface Shown {
  text: string;
  closed: boolean;
  /** The user's Cancel. */
  dismiss: () => void;
}

function fixture() {
  const states = new Emitter<ModelState>();
  const shown: Shown[] = [];
  const notices = new ModelNotices({ onDidChangeState: states.event }, (text, until) => {
    const entry: Shown = { text, closed: false, dismiss: () => undefined };
    shown.push(entry);
    void until.then(() => (entry.closed = true));
    return new Promise<void>((resolve) => {
      entry.dismiss = resolve;
      void until.then(() => resolve());
    });
  });
  return { states, shown, notices };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('model notices', () => {
  it('writes each action as a command link to a contributed command', () => {
    const links = actionLinks([SELECT_ACTION, DOCTOR_ACTION]);
    assert.equal(links, '[Select Model Folder…](command:beitLens.selectModel) · [Run Doctor](command:beitLens.doctor)');
    const contributed = new Set(manifest.contributes.commands.map((c) => c.command));
    for (const action of [...noModelActions(), DOCTOR_ACTION]) assert.ok(contributed.has(action.command), `${action.command} is not contributed`);
  });

  it('stays until the model state changes, then closes with that state', async () => {
    const { states, shown, notices } = fixture();
    const closed = notices.show('BEiT Lens: classifying a.png: no model yet.', noModelActions());
    assert.equal(shown.length, 1);
    assert.equal(shown[0].text, `BEiT Lens: classifying a.png: no model yet. ${actionLinks(noModelActions())}`);
    await tick();
    assert.equal(shown[0].closed, false, 'closed before any state change');
    const loading: ModelState = { kind: 'loading', args: { source: { kind: 'folder', dir: '/m' }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } }, afterCrash: false };
    states.fire(loading);
    assert.deepEqual(await closed, loading);
    await tick();
    assert.equal(shown[0].closed, true);
  });

  it('does not stack the same notice while it is shown, and shows it again after it closed', async () => {
    const { states, shown, notices } = fixture();
    void notices.show('BEiT Lens could not load the model in beitLens.modelPath: gone', [SELECT_ACTION]);
    assert.equal(await notices.show('BEiT Lens could not load the model in beitLens.modelPath: gone', [SELECT_ACTION]), undefined);
    void notices.show('BEiT Lens: scanning /d: no model yet.', noModelActions());
    assert.equal(shown.length, 2, 'a different notice is shown beside the first');
    states.fire({ kind: 'failed', message: 'gone' });
    await tick();
    assert.deepEqual(shown.map((s) => s.closed), [true, true]);
    void notices.show('BEiT Lens could not load the model in beitLens.modelPath: gone', [SELECT_ACTION]);
    assert.equal(shown.length, 3, 'the failure again, after the state changed, is a new notice');
    assert.equal(shown[2].closed, false);
  });

  it('dismissed by the user, it is gone: the same notice shows again while the state is unchanged', async () => {
    const { shown, notices } = fixture();
    const first = notices.show('BEiT Lens: classifying a.png: no model yet.', noModelActions());
    shown[0].dismiss();
    assert.equal(await first, undefined);
    void notices.show('BEiT Lens: classifying a.png: no model yet.', noModelActions());
    assert.equal(shown.length, 2);
  });

  it('closes every open notice on dispose, and later state changes touch nothing', async () => {
    const { states, shown, notices } = fixture();
    const closed = notices.show('BEiT Lens needs the BEiT model', noModelActions());
    notices.dispose();
    assert.equal(await closed, undefined);
    await tick();
    assert.equal(shown[0].closed, true);
    states.fire({ kind: 'noModel', message: 'none' });
  });
});
