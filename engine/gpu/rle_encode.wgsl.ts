import { PARAMS_WGSL } from "./_runtime.ts";

/**
 * `rle_encode`: one workgroup of 256 invocations per page (at most 1024
 * words per page), following the data-parallel form of `docs/codecs/rle.md`:
 *
 * 1. per word: `inRun`, token start, words emitted (run start 2, literal
 *    word 1 plus 1 for its header);
 * 2. a workgroup scan of those sizes (sum) and of token starts (max) gives
 *    every word's output offset and its token's first word;
 * 3. run starts write their word, literal words theirs, and the last word of
 *    every token writes the token's header `kind << 31 | count`;
 * 4. `sizes[page]` = encoded bytes, or 0xffffffff when the encoding is not
 *    smaller than the page (declined, as `rle.ts` decides).
 *
 * Output goes to the page's own slot of `scratch` (`pageWords` words per
 * page); writes at or past the slot's end are dropped (only a declined page
 * gets there). Bindings: 1 pages, 2 scratch, 3 sizes.
 */
export const RLE_ENCODE_WGSL: string = PARAMS_WGSL + `
@group(0) @binding(1) var<storage, read> pages: array<u32>;
@group(0) @binding(2) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(3) var<storage, read_write> sizes: array<u32>;

const T = 256u;
var<workgroup> offAt: array<u32, 1024>;
var<workgroup> startOf: array<u32, 1024>;
var<workgroup> sumScan: array<u32, 256>;
var<workgroup> maxScan: array<u32, 256>;

fn inRun(base: u32, W: u32, i: u32) -> bool {
  let v = pages[base + i];
  return (i > 0u && pages[base + i - 1u] == v) || (i + 1u < W && pages[base + i + 1u] == v);
}

fn isStart(base: u32, W: u32, i: u32) -> bool {
  if (i == 0u) { return true; }
  let a = inRun(base, W, i);
  if (a != inRun(base, W, i - 1u)) { return true; }
  return a && pages[base + i] != pages[base + i - 1u];
}

fn put(sbase: u32, W: u32, at: u32, v: u32) {
  if (at < W) { scratch[sbase + at] = v; }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) t: u32) {
  let page = wid.x + wid.y * params.groupsX;
  let valid = page < params.count;
  let W = params.pageWords;
  let base = page * W;
  let per = (W + T - 1u) / T;
  let lo = min(t * per, W);
  let hi = min(lo + per, W);

  // 1. Local sums: words emitted, last token start (+1; 0 = none) in [lo, hi).
  var s = 0u;
  var m = 0u;
  if (valid) {
    for (var i = lo; i < hi; i++) {
      let st = isStart(base, W, i);
      if (st) { m = i + 1u; }
      if (inRun(base, W, i)) { s += select(0u, 2u, st); } else { s += select(1u, 2u, st); }
    }
  }
  sumScan[t] = s;
  maxScan[t] = m;
  workgroupBarrier();
  // 2. Inclusive Hillis-Steele scans over the 256 invocations.
  for (var d = 1u; d < T; d <<= 1u) {
    var a = 0u;
    var b = 0u;
    if (t >= d) { a = sumScan[t - d]; b = maxScan[t - d]; }
    workgroupBarrier();
    sumScan[t] += a;
    maxScan[t] = max(maxScan[t], b);
    workgroupBarrier();
  }
  var off = sumScan[t] - s;
  var cur = 0u;
  if (t > 0u) { cur = maxScan[t - 1u]; }
  let total = sumScan[T - 1u];
  let sbase = base;

  // 3a. Bodies: run words, literal words; remember offsets and token starts.
  if (valid) {
    for (var i = lo; i < hi; i++) {
      let st = isStart(base, W, i);
      if (st) { cur = i + 1u; }
      let r = inRun(base, W, i);
      offAt[i] = off;
      startOf[i] = cur - 1u;
      if (r) {
        if (st) { put(sbase, W, off + 1u, pages[base + i]); off += 2u; }
      } else {
        put(sbase, W, off + select(0u, 1u, st), pages[base + i]);
        off += select(1u, 2u, st);
      }
    }
  }
  workgroupBarrier();
  // 3b. Headers, written by each token's last word.
  if (valid) {
    for (var i = lo; i < hi; i++) {
      if (i + 1u == W || isStart(base, W, i + 1u)) {
        let s0 = startOf[i];
        let lit = select(0x80000000u, 0u, inRun(base, W, i));
        put(sbase, W, offAt[s0], lit | (i - s0 + 1u));
      }
    }
    if (t == 0u) { sizes[page] = select(total * 4u, 0xffffffffu, total >= W); }
  }
}
`;
