/**
 * Lines of a child process's text output, for the scripts that read what a
 * receiver in a second process prints.
 *
 * @module
 */

/**
 * A stream that splits text into lines (without their `\n`); a last line
 * without one still comes out when the text ends.
 *
 * @example
 * ```ts
 * const lines = await Array.fromAsync(
 *   ReadableStream.from(["a\nb", "c\n", "d"]).pipeThrough(splitLines()),
 * );
 * console.assert(lines.join("|") === "a|bc|d");
 * ```
 */
export function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const p of parts) ctl.enqueue(p);
    },
    flush(ctl) {
      if (rest) ctl.enqueue(rest);
    },
  });
}
