/**
 * Every failure a user can cause (bad image, bad model file, bad config) surfaces as a BeitLensError:
 * one line naming the file and the problem, so the CLI can print it and exit non-zero, a scan can
 * record it as an error row, and the extension can show it without a stack trace.
 */
export type ErrorCode =
  | 'IMAGE_DECODE'
  | 'IMAGE_TOO_LARGE'
  | 'IMAGE_UNSUPPORTED'
  | 'FILE_NOT_FOUND'
  | 'FILE_UNREADABLE'
  | 'FILE_TOO_LARGE'
  | 'MODEL_INVALID'
  | 'CONFIG_INVALID'
  | 'WEIGHTS_INVALID'
  | 'DOWNLOAD_FAILED'
  | 'INTEGRITY'
  | 'NON_FINITE_OUTPUT'
  | 'NETWORK_TIMEOUT'
  /** A remote inference server refused, failed or could not be reached. */
  | 'REMOTE_FAILED'
  | 'CANCELLED'
  | 'INTERNAL';

export class BeitLensError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly file?: string,
  ) {
    // Messages quote third-party text (JSON.parse quotes the input, libvips and onnxruntime add detail lines);
    // folding it onto one line keeps the one-line-per-failure contract for the CLI, scans and the extension.
    const line = message.replace(/\s*[\r\n]+\s*/g, ' ');
    super(file ? `${file}: ${line}` : line);
    this.name = 'BeitLensError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
