/** A disposable handle, structurally compatible with vscode.Disposable. */
export interface Disposable {
  dispose(): void;
}

/**
 * A minimal typed event, for modules that must not import vscode (they run in unit tests and
 * the worker); it matches the shape of vscode.Event so the extension can subscribe the same way.
 */
export class Emitter<T> {
  private readonly listeners = new Set<(value: T) => void>();

  readonly event = (listener: (value: T) => void): Disposable => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch {
        // One broken listener must not stop the others from hearing about a state change.
      }
    }
  }

  dispose(): void {
    this.listeners.clear();
  }
}
