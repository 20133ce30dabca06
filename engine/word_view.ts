/**
 * A `Uint32Array` over a whole buffer, kept while pages keep coming from the
 * same buffer, so that reading a page as words allocates no view per page.
 * Offsets are divided, never shifted: `>>>` works on 32 bits and would wrap
 * for pages beyond 4 GiB of guest memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WordView } from "@hakobu/hakobu";
 *
 * const view = new WordView();
 * const memory = new Uint8Array(8192);
 * memory[4096] = 7;
 * const page = memory.subarray(4096);
 * const words = view.of(page); // the page starts at words[page.byteOffset / 4]
 * assert.equal(words[page.byteOffset / 4], 7);
 * // Same buffer, same view:
 * assert.equal(view.of(memory.subarray(0, 4096)), words);
 * ```
 */
export class WordView {
  #buffer: ArrayBufferLike | undefined;
  #words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

  /** Words of the buffer behind `bytes` (4-aligned); `bytes` starts at word `bytes.byteOffset / 4`. */
  of(bytes: Uint8Array): Uint32Array<ArrayBufferLike> {
    if (
      bytes.buffer !== this.#buffer ||
      this.#words.length * 4 < bytes.byteOffset + bytes.length
    ) {
      this.#buffer = bytes.buffer;
      this.#words = new Uint32Array(
        bytes.buffer,
        0,
        Math.floor(bytes.buffer.byteLength / 4),
      );
    }
    return this.#words;
  }
}
