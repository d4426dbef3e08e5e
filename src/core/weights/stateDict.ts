import { stat } from 'node:fs/promises';
import path from 'node:path';
import { BeitLensError } from '../errors';
import { readPytorchCheckpoint } from './pytorchCheckpoint';
import { readSafetensors } from './safetensors';

/** One checkpoint tensor, contiguous and row-major. Every float type is widened or narrowed to float32, every integer type to int64. */
export type NamedTensor = { dtype: 'float32' | 'int64'; shape: number[]; data: Float32Array | BigInt64Array };
/** Tensors keyed by their Hugging Face names, exactly as the checkpoint spells them. */
export type StateDict = Map<string, NamedTensor>;

/** Loads the weights of a Hugging Face model folder, preferring safetensors, which cannot carry code. */
export async function loadStateDict(dir: string): Promise<{ stateDict: StateDict; source: string }> {
  const safetensorsFile = path.join(dir, 'model.safetensors');
  if (await exists(safetensorsFile)) return { stateDict: await readSafetensors(safetensorsFile), source: safetensorsFile };
  const pytorchFile = path.join(dir, 'pytorch_model.bin');
  if (await exists(pytorchFile)) return { stateDict: await readPytorchCheckpoint(pytorchFile), source: pytorchFile };
  throw new BeitLensError('FILE_NOT_FOUND', 'folder has neither model.safetensors nor pytorch_model.bin', dir);
}

/** The float32 data of tensor `name`, checked against `expectedShape` when given; `file` names the checkpoint in errors. */
export function getFloat(stateDict: StateDict, name: string, expectedShape?: readonly number[], file?: string): Float32Array {
  const tensor = stateDict.get(name);
  if (!tensor) throw new BeitLensError('WEIGHTS_INVALID', `missing tensor ${name}`, file);
  if (!(tensor.data instanceof Float32Array)) {
    throw new BeitLensError('WEIGHTS_INVALID', `tensor ${name} has dtype ${tensor.dtype}, expected float32`, file);
  }
  if (expectedShape && !sameShape(tensor.shape, expectedShape)) {
    throw new BeitLensError(
      'WEIGHTS_INVALID',
      `tensor ${name} has shape [${tensor.shape.join(',')}], expected [${expectedShape.join(',')}]`,
      file,
    );
  }
  return tensor.data;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

/** Only a missing path counts as absent, so that e.g. a permission problem surfaces from the reader instead of being skipped. */
async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw new BeitLensError('FILE_UNREADABLE', `cannot access ${path.basename(file)} (${code ?? 'unknown error'})`, file);
  }
}
