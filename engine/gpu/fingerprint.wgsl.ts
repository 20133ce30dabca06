import { PARAMS_WGSL } from "./_runtime.ts";

/**
 * `fingerprint`: MurmurHash3_x86_128 (seed 0) over whole 16-byte blocks of
 * one chunk per invocation, exactly as `engine/codecs/_fingerprint.ts`
 * (words in the page's byte order, length in bytes = `pageWords * 4`).
 *
 * Params: `count` chunks of `pageWords` words. Bindings: 1 chunks (u32),
 * 2 out (4 u32 per chunk: h1 h2 h3 h4).
 */
export const FINGERPRINT_WGSL: string = PARAMS_WGSL + `
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const C1 = 0x239b961bu;
const C2 = 0xab0e9789u;
const C3 = 0x38b34ae5u;
const C4 = 0xa1e38b93u;

fn rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }

fn fmix32(h0: u32) -> u32 {
  var h = h0;
  h ^= h >> 16u;
  h *= 0x85ebca6bu;
  h ^= h >> 13u;
  h *= 0xc2b2ae35u;
  h ^= h >> 16u;
  return h;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let chunk = (wid.x + wid.y * params.groupsX) * 64u + lid;
  if (chunk >= params.count) { return; }
  let start = chunk * params.pageWords;
  let end = start + params.pageWords;
  var h1 = 0u; var h2 = 0u; var h3 = 0u; var h4 = 0u;
  for (var i = start; i < end; i += 4u) {
    var k1 = words[i]; var k2 = words[i + 1u]; var k3 = words[i + 2u]; var k4 = words[i + 3u];
    k1 *= C1; k1 = rotl(k1, 15u); h1 ^= k1 * C2;
    h1 = rotl(h1, 19u); h1 = (h1 + h2) * 5u + 0x561ccd1bu;
    k2 *= C2; k2 = rotl(k2, 16u); h2 ^= k2 * C3;
    h2 = rotl(h2, 17u); h2 = (h2 + h3) * 5u + 0x0bcaa747u;
    k3 *= C3; k3 = rotl(k3, 17u); h3 ^= k3 * C4;
    h3 = rotl(h3, 15u); h3 = (h3 + h4) * 5u + 0x96cd1c35u;
    k4 *= C4; k4 = rotl(k4, 18u); h4 ^= k4 * C1;
    h4 = rotl(h4, 13u); h4 = (h4 + h1) * 5u + 0x32ac3b17u;
  }
  let len = params.pageWords * 4u;
  h1 ^= len; h2 ^= len; h3 ^= len; h4 ^= len;
  h1 = h1 + h2 + h3 + h4;
  h2 += h1; h3 += h1; h4 += h1;
  h1 = fmix32(h1); h2 = fmix32(h2); h3 = fmix32(h3); h4 = fmix32(h4);
  h1 = h1 + h2 + h3 + h4;
  h2 += h1; h3 += h1; h4 += h1;
  out[chunk * 4u] = h1;
  out[chunk * 4u + 1u] = h2;
  out[chunk * 4u + 2u] = h3;
  out[chunk * 4u + 3u] = h4;
}
`;
