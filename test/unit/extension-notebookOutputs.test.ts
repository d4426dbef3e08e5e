/**
 * Which images a notebook cell's outputs hold (outputImages.ts), on plain objects shaped like
 * vscode.NotebookCell: one image per output, the first raster representation, SVG refused, and the
 * names the commands show. The commands themselves run against the real worker in
 * extension-activation.test.ts and in code-server in test/e2e.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cellName, cellOutputImages, noImagesMessage, outputImageName, SVG_REFUSED } from '../../src/extension/notebook/outputImages';

const bytes = (text: string) => new TextEncoder().encode(text);
const cell = (outputs: { mime: string; data: Uint8Array }[][], index = 0) => ({ index, outputs: outputs.map((items) => ({ items })) });

describe('cellOutputImages', () => {
  it('takes one image per output, preferring PNG, then JPEG, then GIF, whatever the item order', () => {
    const png = bytes('png');
    const jpeg = bytes('jpeg');
    const gif = bytes('gif');
    const found = cellOutputImages(
      cell([
        [{ mime: 'text/plain', data: bytes('<Figure size 640x480 with 1 Axes>') }, { mime: 'image/jpeg', data: jpeg }, { mime: 'image/png', data: png }],
        [{ mime: 'application/vnd.jupyter.stdout', data: bytes('epoch 1') }],
        [{ mime: 'image/gif', data: gif }],
        [{ mime: 'image/jpeg', data: jpeg }],
      ]),
    );
    assert.deepEqual(found.refused, []);
    assert.deepEqual(
      found.images.map((i) => [i.ordinal, i.outputIndex, i.mime]),
      [
        [1, 0, 'image/png'],
        [2, 2, 'image/gif'],
        [3, 3, 'image/jpeg'],
      ],
    );
    // The item's own bytes (the commands copy them when they keep them).
    assert.equal(found.images[0].bytes, png);
  });

  it('refuses SVG-only outputs and ignores types it does not read', () => {
    const found = cellOutputImages(
      cell([
        [{ mime: 'image/svg+xml', data: bytes('<svg/>') }, { mime: 'text/plain', data: bytes('<Figure>') }],
        [{ mime: 'image/webp', data: bytes('RIFF') }],
        [{ mime: 'text/html', data: bytes('<img src="x.png">') }],
      ]),
    );
    assert.deepEqual(found.images, []);
    assert.deepEqual(found.refused, [{ outputIndex: 0, mime: 'image/svg+xml', reason: SVG_REFUSED }]);
    assert.equal(noImagesMessage('plots.ipynb · cell 4', found), `plots.ipynb · cell 4 has no PNG, JPEG or GIF output to classify: output 1 is ${SVG_REFUSED}.`);
  });

  it('an SVG next to a raster representation of the same figure is not refused: the raster is used', () => {
    const found = cellOutputImages(cell([[{ mime: 'image/svg+xml', data: bytes('<svg/>') }, { mime: 'image/png', data: bytes('png') }]]));
    assert.deepEqual([found.images.map((i) => i.mime), found.refused], [['image/png'], []]);
  });

  it('a cell without outputs has nothing and says how to get something', () => {
    const found = cellOutputImages(cell([]));
    assert.deepEqual(found, { images: [], refused: [] });
    assert.match(noImagesMessage('plots.ipynb · cell 1', found), /^plots\.ipynb · cell 1 has no PNG, JPEG or GIF output to classify \(run the cell/);
  });
});

describe('names', () => {
  it('numbers cells from 1, and images only when a cell has several', () => {
    assert.equal(cellName('plots.ipynb', 0), 'plots.ipynb · cell 1');
    assert.equal(outputImageName('plots.ipynb', 2, { ordinal: 1 }, 1), 'plots.ipynb · cell 3');
    assert.equal(outputImageName('plots.ipynb', 2, { ordinal: 2 }, 3), 'plots.ipynb · cell 3 · image 2');
  });
});
