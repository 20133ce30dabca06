import { PARAMS_WGSL } from "./_runtime.ts";

/**
 * `scan`: one workgroup of 256 invocations turns per-page encoded sizes
 * (bytes; 0xffffffff = declined, counted as 0) into word offsets:
 * `offsets[i]` = words of pages before `i` (each page padded to whole
 * words), `offsets[count]` = total words. Bindings: 1 sizes, 2 offsets.
 */
export const SCAN_WGSL: string = PARAMS_WGSL + `
@group(0) @binding(1) var<storage, read> sizes: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;

const T = 256u;
var<workgroup> sums: array<u32, 256>;

fn words(i: u32) -> u32 {
  let b = sizes[i];
  if (b == 0xffffffffu) { return 0u; }
  return (b + 3u) / 4u;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  let n = params.count;
  let per = (n + T - 1u) / T;
  let lo = min(t * per, n);
  let hi = min(lo + per, n);
  var s = 0u;
  for (var i = lo; i < hi; i++) { s += words(i); }
  sums[t] = s;
  workgroupBarrier();
  for (var d = 1u; d < T; d <<= 1u) {
    var a = 0u;
    if (t >= d) { a = sums[t - d]; }
    workgroupBarrier();
    sums[t] += a;
    workgroupBarrier();
  }
  var off = sums[t] - s;
  for (var i = lo; i < hi; i++) {
    offsets[i] = off;
    off += words(i);
  }
  if (t == T - 1u) { offsets[n] = sums[T - 1u]; }
}
`;

/**
 * `compact`: one workgroup (64 invocations) per page copies the page's
 * encoded words from its `scratch` slot (`pageWords` words per page) to
 * `out[offsets[page]..]`. Bindings: 1 scratch, 2 sizes, 3 offsets, 4 out.
 */
export const COMPACT_WGSL: string = PARAMS_WGSL + `
@group(0) @binding(1) var<storage, read> scratch: array<u32>;
@group(0) @binding(2) var<storage, read> sizes: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let page = wid.x + wid.y * params.groupsX;
  if (page >= params.count) { return; }
  let b = sizes[page];
  if (b == 0xffffffffu) { return; }
  let n = min((b + 3u) / 4u, params.pageWords);
  let src = page * params.pageWords;
  let dst = offsets[page];
  for (var k = lid; k < n; k += 64u) { out[dst + k] = scratch[src + k]; }
}
`;
