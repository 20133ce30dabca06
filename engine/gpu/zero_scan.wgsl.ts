import { PARAMS_WGSL } from "./_runtime.ts";

/**
 * `zero_scan`: one workgroup (64 invocations) per page ORs the page's words;
 * `flags[page]` is 1 for an all-zero page, else 0.
 *
 * Bindings: 1 pages (`count * pageWords` u32), 2 flags (`count` u32).
 */
export const ZERO_SCAN_WGSL: string = PARAMS_WGSL + `
@group(0) @binding(1) var<storage, read> pages: array<u32>;
@group(0) @binding(2) var<storage, read_write> flags: array<u32>;
var<workgroup> seen: atomic<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let page = wid.x + wid.y * params.groupsX;
  if (lid == 0u) { atomicStore(&seen, 0u); }
  workgroupBarrier();
  if (page < params.count) {
    let base = page * params.pageWords;
    var v = 0u;
    for (var i = lid; i < params.pageWords; i += 64u) { v |= pages[base + i]; }
    if (v != 0u) { atomicOr(&seen, 1u); }
  }
  workgroupBarrier();
  if (lid == 0u && page < params.count) {
    flags[page] = select(1u, 0u, atomicLoad(&seen) != 0u);
  }
}
`;
