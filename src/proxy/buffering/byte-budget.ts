/**
 * A number of bytes shared by every buffer of one kind (all memory buffers,
 * or all temp files), so the total a flood of slow clients can make the proxy
 * hold is capped, not only each one's share. Taking never waits: a buffer
 * that cannot take spills to the next store or refuses (see SpillBuffer).
 */
export class ByteBudget {
  #limitBytes: number;
  #usedBytes = 0;

  /** `limitBytes`: the cap; 0 means nothing may be taken (a store that is switched off). */
  constructor(limitBytes: number) {
    this.#limitBytes = checkedLimit(limitBytes);
  }

  /** Bytes taken and not yet given back. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  get limitBytes(): number {
    return this.#limitBytes;
  }

  /**
   * Changes the cap (policy reload). Bytes already taken stay taken: a cap
   * lowered below them refuses new takes until enough have been given back.
   */
  setLimit(limitBytes: number): void {
    this.#limitBytes = checkedLimit(limitBytes);
  }

  /** Takes `bytes` if they fit under the cap; false (and nothing taken) if not. */
  tryTake(bytes: number): boolean {
    if (this.#usedBytes + bytes > this.#limitBytes) return false;
    this.#usedBytes += bytes;
    return true;
  }

  /** Gives back bytes taken earlier. Giving back more than was taken is a bug, and throws. */
  give(bytes: number): void {
    if (bytes > this.#usedBytes) throw new RangeError(`ByteBudget: giving back ${bytes} bytes, only ${this.#usedBytes} were taken`);
    this.#usedBytes -= bytes;
  }
}

function checkedLimit(limitBytes: number): number {
  if (!Number.isSafeInteger(limitBytes) || limitBytes < 0) throw new RangeError(`ByteBudget: limit must be a whole number of bytes ≥ 0, got ${String(limitBytes)}`);
  return limitBytes;
}
