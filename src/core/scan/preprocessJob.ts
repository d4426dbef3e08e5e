/**
 * What one preprocessing worker does with one file's bytes, kept apart from preprocessWorker.ts so the pool's
 * in-process mode (workers: 0) runs exactly the same code without starting a worker.
 */
import { BeitLensError, errorMessage, type ErrorCode } from '../errors';
import { preprocessImage, type PreprocessOptions } from '../preprocess';
import type { PreprocessorConfig } from '../preprocessorConfig';
import type { QualityMeasures } from '../quality/measures';

export interface PreprocessSetup {
  preprocessor: PreprocessorConfig;
  options: PreprocessOptions;
  /** Worker threads only: see PreprocessPoolOptions.niceness. */
  niceness?: number;
  /** Worker threads only: the size of the pool's decode budget, which the worker draws on through the pool. */
  budgetBytes?: number;
}

export type PreprocessOutcome = { ok: true; pixelValues: Float32Array; quality?: QualityMeasures } | { ok: false; code: ErrorCode; error: string };

/** Never throws: a bad image is an outcome, so one file cannot take its batch down with it. */
export async function preprocessBytes(bytes: Uint8Array, setup: PreprocessSetup): Promise<PreprocessOutcome> {
  try {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // The image is decoded here anyway: its quality measures come along (a pass or two over the pixels).
    const { pixelValues, quality } = await preprocessImage(buffer, setup.preprocessor, { ...setup.options, measureQuality: true });
    return { ok: true, pixelValues, ...(quality ? { quality } : {}) };
  } catch (err) {
    // Bytes carry no file name, so the message is the bare reason; the scanner pairs it with the path.
    if (err instanceof BeitLensError) return { ok: false, code: err.code, error: err.message };
    return { ok: false, code: 'IMAGE_DECODE', error: `cannot preprocess image: ${errorMessage(err)}` };
  }
}
