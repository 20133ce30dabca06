import { decodeKernelWgsl } from "./_decode.wgsl.ts";

/**
 * `rle_decode`: one invocation per page (64 pages per workgroup) decodes
 * its page's tokens with every check of `RleDecoder` in `rle.ts`, writing
 * only inside the page's slot of `out`. `errors[page]` is 0 when the input
 * decoded, else a nonzero code (1 length, 2 empty token, 3 past the page,
 * 4 run without its word, 5 literal cut short, 6 short of the page,
 * 7 input outside the buffer); the host then names the failure with the
 * CPU decoder's message.
 *
 * Bindings (`_decode.wgsl.ts`): 1 input (u32), 2 inOff (byte offset, a
 * multiple of 4), 3 inLen (bytes), 4 out (`pageWords` per page), 5 errors.
 */
export const RLE_DECODE_WGSL: string = decodeKernelWgsl(`
fn decode(page: u32) -> u32 {
  let W = params.pageWords;
  let len = inLen[page];
  if ((len & 3u) != 0u || len > W * 4u - 4u || (inOff[page] & 3u) != 0u) { return 1u; }
  let ib = inOff[page] >> 2u;
  let n = len >> 2u;
  if (ib + n > arrayLength(&input)) { return 7u; }
  let ob = page * W;
  var p = 0u;
  var d = 0u;
  while (p < n) {
    let h = input[ib + p];
    p += 1u;
    let count = h & 0x7fffffffu;
    if (count == 0u) { return 2u; }
    if (count > W - d) { return 3u; }
    if ((h & 0x80000000u) == 0u) {
      if (p >= n) { return 4u; }
      let v = input[ib + p];
      p += 1u;
      for (var k = 0u; k < count; k++) { out[ob + d + k] = v; }
    } else {
      if (count > n - p) { return 5u; }
      for (var k = 0u; k < count; k++) { out[ob + d + k] = input[ib + p + k]; }
      p += count;
    }
    d += count;
  }
  if (d != W) { return 6u; }
  return 0u;
}
`);
