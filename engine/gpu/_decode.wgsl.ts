/**
 * WGSL shared by the two decode kernels (`rle_decode`, `delta_decode`): the
 * params block, their bindings and their entry point. Each kernel supplies
 * only `fn decode(page: u32) -> u32`, which returns 0 when the page's input
 * decoded into its slot of `out`, else its nonzero error code.
 *
 * @module
 */
import { PARAMS_WGSL } from "./_runtime.ts";

/**
 * Bindings of a decode kernel: 1 input (u32), 2 inOff (byte offset of each
 * page's input), 3 inLen (bytes), 4 out (`pageWords` per page), 5 errors.
 */
const DECODE_BINDINGS_WGSL = `
@group(0) @binding(1) var<storage, read> input: array<u32>;
@group(0) @binding(2) var<storage, read> inOff: array<u32>;
@group(0) @binding(3) var<storage, read> inLen: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<storage, read_write> errors: array<u32>;
`;

/** Entry point: one invocation per page (64 pages per workgroup, 2D grid), `errors[page] = decode(page)`. */
const DECODE_MAIN_WGSL = `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let page = (wid.x + wid.y * params.groupsX) * 64u + lid;
  if (page >= params.count) { return; }
  errors[page] = decode(page);
}
`;

/**
 * A decode kernel's whole WGSL source: the params block and the decoders'
 * bindings, then `decodeFn` (which defines `fn decode(page: u32) -> u32` and
 * its helpers), then the shared entry point.
 *
 * @example
 * ```ts
 * const wgsl = decodeKernelWgsl(`
 * fn decode(page: u32) -> u32 { return 0u; }
 * `);
 * ```
 */
export function decodeKernelWgsl(decodeFn: string): string {
  return PARAMS_WGSL + DECODE_BINDINGS_WGSL + decodeFn + DECODE_MAIN_WGSL;
}
