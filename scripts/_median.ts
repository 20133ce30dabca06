/**
 * The median the benches quote.
 *
 * @module
 */

/**
 * Median of numbers; for an even count the lower middle one, so it is always
 * a value that was measured.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * median([4, 1, 3, 2]); // 2
 * ```
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}
