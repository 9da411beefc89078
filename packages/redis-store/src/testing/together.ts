interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Waits for servers started side by side (stopped with `stop`, by default their own stop()). If
 * one fails to start, the others are stopped before
 * its error is thrown: with Promise.all they would run on unseen, and their child processes keep
 * the test file's process alive after its tests end, so the whole test run never finishes.
 */
export async function startedTogether<T extends readonly unknown[]>(
  starts: { readonly [K in keyof T]: Promise<T[K]> },
  stop: (started: T[number]) => Promise<void> = (s) => (s as Stoppable).stop(),
): Promise<T> {
  const settled = await Promise.allSettled(starts as readonly Promise<T[number]>[]);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(settled.map((s) => (s.status === 'fulfilled' ? stop(s.value) : undefined)));
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<T[number]>).value) as unknown as T;
}
