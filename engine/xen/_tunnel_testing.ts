/**
 * The in-memory Xen tunnel harness the tests share: a fake `xl migrate`
 * source that writes its stream once the receiver's banner came back, a
 * fake `xl migrate-receive` that collects its stdin and says "ready" when it
 * closes, and {@link tunnelInMemory}, which runs `sendXenStream` and
 * `receiveXenStream` against each other over `memoryDuplex()`.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import type { CodecSpec } from "../plan.ts";
import {
  receiveXenStream,
  sendXenStream,
  type XenPeer,
  type XenTunnelStats,
} from "./tunnel.ts";
import { chunks } from "./stream/_test_util.ts";

const enc = new TextEncoder();
/** xl's `migrate_receiver_banner`. */
export const BANNER: Uint8Array = enc.encode(
  "xl migration receiver ready, send binary domain data.\n",
);
/** xl's `migrate_receiver_ready`, NUL-terminated as xl sends it. */
export const READY: Uint8Array = enc.encode(
  "domain received, ready to unpause\0",
);

/** A fake `xl migrate` source: waits for the banner, then writes its stream in chunks. */
export function fakeSource(
  bytes: Uint8Array,
  backSeen: Promise<void>,
  seed: number,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async start(c) {
      await backSeen;
      for (const ch of chunks(bytes, seed, 9000)) c.enqueue(ch);
      c.close();
    },
  });
}

/** A fake `xl migrate-receive`: says the banner, collects its stdin, then says "ready". */
export function fakeReceiver(): { peer: XenPeer; bytes: () => Uint8Array } {
  const got: Uint8Array[] = [];
  let say!: ReadableStreamDefaultController<Uint8Array>;
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      say = c;
      c.enqueue(BANNER);
    },
  });
  const writable = new WritableStream<Uint8Array>({
    write(b) {
      got.push(b.slice());
    },
    close() {
      say.enqueue(READY);
      say.close();
    },
    abort() {
      say.close();
    },
  });
  return { peer: { writable, readable }, bytes: () => concatBytes(got) };
}

/** What {@link tunnelInMemory} returns. */
export interface TunnelRun {
  /** The sender's stats. */
  readonly s: XenTunnelStats;
  /** The receiver's stats. */
  readonly r: XenTunnelStats;
  /** What the fake `xl migrate-receive` got on its stdin. */
  readonly out: Uint8Array;
  /** What came back to the fake source. */
  readonly back: Uint8Array;
}

/**
 * Sends `stream` as xl would through the tunnel, in memory, to the fake
 * receiver.
 *
 * @example
 * ```ts
 * const { out } = await tunnelInMemory(wrapLikeXl(buildStream().bytes), [{ name: "zero" }]);
 * ```
 */
export async function tunnelInMemory(
  stream: Uint8Array,
  codecs: CodecSpec[],
  options: { seed?: number; maxPages?: number } = {},
): Promise<TunnelRun> {
  const [a, b] = memoryDuplex();
  const xl = fakeReceiver();
  const back: Uint8Array[] = [];
  let sawBanner!: () => void;
  const bannerSeen = new Promise<void>((r) => sawBanner = r);
  const backOut = new WritableStream<Uint8Array>({
    write(c) {
      back.push(c.slice());
      sawBanner();
    },
  });
  const received = receiveXenStream(b, xl.peer);
  const sent = sendXenStream(
    fakeSource(stream, bannerSeen, options.seed ?? 1),
    backOut,
    a,
    { codecs, maxPages: options.maxPages },
  );
  const [s, r] = await Promise.all([sent, received]);
  return { s, r, out: xl.bytes(), back: concatBytes(back) };
}
