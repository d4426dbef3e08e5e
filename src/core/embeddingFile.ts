/**
 * Embeddings as files numpy and pandas read directly: a float32 `[N, D]` .npy (NPY format 1.0, the layout
 * `numpy.save` writes: little-endian '<f4', C order) and, beside it, the image of each row as a JSON array
 * (`F.paths.json`: JSON rather than one name a line, since a file name may itself hold a newline).
 * A writer this small is simpler to own than a dependency; numpy.lib.format documents the layout.
 */
import { writeAtomically } from './convert';
import { BeitLensError, errorMessage } from './errors';

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]);
/** numpy aligns the data to 64 bytes (format 1.0: magic, version, uint16 header length, header). */
const NPY_ALIGN = 64;
/** Format 1.0 stores the header length as uint16. */
const NPY_V1_MAX_HEADER = 0xffff;

/** `[rows, cols]` float32, row-major, as NPY 1.0 bytes. */
export function encodeNpyFloat32(data: Float32Array, rows: number, cols: number): Buffer {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || data.length !== rows * cols) {
    throw new BeitLensError('INTERNAL', `npy: ${data.length} values do not fill [${rows}, ${cols}]`);
  }
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  // Padded with spaces and ended with a newline so magic + length + header is a multiple of 64 bytes.
  const unpadded = NPY_MAGIC.length + 2 + dict.length + 1;
  const header = dict + ' '.repeat((NPY_ALIGN - (unpadded % NPY_ALIGN)) % NPY_ALIGN) + '\n';
  if (header.length > NPY_V1_MAX_HEADER) throw new BeitLensError('INTERNAL', 'npy: header too long for format 1.0');
  const out = Buffer.alloc(NPY_MAGIC.length + 2 + header.length + 4 * data.length);
  NPY_MAGIC.copy(out, 0);
  out.writeUInt16LE(header.length, NPY_MAGIC.length);
  out.write(header, NPY_MAGIC.length + 2, 'latin1');
  // Explicitly little-endian, whatever the machine's byte order.
  let offset = NPY_MAGIC.length + 2 + header.length;
  for (let i = 0; i < data.length; i++, offset += 4) out.writeFloatLE(data[i], offset);
  return out;
}

export interface EmbeddingRow {
  image: string;
  embedding: Float32Array;
}

/** The paths file written beside an .npy: `emb.npy` -> `emb.paths.json`. */
export function pathsFileFor(npyFile: string): string {
  return npyFile.replace(/\.npy$/i, '') + '.paths.json';
}

/** Refuses an --out that is not a .npy; callers check before the slow part, as well as on writing. */
export function checkNpyPath(npyFile: string): void {
  if (!/\.npy$/i.test(npyFile)) throw new BeitLensError('CONFIG_INVALID', '--out must name a .npy file (the image paths are written beside it, as .paths.json)', npyFile);
}

/**
 * Writes the rows as `[N, D]` float32 to `npyFile` (which must end in .npy) and their images, in row order, to
 * {@link pathsFileFor}. Each is written atomically (a temporary file, then a rename), so a reader never finds
 * one cut short.
 */
export async function writeEmbeddingsNpy(npyFile: string, rows: readonly EmbeddingRow[], dim: number): Promise<{ npy: string; paths: string; shape: [number, number] }> {
  checkNpyPath(npyFile);
  const data = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    if (r.embedding.length !== dim) throw new BeitLensError('INTERNAL', `embedding of ${r.image} has ${r.embedding.length} values, expected ${dim}`);
    data.set(r.embedding, i * dim);
  });
  const paths = pathsFileFor(npyFile);
  try {
    await writeAtomically(paths, Buffer.from(JSON.stringify(rows.map((r) => r.image)) + '\n'));
    await writeAtomically(npyFile, encodeNpyFloat32(data, rows.length, dim));
  } catch (err) {
    throw new BeitLensError('FILE_UNREADABLE', `cannot write the embeddings: ${errorMessage(err)}`, npyFile);
  }
  return { npy: npyFile, paths, shape: [rows.length, dim] };
}
