import { PARAMS_WGSL } from "./_runtime.ts";

/**
 * `delta_encode` (XBZRLE): one invocation per page (64 pages per
 * workgroup) runs the sequential encoder of `engine/codecs/delta.ts` on its
 * page against the old version uploaded side by side: maximal zero and
 * non-zero runs of the XOR at byte granularity (whole words compared while
 * aligned, the has-zero-byte test on the XOR word, `extractBits` for bytes),
 * ULEB128 lengths, the new page's bytes. Bytes are packed into a u32 kept
 * in a register and stored once per word, into the page's own `scratch`
 * slot (`pageWords` words).
 *
 * `sizes[page]` = encoded bytes; 0 = unchanged; 0xffffffff = declined
 * (`hasOld[page]` is 0, or the encoding is not smaller than the page).
 * Bindings: 1 pages, 2 olds, 3 hasOld, 4 scratch, 5 sizes.
 */
export const DELTA_ENCODE_WGSL: string = PARAMS_WGSL + `
@group(0) @binding(1) var<storage, read> pages: array<u32>;
@group(0) @binding(2) var<storage, read> olds: array<u32>;
@group(0) @binding(3) var<storage, read> hasOld: array<u32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(5) var<storage, read_write> sizes: array<u32>;

struct Writer { base: u32, d: u32, acc: u32 }

fn put(w: ptr<function, Writer>, b: u32) {
  let sh = ((*w).d & 3u) * 8u;
  (*w).acc |= b << sh;
  if (sh == 24u) {
    scratch[(*w).base + ((*w).d >> 2u)] = (*w).acc;
    (*w).acc = 0u;
  }
  (*w).d += 1u;
}

fn putUleb(w: ptr<function, Writer>, n0: u32) {
  var n = n0;
  while (n >= 0x80u) {
    put(w, (n & 0x7fu) | 0x80u);
    n >>= 7u;
  }
  put(w, n);
}

fn ulebSize(n: u32) -> u32 {
  if (n < 0x80u) { return 1u; }
  if (n < 0x4000u) { return 2u; }
  if (n < 0x200000u) { return 3u; }
  if (n < 0x10000000u) { return 4u; }
  return 5u;
}

fn byteOf(word: u32, i: u32) -> u32 { return extractBits(word, (i & 3u) * 8u, 8u); }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let page = (wid.x + wid.y * params.groupsX) * 64u + lid;
  if (page >= params.count) { return; }
  if (hasOld[page] == 0u) { sizes[page] = 0xffffffffu; return; }
  let W = params.pageWords;
  let ps = W * 4u;
  let limit = ps - 1u;
  let base = page * W;
  var w = Writer(base, 0u, 0u);
  var i = 0u;
  var size = 0u;
  loop {
    // Zero run: bytes equal to the old page.
    let zs = i;
    while (i < ps) {
      let n = pages[base + (i >> 2u)];
      let o = olds[base + (i >> 2u)];
      if ((i & 3u) == 0u && n == o) { i += 4u; continue; }
      if (byteOf(n, i) == byteOf(o, i)) { i += 1u; } else { break; }
    }
    if (i == ps) { size = select(w.d, 0u, zs == 0u); break; }
    let zlen = i - zs;
    // Non-zero run: ends at the first byte equal to the old page.
    let ns = i;
    while (i < ps) {
      let n = pages[base + (i >> 2u)];
      let o = olds[base + (i >> 2u)];
      if ((i & 3u) == 0u) {
        let x = n ^ o;
        if (((x - 0x01010101u) & ~x & 0x80808080u) == 0u) { i += 4u; continue; }
      }
      if (byteOf(n, i) != byteOf(o, i)) { i += 1u; } else { break; }
    }
    let nlen = i - ns;
    if (w.d + ulebSize(zlen) + ulebSize(nlen) + nlen > limit) { size = 0xffffffffu; break; }
    putUleb(&w, zlen);
    putUleb(&w, nlen);
    for (var k = ns; k < i; k++) { put(&w, byteOf(pages[base + (k >> 2u)], k)); }
    if (i == ps) { size = w.d; break; }
  }
  if (size != 0xffffffffu && (w.d & 3u) != 0u) { scratch[base + (w.d >> 2u)] = w.acc; }
  sizes[page] = size;
}
`;
