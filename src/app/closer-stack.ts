/** Stops one started resource; `graceMs` is how long in-flight work may take to finish. */
export type Closer = (graceMs: number) => Promise<void> | void;

/**
 * Every resource start-up has started, newest last, so that shutdown and a
 * failed start-up both stop them in reverse order: a failure at step N
 * unwinds steps 1..N-1 and leaves no listener, watcher, timer or child behind.
 */
export class CloserStack {
  readonly #closers: { name: string; close: Closer }[] = [];
  #closing: Promise<void> | null = null;

  /** Adds a resource to stop; returns `value` so start-up reads as one line per step. */
  push<T>(name: string, value: T, close: Closer): T {
    this.#closers.push({ name, close });
    return value;
  }

  /**
   * Stops everything, newest first. A closer that fails is reported to
   * `onError` and the rest still run. Idempotent: later calls get the same promise.
   */
  close(graceMs: number, onError: (name: string, error: unknown) => void): Promise<void> {
    this.#closing ??= (async () => {
      for (const { name, close } of this.#closers.splice(0).reverse()) {
        try {
          await close(graceMs);
        } catch (error) {
          onError(name, error);
        }
      }
    })();
    return this.#closing;
  }
}
