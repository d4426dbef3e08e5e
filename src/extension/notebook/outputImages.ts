/**
 * The images a notebook cell shows in its outputs, read from the output items' bytes (no file is
 * involved). Without vscode: it sees cells through the few fields it reads, so it is tested on
 * plain objects.
 *
 * One output is one image: Jupyter stores alternative representations of the same picture
 * (image/png next to text/plain, sometimes also image/jpeg) in one output, so the first raster type
 * in OUTPUT_IMAGE_MIMES order is taken and the others are the same image again. A cell with
 * several images (a loop of display() calls, several plt.show()) has several outputs.
 */

/** Raster types the decoder reads; the order is the preference among representations of one output. */
export const OUTPUT_IMAGE_MIMES: readonly string[] = ['image/png', 'image/jpeg', 'image/gif'];

export const SVG_MIME = 'image/svg+xml';

export const SVG_REFUSED = 'SVG output: vector images are never rasterised (as for SVG files)';

export interface OutputItemLike {
  readonly mime: string;
  readonly data: Uint8Array;
}

export interface CellLike {
  /** 0-based position in the notebook. */
  readonly index: number;
  readonly outputs: readonly { readonly items: readonly OutputItemLike[] }[];
}

export interface OutputImage {
  /** 1-based among the cell's images, as shown to the user. */
  ordinal: number;
  /** 0-based index of the output in the cell. */
  outputIndex: number;
  mime: string;
  /** The output item's bytes (not copied: copy before keeping them past the call). */
  bytes: Uint8Array;
}

export interface RefusedOutput {
  outputIndex: number;
  mime: string;
  reason: string;
}

export interface CellOutputImages {
  images: OutputImage[];
  /** Image outputs that are not classified, and why (SVG only, for now). */
  refused: RefusedOutput[];
}

export function cellOutputImages(cell: CellLike): CellOutputImages {
  const images: OutputImage[] = [];
  const refused: RefusedOutput[] = [];
  cell.outputs.forEach((output, outputIndex) => {
    const raster = OUTPUT_IMAGE_MIMES.map((mime) => output.items.find((item) => item.mime === mime)).find((item) => item !== undefined);
    if (raster) {
      images.push({ ordinal: images.length + 1, outputIndex, mime: raster.mime, bytes: raster.data });
      return;
    }
    const svg = output.items.find((item) => item.mime === SVG_MIME);
    if (svg) refused.push({ outputIndex, mime: svg.mime, reason: SVG_REFUSED });
  });
  return { images, refused };
}

/** "plots.ipynb · cell 3", with the cell numbered from 1 as the notebook editor shows it. */
export function cellName(notebookName: string, cellIndex: number): string {
  return `${notebookName} · cell ${cellIndex + 1}`;
}

/** "plots.ipynb · cell 3 · image 2 (image/png)"; the image number only when the cell has several. */
export function outputImageName(notebookName: string, cellIndex: number, image: Pick<OutputImage, 'ordinal'>, imageCount: number): string {
  return imageCount > 1 ? `${cellName(notebookName, cellIndex)} · image ${image.ordinal}` : cellName(notebookName, cellIndex);
}

/** The message when a cell has nothing to classify: names the cell and what it does have. */
export function noImagesMessage(name: string, found: CellOutputImages): string {
  if (found.refused.length > 0) return `${name} has no PNG, JPEG or GIF output to classify: ${found.refused.map((r) => `output ${r.outputIndex + 1} is ${r.reason}`).join('; ')}.`;
  return `${name} has no PNG, JPEG or GIF output to classify (run the cell, or pick a cell that shows an image).`;
}
