import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { BeitLensError } from '../../src/core/errors';
import { describeLabelGaps, labelsFromId2Label } from '../../src/core/labels';
import { parseBeitConfig } from '../../src/core/modelConfig';
import { FIXTURE_DIR } from '../helpers/fixtures';

const fixtureConfig = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8'));

describe('labels', () => {
  it('gives logit i the i-th label in key order when keys have gaps (as the official 22k config does)', () => {
    const id2label: Record<string, string> = {};
    for (let k = 0; k < 21843; k++) if (k !== 9205 && k !== 15027) id2label[String(k)] = `synset ${k}`;
    const table = labelsFromId2Label(id2label);
    assert.equal(table.labels.length, 21841);
    assert.deepEqual(table.missingKeys, [9205, 15027]);
    assert.equal(table.labels[9204], 'synset 9204');
    assert.equal(table.labels[9205], 'synset 9206'); // id2label[9205] does not exist: HF's pipeline gets this wrong
    assert.equal(table.labels[15026], 'synset 15028');
    assert.equal(table.labels[21840], 'synset 21842');
    assert.match(describeLabelGaps(table, 'config.json') ?? '', /config\.json: id2label keys have gaps \(missing 9205, 15027\)/);
  });

  it('sorts keys numerically, not as strings, and reports no gaps for a dense table', () => {
    const table = labelsFromId2Label({ '10': 'k', '2': 'c', '0': 'a', '1': 'b', '3': 'd', '4': 'e', '5': 'f', '6': 'g', '7': 'h', '8': 'i', '9': 'j' });
    assert.deepEqual(table.labels, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k']);
    assert.equal(describeLabelGaps(table, 'x'), undefined);
  });

  it('keeps non-ASCII labels from the fixture', () => {
    const cfg = parseBeitConfig(fixtureConfig);
    assert.equal(cfg.labels.labels[3], 'crème brûlée, burnt cream');
    assert.equal(cfg.numLabels, 10);
    assert.equal(cfg.numTokens, 197);
    assert.equal(cfg.gridSize, 14);
  });
});

describe('config.json validation', () => {
  const bad = (patch: Record<string, unknown>, remove: string[] = []) => {
    const c = { ...fixtureConfig, ...patch };
    for (const k of remove) delete c[k];
    return c;
  };
  const cases: [string, unknown, RegExp][] = [
    ['no id2label', bad({}, ['id2label']), /config has no id2label/],
    ['absurd hidden size', bad({ hidden_size: 10_000_000 }), /hidden_size/],
    ['negative layers', bad({ num_hidden_layers: -1 }), /num_hidden_layers/],
    ['tanh gelu', bad({ hidden_act: 'gelu_new' }), /hidden_act gelu_new/],
    ['an unknown model_type', bad({ model_type: 'swin' }), /model_type "swin" is not supported/],
    ['heads do not divide hidden', bad({ num_attention_heads: 5 }), /not divisible/],
    ['non-integer label key', bad({ id2label: { a: 'x' } }), /id2label/],
    ['not an object', 42, /expected object/i],
  ];
  for (const [name, json, pattern] of cases) {
    it(`rejects ${name} with a one-line error naming the file`, () => {
      assert.throws(
        () => parseBeitConfig(json, '/m/config.json'),
        (err: unknown) => err instanceof BeitLensError && err.code === 'CONFIG_INVALID' && pattern.test(err.message) && err.message.startsWith('/m/config.json: ') && !err.message.includes('\n'),
      );
    });
  }
});
