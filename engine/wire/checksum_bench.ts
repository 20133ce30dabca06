/**
 * What a frame's checksum and a stream's digest cost per byte, beside a
 * plain copy of the same bytes: every frame carries a CRC-32 of its payload
 * (`node:zlib` crc32) and the tunnels hash the whole stream (`node:crypto`
 * SHA-256, on a Worker of its own).
 *
 *   deno bench -A engine/wire/checksum_bench.ts
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { createHash } from "node:crypto";

const MIB = 1 << 20;
const data = new Uint8Array(16 * MIB).map((_, i) => (i * 2654435761) >>> 24);
const target = new Uint8Array(data.length);

Deno.bench("copy 16 MiB (set)", { group: "16 MiB", baseline: true }, () => {
  target.set(data);
});

Deno.bench("crc32 of 16 MiB, 1 MiB at a time (node:zlib)", {
  group: "16 MiB",
}, () => {
  let c = 0;
  for (let at = 0; at < data.length; at += MIB) {
    c = crc32(data.subarray(at, at + MIB), c);
  }
  if (c === 0.5) throw new Error("unreachable");
});

Deno.bench("SHA-256 of 16 MiB, 1 MiB at a time (node:crypto)", {
  group: "16 MiB",
}, () => {
  const h = createHash("sha256");
  for (let at = 0; at < data.length; at += MIB) {
    h.update(data.subarray(at, at + MIB));
  }
  h.digest();
});
