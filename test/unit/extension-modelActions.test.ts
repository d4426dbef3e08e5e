/**
 * The ways to a model that notifications offer (src/extension/model/modelActions.ts): the first "no model"
 * prompt offers the offline toast's actions too (issue #17: Convert a Hugging Face Folder… was missing), every
 * action's command is one the extension contributes, and the chosen button runs its command.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Command } from '../../src/extension/commandIds';
import { CONVERT_ACTION, noModelActions, OFFLINE_MODEL_ACTIONS, offerModelActions, SELECT_ACTION } from '../../src/extension/model/modelActions';

const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { contributes: { commands: Array<{ command: string; title: string }> } };

describe('model actions', () => {
  it('the no-model prompt offers Download, then every offline way, with the offline toast’s titles', () => {
    const first = noModelActions('Download (~350 MB)');
    assert.deepEqual(first.map((a) => a.command), [Command.downloadModel, Command.convertModel, Command.selectModel]);
    assert.equal(first[0].title, 'Download (~350 MB)');
    assert.deepEqual(first.slice(1), [...OFFLINE_MODEL_ACTIONS]);
    assert.deepEqual(OFFLINE_MODEL_ACTIONS, [CONVERT_ACTION, SELECT_ACTION]);
    assert.equal(CONVERT_ACTION.title, 'Convert a Hugging Face Folder…');
    assert.deepEqual(noModelActions().map((a) => a.title), ['Download Model', 'Convert a Hugging Face Folder…', 'Select Model Folder…']);
  });

  it('names only commands the extension contributes, titled as in the command palette', () => {
    const contributed = new Map(manifest.contributes.commands.map((c) => [c.command, c.title]));
    for (const action of noModelActions()) {
      assert.ok(contributed.has(action.command), `${action.command} is not contributed`);
      // The button reads like the command's palette title (minus the "BEiT Lens: " category).
      assert.equal(contributed.get(action.command)!.replace(/^BEiT Lens: /, ''), action.title);
    }
  });

  it('shows the message with one button per action and runs the chosen one', async () => {
    const shown: Array<{ message: string; items: string[] }> = [];
    const ran: string[] = [];
    const pick = (title: string | undefined) => async (message: string, ...items: string[]) => {
      shown.push({ message, items });
      return title;
    };
    assert.equal(await offerModelActions(pick('Convert a Hugging Face Folder…'), 'no model', noModelActions(), (c) => ran.push(c)), Command.convertModel as string);
    assert.deepEqual(shown[0], { message: 'no model', items: ['Download Model', 'Convert a Hugging Face Folder…', 'Select Model Folder…'] });
    assert.deepEqual(ran, [Command.convertModel as string]);
    // Dismissed: nothing runs.
    assert.equal(await offerModelActions(pick(undefined), 'no model', noModelActions(), (c) => ran.push(c)), undefined);
    assert.deepEqual(ran, [Command.convertModel as string]);
  });
});
