/** The model state in words: markdown for the status bar tooltip, plain for the doctor report's source. */
import assert from 'node:assert/strict';
import { describe as suite, it } from 'node:test';
import { describe } from '../../src/extension/model/describeModelState';

const ready = { kind: 'ready' as const, model: { modelDir: '/models/beit-tiny_v1 (copy)', modelId: 'beit-tiny@0123', provider: 'cpu', providerAttempts: [], canExplain: true, numLabels: 10 } };

suite('describeModelState', () => {
  it('escapes markdown in the tooltip so a path cannot format or link', () => {
    const { text, tooltip, error } = describe(ready);
    assert.equal(error, false);
    assert.match(text, /BEiT: CPU/i);
    assert.equal(tooltip, '**beit\\-tiny@0123** ready on CPU\n\n/models/beit\\-tiny\\_v1 \\(copy\\)');
  });

  it('writes paths and messages as they are for the doctor report', () => {
    assert.equal(describe(ready, 'plain').tooltip, 'beit-tiny@0123 ready on CPU\n\n/models/beit-tiny_v1 (copy)');
    const failed = describe({ kind: 'failed', message: 'bad *file*\nsecond line' }, 'plain');
    assert.equal(failed.error, true);
    assert.equal(failed.tooltip, 'The model could not be loaded: bad *file* second line');
    assert.equal(describe({ kind: 'noModel', message: 'x_y' }, 'plain').tooltip, 'No model: x_y. Run "BEiT Lens: Download Model", "BEiT Lens: Convert a Hugging Face Folder…" or "BEiT Lens: Select Model Folder…".');
  });
});
