import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { contentInSeveralClasses, indexClasses, MAX_CLASSES, readImageFolder, readLabelsFile } from '../../src/core/probe/labelledDataset';

async function withFolder(layout: Record<string, string[]>, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'labelled-'));
  try {
    for (const [folder, files] of Object.entries(layout)) {
      await mkdir(path.join(dir, folder), { recursive: true });
      for (const f of files) await writeFile(path.join(dir, folder, f), 'x');
    }
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('ImageFolder: classes are the immediate subfolders, names verbatim and sorted by code point', async () => {
  await withFolder({ 'red, "warm"': ['a.png', 'b.png'], 'blå hav': ['c.jpg', 'd.jpg'], 'a b': ['e.png'] }, async (dir) => {
    const ds = await readImageFolder(dir);
    assert.deepEqual(ds.classes, ['a b', 'blå hav', 'red, "warm"']);
    assert.equal(ds.images.length, 5);
    const of = (name: string) => ds.images.find((i) => path.basename(i.image) === name)!.label;
    assert.equal(ds.classes[of('a.png')], 'red, "warm"');
    assert.equal(ds.classes[of('c.jpg')], 'blå hav');
    assert.deepEqual(ds.singletonClasses, [0]);
    assert.ok(ds.warnings.some((w) => w.includes('"a b"') && w.includes('fewer than 2')), ds.warnings.join('\n'));
  });
});

test('ImageFolder: one class only is refused, naming the folder', async () => {
  await withFolder({ cats: ['a.png', 'b.png'] }, async (dir) => {
    await assert.rejects(readImageFolder(dir), (err: Error) => err.message.includes(dir) && /only one class \("cats"\)/.test(err.message));
  });
});

test('ImageFolder: an empty class folder is refused, naming the class', async () => {
  await withFolder({ cats: ['a.png'], dogs: ['b.png'], 'empty one': [] }, async (dir) => {
    await assert.rejects(readImageFolder(dir), (err: Error) => err.message.includes('"empty one"') && err.message.includes('empty class folder'));
  });
});

test('ImageFolder: images directly in the root are left out with a warning', async () => {
  await withFolder({ cats: ['a.png', 'b.png'], dogs: ['c.png', 'd.png'], '.': ['loose.png'] }, async (dir) => {
    const ds = await readImageFolder(dir);
    assert.equal(ds.images.length, 4);
    assert.ok(ds.warnings.some((w) => w.includes('1 image(s) directly in the dataset folder')));
  });
});

test(`${MAX_CLASSES} classes are refused`, () => {
  const samples = Array.from({ length: MAX_CLASSES }, (_, i) => ({ image: `/d/${i}.png`, label: `c${i}` }));
  assert.throws(() => indexClasses(samples, 'labels.csv', []), /labels\.csv: 10000 classes: at most 9999/);
  assert.equal(indexClasses(samples.slice(0, MAX_CLASSES - 1), 'labels.csv', []).classes.length, MAX_CLASSES - 1);
});

test('labels CSV: header optional, CSV-special names kept verbatim, paths relative to the CSV, same path in two classes reported', async () => {
  await withFolder({ imgs: [] }, async (dir) => {
    const file = path.join(dir, 'labels.csv');
    await writeFile(file, 'path,label\nimgs/a.png,"comma, ""quoted"""\nimgs/b.png,plain\nimgs/a.png,plain\n');
    const ds = await readLabelsFile(file);
    assert.deepEqual(ds.classes, ['comma, "quoted"', 'plain']);
    assert.deepEqual(ds.images.map((i) => i.image), [path.join(dir, 'imgs/a.png'), path.join(dir, 'imgs/b.png'), path.join(dir, 'imgs/a.png')]);
    assert.deepEqual(ds.images.map((i) => i.label), [0, 1, 1]);
    assert.ok(ds.warnings.some((w) => w.includes('a.png') && w.includes('labelled as "comma, \\"quoted\\"" and "plain"')), ds.warnings.join('\n'));
  });
});

test('labels CSV: a bad row is an error naming the file and the row', async () => {
  await withFolder({ imgs: [] }, async (dir) => {
    const file = path.join(dir, 'labels.csv');
    await writeFile(file, 'a.png,x\nb.png,\n');
    await assert.rejects(readLabelsFile(file), (err: Error) => err.message.startsWith(file) && err.message.includes('row 2: the label of b.png is empty'));
    await assert.rejects(readLabelsFile(path.join(dir, 'missing.csv')), /missing\.csv: cannot read the labels file/);
  });
});

test('the same content in two classes is reported; in one class it is not', () => {
  const dups = contentInSeveralClasses([
    { image: 'a/1.png', label: 0, hash: 'h1' },
    { image: 'b/1.png', label: 1, hash: 'h1' },
    { image: 'a/2.png', label: 0, hash: 'h2' },
    { image: 'a/3.png', label: 0, hash: 'h2' },
  ]);
  assert.deepEqual(dups, [{ hash: 'h1', images: [{ image: 'a/1.png', label: 0 }, { image: 'b/1.png', label: 1 }] }]);
});
