import { decodeKernelWgsl } from "./_decode.wgsl.ts";

/**
 * `delta_decode` (XBZRLE): one invocation per page (64 pages per
 * workgroup) applies its page's runs to the current page, which the host
 * uploaded into the page's slot of `out`, with every check of
 * `DeltaDecoder` in `delta.ts` (lengths cut off, longer than 5 bytes, not in
 * shortest form or larger than the page; empty runs; runs past the page or
 * the input). Writes only inside the page's slot, one byte at a time with
 * `insertBits`. `errors[page]` is 0 when the input decoded, else nonzero;
 * the host names the failure with the CPU decoder's message.
 *
 * Bindings (`_decode.wgsl.ts`): 1 input (u32), 2 inOff (byte offset),
 * 3 inLen (bytes), 4 out, 5 errors.
 */
export const DELTA_DECODE_WGSL: string = decodeKernelWgsl(`
struct Reader { off: u32, p: u32, n: u32, err: u32 }

fn inByte(r: ptr<function, Reader>) -> u32 {
  let at = (*r).off + (*r).p;
  (*r).p += 1u;
  return extractBits(input[at >> 2u], (at & 3u) * 8u, 8u);
}

fn uleb(r: ptr<function, Reader>, ps: u32) -> u32 {
  var value = 0u;
  for (var k = 0u; k < 5u; k++) {
    if ((*r).p >= (*r).n) { (*r).err = 10u; return 0u; }
    let b = inByte(r);
    if (k == 4u && (b & 0x7fu) > 0xfu) { (*r).err = 11u; return 0u; } // over 32 bits: larger than any page
    value |= (b & 0x7fu) << (7u * k);
    if ((b & 0x80u) == 0u) {
      if (b == 0u && k > 0u) { (*r).err = 12u; return 0u; }
      if (value > ps) { (*r).err = 13u; return 0u; }
      return value;
    }
  }
  (*r).err = 14u;
  return 0u;
}

fn decode(page: u32) -> u32 {
  let W = params.pageWords;
  let ps = W * 4u;
  let len = inLen[page];
  if (len >= ps) { return 1u; }
  var r = Reader(inOff[page], 0u, len, 0u);
  if ((r.off + len + 3u) / 4u > arrayLength(&input)) { return 7u; }
  let ob = page * W;
  var d = 0u;
  while (r.p < r.n) {
    let zat = r.p;
    let zlen = uleb(&r, ps);
    if (r.err != 0u) { return r.err; }
    if (zlen == 0u && zat != 0u) { return 2u; }
    d += zlen;
    if (d > ps) { return 3u; }
    if (r.p == r.n) { return 4u; }
    let nlen = uleb(&r, ps);
    if (r.err != 0u) { return r.err; }
    if (nlen == 0u) { return 5u; }
    if (nlen > ps - d) { return 6u; }
    if (nlen > r.n - r.p) { return 8u; }
    for (var k = 0u; k < nlen; k++) {
      let b = inByte(&r);
      let at = ob + (d >> 2u);
      out[at] = insertBits(out[at], b, (d & 3u) * 8u, 8u);
      d += 1u;
    }
  }
  return 0u;
}
`);
