/**
 * What a frame's checksum and a stream's digest cost per byte, beside a
 * plain copy of the same bytes: every frame carries a CRC-32 of its header
 * and payload, and the tunnels hash the whole stream. The CRC-32 rows
 * compare the system zlib through FFI (`ffi/zlib.ts`), `node:zlib`, and
 * what the frame code calls (`_crc32.ts`, which picks one per size), on the
 * 12 header bytes every frame checksums, a 4 KiB page and 1 MiB payloads.
 *
 *   deno bench -A engine/wire/checksum_bench.ts
 *
 * @module
 */

import { crc32 as nodeCrc32 } from "node:zlib";
import { createHash } from "node:crypto";
import { libz } from "../../ffi/zlib.ts";
import { crc32 } from "./_crc32.ts";

const MIB = 1 << 20;
const data = new Uint8Array(16 * MIB).map((_, i) => (i * 2654435761) >>> 24);
const target = new Uint8Array(data.length);
const libzCrc32 = libz().crc32;

Deno.bench("copy 16 MiB (set)", { group: "16 MiB", baseline: true }, () => {
  target.set(data);
});

for (
  const [name, fn] of [
    ["node:zlib", (b: Uint8Array, c: number) => nodeCrc32(b, c)],
    ["libz (FFI)", (b: Uint8Array, c: number) => libzCrc32(c, b, b.length)],
  ] as const
) {
  Deno.bench(`crc32 of 16 MiB, 1 MiB at a time (${name})`, {
    group: "16 MiB",
  }, () => {
    let c = 0;
    for (let at = 0; at < data.length; at += MIB) {
      c = fn(data.subarray(at, at + MIB), c);
    }
    if (c === 0.5) throw new Error("unreachable");
  });
}

Deno.bench("SHA-256 of 16 MiB, 1 MiB at a time (node:crypto)", {
  group: "16 MiB",
}, () => {
  const h = createHash("sha256");
  for (let at = 0; at < data.length; at += MIB) {
    h.update(data.subarray(at, at + MIB));
  }
  h.digest();
});

for (
  const [group, bytes] of [
    ["header (12 B)", data.subarray(0, 12)],
    ["page (4 KiB)", data.subarray(0, 4096)],
  ] as const
) {
  Deno.bench(`crc32 ${group} (node:zlib)`, { group, baseline: true }, () => {
    nodeCrc32(bytes, 0);
  });
  Deno.bench(`crc32 ${group} (libz, FFI)`, { group }, () => {
    libzCrc32(0, bytes, bytes.length);
  });
  Deno.bench(`crc32 ${group} (_crc32.ts)`, { group }, () => {
    crc32(bytes, 0);
  });
}
