/**
 * What the end-to-end suite works on, made fresh in a temporary folder for every run:
 *
 *   user-model/            the tiny fixture model, converted; the user-level beitLens.modelPath
 *   workspace/             the trusted workspace
 *     dataset/<class>/     fixture images in class-named folders
 *     broken/corrupt.jpg   a truncated JPEG
 *     train.py, NOTES.md, labels.csv   code, notes and a table that mention images
 *   untrusted/             a workspace opened in Restricted Mode
 *     .vscode/settings.json   beitLens.modelPath = models/workspace-model (relative, as a repository would ship it)
 *     models/workspace-model  a valid model with other labels ("random class N")
 *     photos/gray_256x256.png
 *
 * Expected predictions come from the CLI (`node dist/cli.js classify --json`), built from the same
 * sources as the VSIX under test.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'beit-tiny');
const CLI = path.join(ROOT, 'dist', 'cli.js');

export interface Prediction {
  index: number;
  label: string;
  score: number;
}

export interface LegendEntry {
  index: number;
  label: string;
  patches: number;
  share: number;
}

export interface FixtureWorkspace {
  root: string;
  userModel: string;
  userModelId: string;
  workspace: string;
  untrusted: string;
  workspaceModel: string;
  workspaceModelId: string;
  /** Workspace-relative path → absolute path of every image under dataset/. */
  dataset: Map<string, string>;
  corrupt: string;
  pythonFile: string;
  markdownFile: string;
  csvFile: string;
  /** Image named in each text file, workspace-relative. */
  pythonImage: string;
  markdownImage: string;
  csvImage: string;
  untrustedImage: string;
  /** A Python file in the untrusted workspace naming an image inside it and one outside it (absolute). */
  untrustedNotes: string;
  /** The absolute path of an image outside the untrusted workspace, named in `untrustedNotes`. */
  outsideImage: string;
  /**
   * notebooks/samples.ipynb: a code cell and a Markdown cell naming images relative to the
   * notebook's folder (`../dataset/…`, which the workspace folder does not resolve), and two code
   * cells with stored outputs, no kernel needed: a PNG (`notebookPngImage`'s bytes) and a JPEG
   * (`notebookJpegImage`'s). Paths are workspace-relative.
   */
  notebook: string;
  notebookCodeImage: string;
  notebookMarkdownImage: string;
  notebookPngImage: string;
  notebookJpegImage: string;
  /** The 10 labels of the tiny fixture model. */
  fixtureLabels: string[];
}

/** class folder → fixture images in it */
const DATASET: Record<string, string[]> = {
  harp_seal: ['gradient_640x480.jpg', 'tiny_17x9.png'],
  river_otter: ['alpha_300x200.png', 'gray_256x256.png'],
  origami_crane: ['exif_orientation6_320x240.jpg', 'gray16_200x150.png'],
};

async function cli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function modelId(dir: string): Promise<string> {
  return (JSON.parse(await readFile(path.join(dir, 'beit-lens.json'), 'utf8')) as { modelId: string }).modelId;
}

export async function makeFixtureWorkspace(root: string): Promise<FixtureWorkspace> {
  const userModel = path.join(root, 'user-model');
  await cli(['convert', '--from', FIXTURE, '--out', userModel]);

  const workspace = path.join(root, 'workspace');
  const dataset = new Map<string, string>();
  for (const [cls, images] of Object.entries(DATASET)) {
    await mkdir(path.join(workspace, 'dataset', cls), { recursive: true });
    for (const image of images) {
      const target = path.join(workspace, 'dataset', cls, image);
      await copyFile(path.join(FIXTURE, 'images', image), target);
      dataset.set(`dataset/${cls}/${image}`, target);
    }
  }
  // A JPEG cut off after 3 kB: the header parses, the pixels do not.
  const corrupt = path.join(workspace, 'broken', 'corrupt.jpg');
  await mkdir(path.dirname(corrupt), { recursive: true });
  await writeFile(corrupt, (await readFile(path.join(FIXTURE, 'images', 'gradient_640x480.jpg'))).subarray(0, 3000));

  const pythonImage = 'dataset/harp_seal/gradient_640x480.jpg';
  const markdownImage = 'dataset/river_otter/alpha_300x200.png';
  const csvImage = 'dataset/river_otter/gray_256x256.png';
  const pythonFile = path.join(workspace, 'train.py');
  await writeFile(
    pythonFile,
    ['"""Sanity check of the seal/otter/crane dataset."""', 'from PIL import Image', '', `SAMPLE = "${pythonImage}"`, 'image = Image.open(SAMPLE).convert("RGB")', 'print(image.size)', ''].join('\n'),
  );
  const markdownFile = path.join(workspace, 'NOTES.md');
  await writeFile(markdownFile, ['# Dataset notes', '', 'The otter class is thin; this one is barely an otter:', '', `![otter](${markdownImage})`, '', 'Seals look fine, e.g. [a seal](dataset/harp_seal/tiny_17x9.png).', ''].join('\n'));
  const csvFile = path.join(workspace, 'labels.csv');
  await writeFile(csvFile, ['file,label', `${csvImage},river_otter`, 'dataset/origami_crane/gray16_200x150.png,origami_crane', 'dataset/harp_seal/tiny_17x9.png,harp_seal', ''].join('\n'));

  const notebook = 'notebooks/samples.ipynb';
  const notebookCodeImage = 'dataset/harp_seal/gradient_640x480.jpg';
  const notebookMarkdownImage = 'dataset/river_otter/alpha_300x200.png';
  const notebookPngImage = 'dataset/river_otter/gray_256x256.png';
  const notebookJpegImage = 'dataset/origami_crane/exif_orientation6_320x240.jpg';
  await mkdir(path.join(workspace, 'notebooks'), { recursive: true });
  const source = (text: string) => text.split(/(?<=\n)/);
  const imageOutput = async (mime: string, relative: string) => ({
    output_type: 'display_data',
    data: { [mime]: (await readFile(path.join(workspace, relative))).toString('base64'), 'text/plain': ['<IPython.core.display.Image object>'] },
    metadata: {},
  });
  const ipynb = {
    cells: [
      { cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: source(`from PIL import Image\nseal = Image.open("../${notebookCodeImage}")\n`) },
      { cell_type: 'markdown', metadata: {}, source: source(`## Otters\n\n![otter](../${notebookMarkdownImage})\n`) },
      { cell_type: 'code', execution_count: 1, metadata: {}, outputs: [await imageOutput('image/png', notebookPngImage)], source: source('display(Image(filename="gray.png"))') },
      { cell_type: 'code', execution_count: 2, metadata: {}, outputs: [await imageOutput('image/jpeg', notebookJpegImage)], source: source('display(Image(filename="crane.jpg"))') },
    ],
    metadata: { kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' }, language_info: { name: 'python' } },
    nbformat: 4,
    nbformat_minor: 5,
  };
  await writeFile(path.join(workspace, notebook), `${JSON.stringify(ipynb, null, 1)}\n`);

  // The untrusted workspace brings its own model (a different, valid one) through workspace settings.
  const untrusted = path.join(root, 'untrusted');
  const randomHf = path.join(root, 'wsmodel');
  await cli(['make-random', '--config', 'tiny', '--seed', '7', '--out', randomHf]);
  const workspaceModel = path.join(untrusted, 'models', 'workspace-model');
  await cli(['convert', '--from', randomHf, '--out', workspaceModel]);
  await mkdir(path.join(untrusted, '.vscode'), { recursive: true });
  await writeFile(path.join(untrusted, '.vscode', 'settings.json'), `${JSON.stringify({ 'beitLens.modelPath': 'models/workspace-model' }, null, 2)}\n`);
  const untrustedImage = path.join(untrusted, 'photos', 'gray_256x256.png');
  await mkdir(path.dirname(untrustedImage), { recursive: true });
  await copyFile(path.join(FIXTURE, 'images', 'gray_256x256.png'), untrustedImage);
  const outsideImage = path.join(workspace, pythonImage);
  const untrustedNotes = path.join(untrusted, 'notes.py');
  await writeFile(untrustedNotes, ['INSIDE = "photos/gray_256x256.png"', `OUTSIDE = "${outsideImage}"`, ''].join('\n'));

  const config = JSON.parse(await readFile(path.join(FIXTURE, 'config.json'), 'utf8')) as { id2label: Record<string, string> };
  return {
    root,
    userModel,
    userModelId: await modelId(userModel),
    workspace,
    untrusted,
    workspaceModel,
    workspaceModelId: await modelId(workspaceModel),
    dataset,
    corrupt,
    pythonFile,
    markdownFile,
    csvFile,
    pythonImage,
    markdownImage,
    csvImage,
    untrustedImage,
    untrustedNotes,
    outsideImage,
    notebook,
    notebookCodeImage,
    notebookMarkdownImage,
    notebookPngImage,
    notebookJpegImage,
    fixtureLabels: Object.values(config.id2label),
  };
}

/** `beit-lens classify --json --top-k K --model DIR FILE...`: the predictions per file. */
export async function cliClassify(model: string, files: string[], topK = 5): Promise<Map<string, Prediction[]>> {
  const out = await cli(['classify', '--json', '--top-k', String(topK), '--model', model, ...files]);
  const results = new Map<string, Prediction[]>();
  for (const line of out.split('\n').filter(Boolean)) {
    const row = JSON.parse(line) as { image: string; top?: Prediction[]; error?: string };
    if (!row.top) throw new Error(`the CLI could not classify ${row.image}: ${row.error}`);
    results.set(path.resolve(row.image), row.top);
  }
  return results;
}

/** `beit-lens similar IMAGE --in DIR --top-k K --json --model DIR`: the neighbours, most similar first. */
export async function cliSimilar(model: string, image: string, dir: string, topK: number, cacheDir: string): Promise<Array<{ image: string; similarity: number }>> {
  const out = await cli(['similar', image, '--in', dir, '--top-k', String(topK), '--json', '--model', model, '--cache', cacheDir]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { image: string; similarity: number });
}

/** `beit-lens explain --json`: the top-K and the patch-prediction legend of one image. */
export async function cliExplain(model: string, file: string): Promise<{ top: Prediction[]; legend: LegendEntry[] }> {
  const out = JSON.parse(await cli(['explain', '--json', '--model', model, file])) as { top: Prediction[]; patches: { legend: LegendEntry[] } };
  return { top: out.top, legend: out.patches.legend };
}

/** How the extension writes a score (QuickPick descriptions and hovers): an independent copy, as the oracle. */
export function shownScore(score: number): string {
  const pct = score * 100;
  return `${pct >= 10 ? pct.toFixed(1) : pct.toFixed(2)}%`;
}
