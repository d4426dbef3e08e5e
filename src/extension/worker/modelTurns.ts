/**
 * Turns on the model inside the worker, first come first served. A dataset scan takes one turn per batch
 * and every other inference call takes one per call, so a hover or an explanation waits for at most one
 * scan batch, never for the whole scan, and two inferences never compete for the same CPU cores.
 */
export class ModelTurns {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
