/**
 * bench:tunnel's floor: the least a tunnel written in Deno can do and still
 * compress — no parsing, no pages, no frames beyond a length, no digest, no
 * Workers. The sending side reads its stdin in 1 MiB chunks, compresses each
 * on its own with one libzstd call (`zstd -1`'s level), and writes
 * `u32 compressed length, u32 plain length, bytes` to a TCP connection; the
 * receiving side decompresses each chunk with one call and writes it to its
 * stdout. The bench hashes that output like every other mode's, so the floor
 * must carry the stream byte for byte too.
 *
 * What it shows: how much of the tunnel's CPU is the codec and the two hops
 * any tunnel pays, and how much is the tunnel's own machinery.
 *
 * ```sh
 * deno run -A scripts/_bench_floor.ts receive 127.0.0.1:9000 > out.stream &
 * deno run -A scripts/_bench_floor.ts send 127.0.0.1:9000 < in.stream
 * ```
 * Each side prints one JSON line to stderr (`durationMs`, and on the sending
 * side `streamBytes` and `wireBytes`), as bench:tunnel's copy modes do.
 *
 * @module
 */

import { libzstd } from "../ffi/zstd.ts";

/** Plain bytes per chunk. */
const CHUNK = 1 << 20;
/** `zstd -1`. */
const LEVEL = 1;
const HEADER = 8;

function check(z: ReturnType<typeof libzstd>, n: bigint, what: string): number {
  if (z.ZSTD_isError(n)) {
    throw new Error(
      `${what}: ${Deno.UnsafePointerView.getCString(z.ZSTD_getErrorName(n)!)}`,
    );
  }
  return Number(n);
}

async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await w.write(bytes.subarray(at));
}

async function send(host: string, port: number): Promise<void> {
  const z = libzstd();
  const cctx = z.ZSTD_createCCtx();
  let conn: Deno.Conn | undefined;
  for (let i = 0; !conn; i++) {
    try {
      conn = await Deno.connect({ hostname: host, port });
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const t0 = performance.now();
  const plain = new Uint8Array(CHUNK);
  const bound = Number(z.ZSTD_compressBound(BigInt(CHUNK)));
  const out = new Uint8Array(HEADER + bound);
  const header = new DataView(out.buffer);
  let fill = 0;
  let streamBytes = 0;
  let wireBytes = 0;
  const flush = async () => {
    const n = check(
      z,
      z.ZSTD_compressCCtx(
        cctx,
        out.subarray(HEADER),
        BigInt(bound),
        plain,
        BigInt(fill),
        LEVEL,
      ),
      `compress ${fill} bytes`,
    );
    header.setUint32(0, n, true);
    header.setUint32(4, fill, true);
    await writeAll(conn!, out.subarray(0, HEADER + n));
    wireBytes += HEADER + n;
    fill = 0;
  };
  for (;;) {
    const r = await Deno.stdin.read(plain.subarray(fill));
    if (r === null) break;
    fill += r;
    streamBytes += r;
    if (fill === CHUNK) await flush();
  }
  if (fill > 0) await flush();
  conn!.close();
  z.ZSTD_freeCCtx(cctx);
  console.error(JSON.stringify({
    ok: true,
    streamBytes,
    wireBytes,
    durationMs: performance.now() - t0,
  }));
}

async function receive(host: string, port: number): Promise<void> {
  const z = libzstd();
  const dctx = z.ZSTD_createDCtx();
  const listener = Deno.listen({ hostname: host, port });
  const conn = await listener.accept();
  listener.close();
  const t0 = performance.now();
  const bound = Number(z.ZSTD_compressBound(BigInt(CHUNK)));
  const buf = new Uint8Array(2 * (HEADER + bound));
  const plain = new Uint8Array(CHUNK);
  let have = 0;
  for (;;) {
    const r = await conn.read(buf.subarray(have));
    if (r === null) break;
    have += r;
    let at = 0;
    while (have - at >= HEADER) {
      const view = new DataView(buf.buffer, at, HEADER);
      const n = view.getUint32(0, true);
      const size = view.getUint32(4, true);
      if (n > bound || size > CHUNK) {
        throw new Error(`Bad chunk header: ${n} bytes for ${size}`);
      }
      if (have - at < HEADER + n) break;
      const got = check(
        z,
        z.ZSTD_decompressDCtx(
          dctx,
          plain,
          BigInt(size),
          buf.subarray(at + HEADER, at + HEADER + n),
          BigInt(n),
        ),
        `decompress a chunk of ${n} bytes`,
      );
      if (got !== size) {
        throw new Error(`A chunk decompressed to ${got} bytes, not ${size}`);
      }
      await writeAll(Deno.stdout, plain.subarray(0, size));
      at += HEADER + n;
    }
    buf.copyWithin(0, at, have);
    have -= at;
  }
  if (have !== 0) throw new Error(`The stream ended inside a chunk`);
  z.ZSTD_freeDCtx(dctx);
  console.error(
    JSON.stringify({ ok: true, durationMs: performance.now() - t0 }),
  );
}

if (import.meta.main) {
  const [side, addr] = Deno.args;
  const [host, port] = (addr ?? "").split(":");
  if ((side !== "send" && side !== "receive") || !port) {
    console.error("usage: _bench_floor.ts send|receive HOST:PORT");
    Deno.exit(2);
  }
  await (side === "send" ? send : receive)(host, Number(port));
}
