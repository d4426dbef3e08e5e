/**
 * The gallery's DOM-free parts: the grid layout (columns, offsets, the cells a scroll position shows, at any
 * number of rows), the thumbnail side a cell needs, and the stored size and layout read back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { THUMBNAIL_SIDES, thumbnailSideFor } from '../../src/shared/thumbnailSides';
import { CAPTION_HEIGHT, GALLERY_GAP, GridLayout } from '../../src/webview/dataset/gridLayout';
import { GALLERY_SIZE, restoreGallerySize, restoreLayout } from '../../src/webview/dataset/messages';

describe('gallery grid layout', () => {
  it('fits as many columns as the width allows, row after row', () => {
    const grid = new GridLayout(128, 1000);
    grid.count = 100_000;
    assert.equal(grid.columns, Math.floor((1000 - GALLERY_GAP) / (128 + GALLERY_GAP)));
    assert.equal(grid.columns, 7);
    const pitch = 128 + CAPTION_HEIGHT + GALLERY_GAP;
    assert.equal(grid.rowPitch, pitch);
    assert.equal(grid.totalHeight, Math.ceil(100_000 / 7) * pitch + GALLERY_GAP);
    assert.deepEqual(grid.offsetOf(0), { left: GALLERY_GAP, top: GALLERY_GAP });
    assert.deepEqual(grid.offsetOf(8), { left: GALLERY_GAP + 136, top: GALLERY_GAP + pitch });
    // A viewport too narrow for one cell still shows one column.
    assert.equal(new GridLayout(320, 100).columns, 1);
  });

  it('finds the cells on screen anywhere in 100,000 rows, plus overscan rows, clamped to the grid', () => {
    const grid = new GridLayout(128, 1000);
    grid.count = 100_000;
    const top = 5000 * grid.rowPitch + GALLERY_GAP;
    const { first, last } = grid.visibleRange(top, 600, 1);
    assert.equal(first, 4999 * 7);
    const rowsOnScreen = Math.floor((top + 599 - GALLERY_GAP) / grid.rowPitch) - 5000 + 1;
    assert.equal(last, (5000 + rowsOnScreen + 1) * 7 - 1);
    assert.ok(last - first + 1 <= (Math.ceil(600 / grid.rowPitch) + 3) * 7);
    assert.equal(grid.positionAt(top), 5000 * 7);
    // The end: the last row is partial.
    const end = grid.visibleRange(grid.totalHeight - 600, 600, 1);
    assert.equal(end.last, 99_999);
    assert.deepEqual(new GridLayout(128, 1000).visibleRange(0, 600), { first: 0, last: -1 }, 'an empty grid shows nothing');
    assert.equal(new GridLayout(128, 1000).positionAt(100), -1);
  });
});

describe('gallery thumbnails and state', () => {
  it('asks for the smallest side that fills the cell on the screen, never more than the largest', () => {
    assert.equal(thumbnailSideFor(64), 96);
    assert.equal(thumbnailSideFor(96), 96);
    assert.equal(thumbnailSideFor(128), 192);
    assert.equal(thumbnailSideFor(128, 2), 320);
    assert.equal(thumbnailSideFor(320, 2), THUMBNAIL_SIDES[THUMBNAIL_SIDES.length - 1]);
    assert.equal(thumbnailSideFor(64, Number.NaN), 96, 'a missing devicePixelRatio counts as 1');
  });

  it('reads a stored size onto the slider and a stored layout, else the defaults', () => {
    assert.equal(restoreGallerySize(256), 256);
    assert.equal(restoreGallerySize(250), 256);
    assert.equal(restoreGallerySize(10_000), GALLERY_SIZE.max);
    assert.equal(restoreGallerySize(1), GALLERY_SIZE.min);
    assert.equal(restoreGallerySize('big'), GALLERY_SIZE.default);
    assert.equal(restoreLayout('gallery'), 'gallery');
    assert.equal(restoreLayout('grid'), 'table');
    assert.equal(restoreLayout(undefined), 'table');
  });
});
