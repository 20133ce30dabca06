/**
 * `p`, or the error `error()` makes once `ms` passed first: the one
 * deadline race of the source's waits (`source_link.ts`, `precopy.ts`) and
 * of the libvirt backend's wait for its knob calls.
 *
 * @module
 */

/** Resolves as `p` does, or rejects with `error()` once `ms` passed first. */
export async function within<T>(
  p: Promise<T>,
  ms: number,
  error: () => Error,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(error()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
