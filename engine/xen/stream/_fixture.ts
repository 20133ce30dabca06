import zlib from "node:zlib";

/**
 * The checked-in real capture (`testdata/README.md`): everything xl wrote
 * into its `-s` pipe during a live `xl migrate` of a 16 MiB PVH mini guest
 * on Xen 4.17 (Debian bookworm) — xl's header and config, libxl's stream
 * with the libxc image inside, libxl's END and xl's "domain is yours"
 * message. Taken with `deno task lab:xen capture --out FILE`.
 */
export const XL_CAPTURE = {
  file: "pvh-mini-live.xl.zst",
  bytes: 30_579_717,
  sha256: "48e5a14f8c621a4e3743c89b88a9333894cbc8682f7476730c20ed576c44bb47",
} as const;

/** The capture, decompressed (zstd, read by `node:zlib`). */
export function xlCapture(): Uint8Array {
  const zst = Deno.readFileSync(
    new URL(`./testdata/${XL_CAPTURE.file}`, import.meta.url),
  );
  return new Uint8Array(zlib.zstdDecompressSync(zst));
}
