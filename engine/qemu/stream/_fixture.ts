import zlib from "node:zlib";

/** The checked-in firmware-only capture (QEMU 7.2, pc, 64 MiB, paused at reset). */
export function firmwareStream(): Uint8Array {
  const gz = Deno.readFileSync(
    new URL("./testdata/firmware-pc-64m.stream.gz", import.meta.url),
  );
  return new Uint8Array(zlib.gunzipSync(gz));
}
