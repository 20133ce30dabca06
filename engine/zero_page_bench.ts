/**
 * The zero-page test, in the shape a channel Worker runs it: every page of
 * 16 MiB of shared guest memory (one page in eight not zero) found zero or
 * not, one call per page, beside the JavaScript word loop `isZeroPage` was
 * before (eight 32-bit words OR-ed per step), in one run.
 *
 *   deno bench -A engine/zero_page_bench.ts
 *
 * @module
 */

import { isZeroPage } from "./zero_page.ts";
import { PAGE_SIZE } from "./plan.ts";

const memory = new Uint8Array(new SharedArrayBuffer(16 << 20));
const pages = memory.length / PAGE_SIZE;
for (let p = 0; p < pages; p += 8) memory[p * PAGE_SIZE + 1000] = 1;
const words = new Uint32Array(memory.buffer);

/** The former implementation: a word loop over the page, eight words per step. */
function wordLoop(page: Uint8Array): boolean {
  const start = page.byteOffset / 4;
  const end = start + page.length / 4;
  for (let i = start; i < end; i += 8) {
    if (
      (words[i] | words[i + 1] | words[i + 2] | words[i + 3] |
        words[i + 4] | words[i + 5] | words[i + 6] | words[i + 7]) !== 0
    ) return false;
  }
  return true;
}

function count(test: (page: Uint8Array) => boolean): number {
  let n = 0;
  for (let p = 0; p < pages; p++) {
    if (test(memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))) n++;
  }
  if (n !== pages - pages / 8) throw new Error(`found ${n} zero pages`);
  return n;
}

Deno.bench("word loop in JavaScript (before)", {
  group: "16 MiB, one page in eight not zero",
  baseline: true,
}, () => {
  count(wordLoop);
});

Deno.bench("isZeroPage (memcmp with zero bytes)", {
  group: "16 MiB, one page in eight not zero",
}, () => {
  count(isZeroPage);
});
