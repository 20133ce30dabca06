import assert from "node:assert/strict";
import { crc32 as nodeCrc32 } from "node:zlib";
import { FfiError } from "./_library.ts";
import { libz, openZlib, zlibVersion } from "./zlib.ts";

Deno.test("libz loads, reports a 1.x version and gives the CRC-32 check value", () => {
  assert.match(zlibVersion(), /^1\.\d+\.\d+/);
  const check = new TextEncoder().encode("123456789");
  assert.equal(libz().crc32(0, check, check.length), 0xcbf43926);
});

Deno.test("libz's crc32 equals node:zlib's on views at any offset, continued from any crc, over shared memory too", () => {
  const shared = new Uint8Array(new SharedArrayBuffer(1 << 16));
  crypto.getRandomValues(shared);
  const plain = shared.slice();
  const { crc32 } = libz();
  for (const [from, to] of [[0, 1], [3, 15], [100, 4196], [7, 1 << 16]]) {
    for (const bytes of [shared.subarray(from, to), plain.subarray(from, to)]) {
      for (const start of [0, 1, 0xcbf43926, 0xffffffff]) {
        assert.equal(
          crc32(start, bytes, bytes.length),
          nodeCrc32(bytes, start),
          `bytes ${from}..${to} from crc ${start}`,
        );
      }
    }
  }
});

Deno.test("openZlib with a missing path names the library, the path and the fix", () => {
  assert.throws(
    () => openZlib("/nonexistent/libz.so.1"),
    (e) =>
      e instanceof FfiError && e.library === "libz" &&
      e.tried.includes("/nonexistent/libz.so.1") &&
      /HAKOBU_LIBZ/.test(e.message),
  );
});
