/**
 * The part of vscode.LogOutputChannel the rest of the extension logs through, so modules that
 * unit tests load without VS Code can take a fake or a console logger instead.
 */
export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
