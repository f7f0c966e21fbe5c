/** Polls `check` every 20 ms for at most `withinMs`; whether it came to hold (bounded: never waits longer). */
export async function holdsWithin(withinMs: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}
